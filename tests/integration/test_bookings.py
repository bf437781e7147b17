from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.bookings.models import Booking
from service.db import session_scope
from tests.builders import (
    Agenda,
    Clock,
    Tenant,
    new_agenda,
    next_day_at,
    open_request,
    publish,
    request_body,
    slot_item,
)
from tests.integration.test_principal_cache import listening, wait_for


@pytest.fixture
async def agenda(tenant: Tenant) -> Agenda:
    return await new_agenda(tenant, practitioners=2)


async def slot_status(agenda: Agenda, slot_id: str) -> str:
    [slot] = [s for s in await agenda.slots() if s["id"] == slot_id]
    status: str = slot["status"]
    return status


async def detail(client: httpx.AsyncClient, tenant: Tenant, request_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/requests/{request_id}", headers=tenant.handler)
    result: dict[str, Any] = response.json()
    return result


async def test_hold_then_confirm_books_the_patient(client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda) -> None:
    start = next_day_at(10, days=1)
    [slot_id] = await publish(agenda, [slot_item("a", agenda.practitioners[0], start)])
    request = await open_request(tenant)
    held = await client.post(f"/v1/requests/{request['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    assert held.status_code == 201, held.text
    hold = held.json()
    assert hold["status"] == "held"
    assert hold["hold_expires_at"] is not None
    assert hold["slot"]["practitioner"]["id"] == agenda.practitioners[0]["id"]
    assert hold["slot"]["start"] == start.isoformat()
    assert await slot_status(agenda, slot_id) == "held"
    assert (await detail(client, tenant, request["id"]))["status"] == "open"  # a hold is not a decision

    confirmed = await client.post(f"/v1/bookings/{hold['booking_id']}/confirm", headers=tenant.handler)
    assert confirmed.status_code == 200
    assert (confirmed.json()["status"], confirmed.json()["hold_expires_at"]) == ("booked", None)
    assert await slot_status(agenda, slot_id) == "booked"
    again = await client.post(f"/v1/bookings/{hold['booking_id']}/confirm", headers=tenant.handler)
    assert again.status_code == 200  # confirming twice changes nothing
    full = await detail(client, tenant, request["id"])
    assert full["status"] == "booked"
    assert [e["kind"] for e in full["events"]] == ["booked"]
    assert [b["status"] for b in full["bookings"]] == ["booked"]


async def test_book_in_one_step_and_a_booked_request_takes_no_second_slot(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda
) -> None:
    ids = await publish(
        agenda, [slot_item(f"s{i}", agenda.practitioners[i], next_day_at(11, days=1)) for i in range(2)]
    )
    request = await open_request(tenant)
    booked = await client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": ids[0]}, headers=tenant.handler)
    assert booked.status_code == 201
    assert booked.json()["status"] == "booked"
    second = await client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": ids[1]}, headers=tenant.handler)
    assert second.status_code == 409
    assert second.json()["code"] == "request_booked"
    assert await slot_status(agenda, ids[1]) == "free"


async def test_a_taken_slot_is_409_and_an_unknown_or_foreign_one_404(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda, other_tenant: Tenant
) -> None:
    [slot_id] = await publish(agenda, [slot_item("x", agenda.practitioners[0], next_day_at(12, days=1))])
    first, second = await open_request(tenant), await open_request(tenant)
    assert (
        await client.post(f"/v1/requests/{first['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    ).status_code == 201
    taken = await client.post(f"/v1/requests/{second['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    assert (taken.status_code, taken.json()["code"]) == (409, "slot_unavailable")
    theirs = await new_agenda(other_tenant, practitioners=1)
    [foreign] = await publish(theirs, [slot_item("f", theirs.practitioners[0], next_day_at(12, days=1))])
    for unknown in (foreign, second["id"]):
        response = await client.post(
            f"/v1/requests/{second['id']}/hold", json={"slot_id": unknown}, headers=tenant.handler
        )
        assert (response.status_code, response.json()["code"]) == (404, "slot_not_found")


async def test_slots_not_for_handlers_cannot_be_booked(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda
) -> None:
    [public_only] = await publish(
        agenda, [slot_item("p", agenda.practitioners[0], next_day_at(12, days=1), visibility=["PUBLIC"])]
    )
    request = await open_request(tenant)
    refused = await client.post(
        f"/v1/requests/{request['id']}/book", json={"slot_id": public_only}, headers=tenant.handler
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "slot_unavailable")


async def test_holding_another_slot_drops_the_previous_hold(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda
) -> None:
    ids = await publish(
        agenda, [slot_item(f"h{i}", agenda.practitioners[i], next_day_at(13, days=1)) for i in range(2)]
    )
    request = await open_request(tenant)
    first = (
        await client.post(f"/v1/requests/{request['id']}/hold", json={"slot_id": ids[0]}, headers=tenant.handler)
    ).json()
    second = await client.post(f"/v1/requests/{request['id']}/hold", json={"slot_id": ids[1]}, headers=tenant.handler)
    assert second.status_code == 201
    assert [await slot_status(agenda, i) for i in ids] == ["free", "held"]
    stale = await client.post(f"/v1/bookings/{first['booking_id']}/confirm", headers=tenant.handler)
    assert (stale.status_code, stale.json()["code"]) == (409, "hold_released")


async def test_release_gives_the_slot_back(client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda) -> None:
    [slot_id] = await publish(agenda, [slot_item("r", agenda.practitioners[0], next_day_at(14, days=1))])
    request = await open_request(tenant)
    hold = (
        await client.post(f"/v1/requests/{request['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    ).json()
    released = await client.post(f"/v1/bookings/{hold['booking_id']}/release", headers=tenant.handler)
    assert (released.status_code, released.json()["status"]) == (200, "released")
    assert await slot_status(agenda, slot_id) == "free"
    other = await open_request(tenant)
    assert (
        await client.post(f"/v1/requests/{other['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    ).status_code == 201


async def test_orienting_a_request_drops_its_hold(client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda) -> None:
    [slot_id] = await publish(agenda, [slot_item("o", agenda.practitioners[0], next_day_at(15, days=1))])
    request = await open_request(tenant)
    held = await client.post(f"/v1/requests/{request['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    assert (held.status_code, held.json()["status"]) == (201, "held")
    assert await slot_status(agenda, slot_id) == "held"
    oriented = await client.post(
        f"/v1/requests/{request['id']}/orientations", json={"outcome": "patient_declined"}, headers=tenant.handler
    )
    assert (oriented.status_code, oriented.json()["request"]["status"]) == (201, "closed")
    assert await slot_status(agenda, slot_id) == "free"
    full = await detail(client, tenant, request["id"])
    assert [(b["booking_id"], b["status"]) for b in full["bookings"]] == [(held.json()["booking_id"], "released")]
    # The slot really is free: another request takes it.
    other = await open_request(tenant)
    taken = await client.post(f"/v1/requests/{other['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    assert taken.status_code == 201


async def test_a_patient_cancellation_frees_the_slot_and_reopens_the_request_with_its_deadline(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda
) -> None:
    [slot_id] = await publish(agenda, [slot_item("c", agenda.practitioners[0], next_day_at(16, days=1))])
    request = await open_request(tenant)
    booking = (
        await client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    ).json()
    cancelled = await client.post(
        f"/v1/bookings/{booking['booking_id']}/cancel",
        json={"reason": "va mieux", "cancelled_by": "patient"},
        headers=tenant.handler,
    )
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["cancelled_side"]) == ("cancelled", "patient")
    assert await slot_status(agenda, slot_id) == "free"
    full = await detail(client, tenant, request["id"])
    assert full["status"] == "open"
    assert full["deadline_at"] == request["deadline_at"]
    assert [e["kind"] for e in full["events"]] == ["booked", "reopened"]
    assert (
        await client.post(
            f"/v1/bookings/{booking['booking_id']}/cancel",
            json={"reason": "x", "cancelled_by": "patient"},
            headers=tenant.handler,
        )
    ).status_code == 200


async def test_a_practitioner_cancellation_withdraws_the_slot(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda
) -> None:
    [slot_id] = await publish(agenda, [slot_item("pc", agenda.practitioners[0], next_day_at(17, days=1))])
    request = await open_request(tenant)
    booking = (
        await client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    ).json()
    await client.post(
        f"/v1/bookings/{booking['booking_id']}/cancel",
        json={"reason": "malade", "cancelled_by": "practitioner"},
        headers=tenant.handler,
    )
    assert await slot_status(agenda, slot_id) == "withdrawn"
    assert (await detail(client, tenant, request["id"]))["status"] == "open"


async def test_withdrawing_a_booked_slot_needs_the_flag_and_then_reopens_the_request(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda
) -> None:
    [slot_id] = await publish(agenda, [slot_item("wd", agenda.practitioners[0], next_day_at(18, days=1))])
    request = await open_request(tenant)
    await client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    refused = await client.delete("/v1/slots/wd", headers=agenda.headers)
    assert (refused.status_code, refused.json()["code"]) == (409, "slot_booked")
    assert (await detail(client, tenant, request["id"]))["status"] == "booked"
    withdrawn = await client.delete("/v1/slots/wd", params={"cancel_booking": "true"}, headers=agenda.headers)
    assert (withdrawn.status_code, withdrawn.json()["status"]) == (200, "withdrawn")
    full = await detail(client, tenant, request["id"])
    assert full["status"] == "open"
    assert [(b["status"], b["cancelled_side"]) for b in full["bookings"]] == [("cancelled", "practitioner")]
    assert full["events"][-1]["actor_kind"] == "client"


async def test_withdrawing_a_held_slot_ends_the_hold(client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda) -> None:
    [slot_id] = await publish(agenda, [slot_item("wh", agenda.practitioners[0], next_day_at(19, days=1))])
    request = await open_request(tenant)
    hold = (
        await client.post(f"/v1/requests/{request['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    ).json()
    assert (await client.delete("/v1/slots/wh", headers=agenda.headers)).status_code == 200
    late = await client.post(f"/v1/bookings/{hold['booking_id']}/confirm", headers=tenant.handler)
    assert (late.status_code, late.json()["code"]) == (409, "hold_expired")


async def test_outcome_is_reported_once_by_the_software_after_the_start(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda, clock: Clock
) -> None:
    clock.now = datetime.now(UTC)
    start = (clock.now + timedelta(minutes=10)).replace(second=0, microsecond=0)
    [slot_id] = await publish(agenda, [slot_item("out", agenda.practitioners[0], start)])
    request = await open_request(tenant)
    booking = (
        await client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    ).json()
    path = f"/v1/bookings/{booking['booking_id']}/outcome"
    early = await client.post(path, json={"outcome": "fulfilled"}, headers=agenda.headers)
    assert (early.status_code, early.json()["code"]) == (422, "appointment_not_started")
    clock.advance(minutes=20)  # (staff tokens live an hour)
    assert (await client.post(path, json={"outcome": "noshow"}, headers=tenant.handler)).status_code == 403
    stranger = await new_agenda(tenant, practitioners=1)
    assert (await client.post(path, json={"outcome": "noshow"}, headers=stranger.headers)).status_code == 404
    reported = await client.post(path, json={"outcome": "noshow"}, headers=agenda.headers)
    assert (reported.status_code, reported.json()["outcome"]) == (200, "noshow")
    assert (await client.post(path, json={"outcome": "noshow"}, headers=agenda.headers)).status_code == 200
    changed = await client.post(path, json={"outcome": "fulfilled"}, headers=agenda.headers)
    assert (changed.status_code, changed.json()["code"]) == (409, "outcome_already_reported")
    corrected = await client.post(path, json={"outcome": "fulfilled"}, headers=tenant.coordinator)
    assert (corrected.status_code, corrected.json()["outcome"]) == (200, "fulfilled")
    # Too late to cancel: it was a no-show or it happened.
    cancel = await client.post(
        f"/v1/bookings/{booking['booking_id']}/cancel",
        json={"reason": "x", "cancelled_by": "patient"},
        headers=tenant.handler,
    )
    assert (cancel.status_code, cancel.json()["code"]) == (409, "appointment_started")


async def test_suggestions_fit_the_needs_and_rank_by_deadline(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    clock.now = now
    gps = await new_agenda(tenant, practitioners=2)
    near_gp, far_gp = gps.practitioners
    far_site = await client.post(
        f"/v1/practitioners/{far_gp['id']}/sites",
        json={"name": "Loin", "commune_insee": "44047", "latitude": 47.2156, "longitude": -1.7228},
        headers=tenant.coordinator,
    )
    nurses = await new_agenda(tenant, practitioners=1, profession="60", specialty=None)
    base = (now + timedelta(hours=3)).replace(minute=0)
    ids = await publish(
        gps,
        [
            slot_item("far", far_gp, base, site_id=far_site.json()["id"]),
            slot_item("near", near_gp, base + timedelta(minutes=30)),
            slot_item("video", near_gp, base + timedelta(minutes=50), modality="VR"),
            slot_item("later", near_gp, base + timedelta(hours=2)),
            slot_item("hh", far_gp, base + timedelta(hours=4), modality="HH"),  # covers 44109 and 44143
            slot_item("after", near_gp, now + timedelta(hours=30)),
        ],
    )
    await publish(nurses, [slot_item("nurse", nurses.practitioners[0], base)])
    request = await open_request(tenant)  # GP, patient in 44109, any modality
    answer = await client.get(f"/v1/requests/{request['id']}/suggestions", headers=tenant.handler)
    assert answer.status_code == 200
    assert answer.json()["deadline_at"] == request["deadline_at"]
    items = answer.json()["items"]
    by_id = dict(zip(ids, ["far", "near", "video", "later", "hh", "after"], strict=True))
    # Same hour: nearest first. The video call needs no travel; the practice in the patient's commune
    # is about 1.5 km from Nantes's centre; the far practice (Couëron) about 14 km.
    assert [by_id[s["slot_id"]] for s in items] == ["video", "near", "far", "later", "hh", "after"]
    assert [s["within_deadline"] for s in items] == [True] * 5 + [False]
    assert items[0]["distance_km"] is None
    assert 0.5 < items[1]["distance_km"] < 3
    assert 10 < items[2]["distance_km"] < 18

    elsewhere = await open_request(tenant, patient={"commune_insee": "44020"}, needs={"modalities": ["HH"]})
    hh = (await client.get(f"/v1/requests/{elsewhere['id']}/suggestions", headers=tenant.handler)).json()["items"]
    assert hh == []  # no home visit covers 44020
    nurse_request = await open_request(tenant, needs={"profession": "60"})
    nurse = (await client.get(f"/v1/requests/{nurse_request['id']}/suggestions", headers=tenant.handler)).json()[
        "items"
    ]
    assert [s["practitioner"]["id"] for s in nurse] == [nurses.practitioners[0]["id"]]
    limited = await client.get(f"/v1/requests/{request['id']}/suggestions", params={"limit": 2}, headers=tenant.handler)
    assert len(limited.json()["items"]) == 2


async def test_replaying_a_post_with_the_same_key_creates_nothing(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ids = await publish(agenda, [slot_item(f"i{i}", agenda.practitioners[i], next_day_at(9, days=2)) for i in range(2)])
    headers = {**tenant.handler, "Idempotency-Key": "call-1"}
    first = await client.post("/v1/requests", json=request_body(), headers=headers)
    replay = await client.post("/v1/requests", json=request_body(), headers=headers)
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    queue = (await client.get("/v1/requests", headers=tenant.handler)).json()["items"]
    assert len(queue) == 1
    other = await client.post("/v1/requests", json=request_body(motif="M19.04.00"), headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")

    book_headers = {**tenant.handler, "Idempotency-Key": "book-1"}
    path = f"/v1/requests/{first.json()['id']}/book"
    booked = await client.post(path, json={"slot_id": ids[0]}, headers=book_headers)
    rebooked = await client.post(path, json={"slot_id": ids[0]}, headers=book_headers)
    assert (booked.status_code, rebooked.status_code) == (201, 201)
    assert rebooked.json()["booking_id"] == booked.json()["booking_id"]
    async with sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(Booking).where(Booking.cpts_id == tenant.cpts_id))
    assert count == 1


async def test_the_orientation_log_and_the_audit_trail_are_append_only(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    request = await open_request(tenant)
    await client.post(
        f"/v1/requests/{request['id']}/orientations", json={"outcome": "advice", "note": "x"}, headers=tenant.handler
    )
    for statement in (
        "UPDATE orientation_event SET kind = 'pharmacy' WHERE request_id = :id",
        "DELETE FROM orientation_event WHERE request_id = :id",
        "UPDATE audit_event SET action = 'nothing' WHERE object_id = :id",
        "DELETE FROM audit_event WHERE object_id = :id",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with session_scope(sessionmaker) as session:
                await session.execute(text(statement), {"id": request["id"]})
    # The purge may erase a free-text note, and nothing else.
    async with session_scope(sessionmaker) as session:
        await session.execute(
            text("UPDATE orientation_event SET note = NULL WHERE request_id = :id"), {"id": request["id"]}
        )
    events = (await detail(client, tenant, request["id"]))["events"]
    assert [(e["kind"], e["note"]) for e in events] == [("advice", None)]


async def test_software_and_other_tenants_cannot_touch_bookings(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda, other_tenant: Tenant
) -> None:
    [slot_id] = await publish(agenda, [slot_item("t", agenda.practitioners[0], next_day_at(9, days=3))])
    request = await open_request(tenant)
    hold = (
        await client.post(f"/v1/requests/{request['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler)
    ).json()
    path = f"/v1/bookings/{hold['booking_id']}"
    assert (await client.post(f"{path}/confirm", headers=other_tenant.handler)).status_code == 404
    assert (await client.post(f"{path}/confirm", headers=agenda.headers)).status_code == 403
    assert (await client.get(path, headers=other_tenant.coordinator)).status_code == 404
    assert (await client.get(path, headers=tenant.coordinator)).json()["status"] == "held"


async def _written_for(sessionmaker: async_sessionmaker[AsyncSession], request_id: str) -> dict[str, list[Any]]:
    """What a booking of the request wrote besides itself, without ids and times."""
    of_request = "WHERE request_id = CAST(:r AS uuid) ORDER BY id"
    queries = {
        "events": f"SELECT kind FROM orientation_event {of_request}",  # noqa: S608 - constants
        "outbox": f"SELECT event_type, destination, status FROM outbox_message {of_request}",  # noqa: S608
        "messages": f"SELECT channel, event_type, status FROM patient_message {of_request}",  # noqa: S608
        "audit": "SELECT action, detail->>'booking_id' IS NOT NULL FROM audit_event "
        "WHERE object_id = CAST(:r AS uuid) AND action LIKE 'booking.%' ORDER BY id",
        "request": "SELECT status FROM care_request WHERE id = CAST(:r AS uuid)",
    }
    async with session_scope(sessionmaker) as session:
        return {
            name: [tuple(row) for row in await session.execute(text(sql), {"r": request_id})]
            for name, sql in queries.items()
        }


async def test_a_confirmed_hold_records_what_a_booking_in_one_step_records(
    app: FastAPI,
    client: httpx.AsyncClient,
    tenant: Tenant,
    agenda: Agenda,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The event and the request's status, the software's notification, the patient's messages and
    the audit row: written by the same fragments on both paths (each in its single statement: the
    principals are cached once the worker listens)."""
    await wait_for(lambda: listening(app), within=6.0)
    slots = await publish(
        agenda, [slot_item(f"c{i}", agenda.practitioners[0], next_day_at(9 + i, days=1)) for i in range(2)]
    )
    told = {"notify_by": ["sms"], "patient": {**request_body()["patient"], "phone": "06 12 34 56 78"}}
    in_one, in_two = await open_request(tenant, **told), await open_request(tenant, **told)
    booked = await client.post(f"/v1/requests/{in_one['id']}/book", json={"slot_id": slots[0]}, headers=tenant.handler)
    held = await client.post(f"/v1/requests/{in_two['id']}/hold", json={"slot_id": slots[1]}, headers=tenant.handler)
    assert (booked.status_code, held.status_code) == (201, 201)
    confirmed = await client.post(f"/v1/bookings/{held.json()['booking_id']}/confirm", headers=tenant.handler)
    assert confirmed.status_code == 200
    one_step, confirmed_hold = (
        await _written_for(sessionmaker, in_one["id"]),
        await _written_for(sessionmaker, in_two["id"]),
    )
    assert one_step["events"] == confirmed_hold["events"] == [("booked",)]
    assert one_step["request"] == confirmed_hold["request"] == [("booked",)]
    assert one_step["outbox"] == confirmed_hold["outbox"] != []
    assert one_step["messages"] == confirmed_hold["messages"] != []
    assert one_step["audit"] == [("booking.book", True)]
    assert confirmed_hold["audit"] == [("booking.hold", True), ("booking.confirm", True)]
