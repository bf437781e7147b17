"""Races on the real database: every HTTP request below runs in its own transaction on its own
connection, all at once, and commits for real."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.bookings.models import Booking
from service.orientation.models import OrientationEvent
from service.slots.models import Slot
from tests.builders import Clock, Tenant, new_agenda, next_day_at, open_request, publish, slot_item


async def test_fifty_requests_racing_for_five_slots_book_exactly_five(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    agenda = await new_agenda(tenant, practitioners=5)
    slot_ids = await publish(
        agenda, [slot_item(f"race-{i}", agenda.practitioners[i], next_day_at(10, days=1)) for i in range(5)]
    )
    requests = await asyncio.gather(*(open_request(tenant) for _ in range(50)))

    answers = await asyncio.gather(
        *(
            client.post(f"/v1/requests/{r['id']}/book", json={"slot_id": slot_ids[n % 5]}, headers=tenant.handler)
            for n, r in enumerate(requests)
        )
    )
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 5, 409: 45}, statuses
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"slot_unavailable"}
    winners = [a.json() for a in answers if a.status_code == 201]
    assert sorted(w["slot_id"] for w in winners) == sorted(slot_ids)

    async with sessionmaker() as session:
        active = await session.execute(
            select(Booking.slot_id, func.count())
            .where(Booking.cpts_id == tenant.cpts_id, Booking.status == "booked")
            .group_by(Booking.slot_id)
        )
        assert sorted((str(slot), n) for slot, n in active) == sorted((s, 1) for s in slot_ids)
        booked_slots = await session.scalar(
            select(func.count()).select_from(Slot).where(Slot.cpts_id == tenant.cpts_id, Slot.status == "booked")
        )
        booked_events = await session.scalar(
            select(func.count())
            .select_from(OrientationEvent)
            .where(OrientationEvent.cpts_id == tenant.cpts_id, OrientationEvent.kind == "booked")
        )
    assert booked_slots == 5
    assert booked_events == 5


async def test_fifty_holds_racing_for_five_slots_hold_exactly_five(client: httpx.AsyncClient, tenant: Tenant) -> None:
    agenda = await new_agenda(tenant, practitioners=5)
    slot_ids = await publish(
        agenda, [slot_item(f"hold-{i}", agenda.practitioners[i], next_day_at(11, days=1)) for i in range(5)]
    )
    requests = await asyncio.gather(*(open_request(tenant) for _ in range(50)))
    answers = await asyncio.gather(
        *(
            client.post(f"/v1/requests/{r['id']}/hold", json={"slot_id": slot_ids[n % 5]}, headers=tenant.handler)
            for n, r in enumerate(requests)
        )
    )
    assert Counter(a.status_code for a in answers) == {201: 5, 409: 45}
    confirms = await asyncio.gather(
        *(
            client.post(f"/v1/bookings/{a.json()['booking_id']}/confirm", headers=tenant.handler)
            for a in answers
            if a.status_code == 201
        )
    )
    assert [c.status_code for c in confirms] == [200] * 5
    assert {s["status"] for s in await agenda.slots()} == {"booked"}


async def test_an_expired_hold_taken_over_makes_the_first_confirm_fail(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    clock.now = datetime.now(UTC)
    agenda = await new_agenda(tenant, practitioners=1)
    [slot_id] = await publish(agenda, [slot_item("lapse", agenda.practitioners[0], next_day_at(12, days=1))])
    first, second = await open_request(tenant), await open_request(tenant)
    hold_a = (
        await client.post(f"/v1/requests/{first['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    ).json()
    # Within the TTL (180 s) nobody else may take it.
    clock.advance(seconds=179)
    early = await client.post(f"/v1/requests/{second['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    assert (early.status_code, early.json()["code"]) == (409, "slot_unavailable")
    clock.advance(seconds=2)
    hold_b = await client.post(f"/v1/requests/{second['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    assert hold_b.status_code == 201
    late = await client.post(f"/v1/bookings/{hold_a['booking_id']}/confirm", headers=tenant.handler)
    assert (late.status_code, late.json()["code"]) == (409, "hold_expired")
    confirmed = await client.post(f"/v1/bookings/{hold_b.json()['booking_id']}/confirm", headers=tenant.handler)
    assert confirmed.status_code == 200
    first_detail = (await client.get(f"/v1/requests/{first['id']}", headers=tenant.handler)).json()
    assert (first_detail["status"], [b["status"] for b in first_detail["bookings"]]) == ("open", ["expired"])


async def test_a_lapsed_hold_nobody_took_is_reclaimed_at_confirm(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    clock.now = datetime.now(UTC)
    agenda = await new_agenda(tenant, practitioners=1)
    [slot_id] = await publish(agenda, [slot_item("reclaim", agenda.practitioners[0], next_day_at(13, days=1))])
    request = await open_request(tenant)
    hold = (
        await client.post(f"/v1/requests/{request['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    ).json()
    clock.advance(minutes=10)
    assert [s["status"] for s in await agenda.slots()] == ["free"]  # an expired hold reads as free
    confirmed = await client.post(f"/v1/bookings/{hold['booking_id']}/confirm", headers=tenant.handler)
    assert (confirmed.status_code, confirmed.json()["status"]) == (200, "booked")


async def test_a_slot_moved_after_its_hold_lapsed_goes_to_the_next_patient(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    """Moving a slot frees it but leaves the lapsed hold's booking behind: booking the slot must
    expire that booking (one active booking per slot) rather than fail."""
    clock.now = datetime.now(UTC)
    agenda = await new_agenda(tenant, practitioners=1)
    doctor = agenda.practitioners[0]
    [slot_id] = await publish(agenda, [slot_item("moved", doctor, next_day_at(9, days=1))])
    first, second = await open_request(tenant), await open_request(tenant)
    hold = (
        await client.post(f"/v1/requests/{first['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    ).json()
    clock.advance(minutes=5)
    [moved] = await agenda.batch([slot_item("moved", doctor, next_day_at(10, days=1))])
    assert (moved["outcome"], moved["slot_id"]) == ("updated", slot_id)
    booked = await client.post(f"/v1/requests/{second['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    assert (booked.status_code, booked.json()["status"]) == (201, "booked")
    late = await client.post(f"/v1/bookings/{hold['booking_id']}/confirm", headers=tenant.handler)
    assert (late.status_code, late.json()["code"]) == (409, "hold_expired")
    first_detail = (await client.get(f"/v1/requests/{first['id']}", headers=tenant.handler)).json()
    assert [b["status"] for b in first_detail["bookings"]] == ["expired"]


async def test_confirming_lapsed_holds_while_others_book_their_slots_deadlocks_nothing(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A confirm locks its booking then the slot; a claim of the same slot expires that booking.
    Both take the locks in the same order, so each slot goes to exactly one of them, without a 5xx."""
    clock.now = datetime.now(UTC)
    agenda = await new_agenda(tenant, practitioners=1)
    starts = [next_day_at(8, days=2) + timedelta(minutes=30 * i) for i in range(12)]
    slot_ids = await publish(
        agenda, [slot_item(f"lapse-{i}", agenda.practitioners[0], s) for i, s in enumerate(starts)]
    )
    holds = []
    for slot_id in slot_ids:
        request = await open_request(tenant)
        held = await client.post(
            f"/v1/requests/{request['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler
        )
        holds.append(held.json()["booking_id"])
    others = [await open_request(tenant) for _ in slot_ids]
    clock.advance(minutes=4)  # every hold has lapsed; nobody took the slots yet
    answers = await asyncio.gather(
        *(client.post(f"/v1/bookings/{booking}/confirm", headers=tenant.handler) for booking in holds),
        *(
            client.post(f"/v1/requests/{other['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
            for other, slot_id in zip(others, slot_ids, strict=True)
        ),
    )
    confirms, books = answers[: len(holds)], answers[len(holds) :]
    assert all(a.status_code < 500 for a in answers), [a.text for a in answers if a.status_code >= 500]
    for confirm, book in zip(confirms, books, strict=True):
        assert sorted([confirm.status_code, book.status_code]) in ([200, 409], [201, 409])
    async with sessionmaker() as session:
        active = await session.execute(
            select(Booking.slot_id, func.count())
            .where(Booking.slot_id.in_(slot_ids), Booking.status == "booked")
            .group_by(Booking.slot_id)
        )
        assert sorted(str(slot) for slot, count in active if count == 1) == sorted(slot_ids)


async def test_concurrent_confirms_of_one_hold_log_one_booking(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    [slot_id] = await publish(agenda, [slot_item("twice", agenda.practitioners[0], next_day_at(14, days=1))])
    request = await open_request(tenant)
    hold = (
        await client.post(f"/v1/requests/{request['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    ).json()
    answers = await asyncio.gather(
        *(client.post(f"/v1/bookings/{hold['booking_id']}/confirm", headers=tenant.handler) for _ in range(8))
    )
    assert {a.status_code for a in answers} == {200}
    async with sessionmaker() as session:
        events = await session.scalar(
            select(func.count()).select_from(OrientationEvent).where(OrientationEvent.request_id == request["id"])
        )
    assert events == 1


async def test_an_orientation_and_a_booking_racing_on_one_request_leave_it_consistent(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    starts = [next_day_at(9, days=1) + timedelta(minutes=30 * i) for i in range(10)]
    slot_ids = await publish(agenda, [slot_item(f"or-{i}", agenda.practitioners[0], s) for i, s in enumerate(starts)])
    for slot_id in slot_ids:
        request = await open_request(tenant)
        book, orient = await asyncio.gather(
            client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler),
            client.post(
                f"/v1/requests/{request['id']}/orientations", json={"outcome": "advice"}, headers=tenant.handler
            ),
        )
        detail = (await client.get(f"/v1/requests/{request['id']}", headers=tenant.handler)).json()
        kinds = [e["kind"] for e in detail["events"]]
        # Whichever came first decided; the other was refused with a 409 and changed nothing.
        if book.status_code == 201:
            assert (orient.status_code, kinds, detail["status"]) == (409, ["booked"], "booked")
        else:
            assert (book.status_code, kinds, detail["status"]) == (409, ["advice"], "closed")
