"""The round trips to PostgreSQL counted in the driver (`snp_db_round_trips_total`, what `make bench`
divides by its requests): nothing for a request that does not touch the database, and the booking
path's count pinned, so that a change adding an exchange to it is seen here first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.builders import (
    Clock,
    Tenant,
    hold_for_new_request,
    login,
    new_agenda,
    next_day_at,
    open_request,
    publish,
    slot_item,
)
from tests.integration.test_principal_cache import listening, wait_for

KINDS = ("statement", "begin", "end")


def counted() -> dict[str, float]:
    return {kind: REGISTRY.get_sample_value("snp_db_round_trips_total", {"kind": kind}) or 0.0 for kind in KINDS}


async def cost_of(client: httpx.AsyncClient, method: str, path: str, **options: object) -> tuple[int, dict[str, float]]:
    before = counted()
    answer = await client.request(method, path, **options)  # type: ignore[arg-type]
    after = counted()
    return answer.status_code, {kind: after[kind] - before[kind] for kind in KINDS}


async def test_a_request_without_the_database_costs_no_round_trip(client: httpx.AsyncClient) -> None:
    status, cost = await cost_of(client, "GET", "/healthz")
    assert status == 200
    assert cost == {"statement": 0, "begin": 0, "end": 0}


async def test_an_authenticated_read_costs_its_statements_and_a_booking_one_round_trip(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await wait_for(lambda: listening(app), within=6.0)  # principals are cached while it listens
    await client.get("/v1/cpts/current", headers=tenant.handler)  # statements prepared, token verified
    status, read = await cost_of(client, "GET", "/v1/cpts/current", headers=tenant.handler)
    assert status == 200
    # The CPTS with its compensation rates and targets in one query, outside any transaction (a
    # read marked `statements_alone`); the principal comes from the worker's cache.
    assert read == {"statement": 1, "begin": 0, "end": 0}

    agenda = await new_agenda(tenant, practitioners=1)
    slot_ids = await publish(
        agenda, [slot_item(f"rt-{i}", agenda.practitioners[0], next_day_at(9 + i)) for i in range(2)]
    )
    warm = await open_request(tenant)
    await client.post(f"/v1/requests/{warm['id']}/book", json={"slot_id": slot_ids[0]}, headers=tenant.handler)
    request = await open_request(tenant)
    status, booking = await cost_of(
        client,
        "POST",
        f"/v1/requests/{request['id']}/book",
        json={"slot_id": slot_ids[1]},
        headers={**tenant.handler, "Idempotency-Key": "round-trips-1"},
    )
    assert status == 201
    # One statement outside any transaction: the key's claim, the request's lock, the slot's claim,
    # the booking, its event, notifications and audit row (the principal is cached).
    assert booking == {"statement": 1, "begin": 0, "end": 0}
    # The same key again: the statement declines (the key is taken) and the general path replays.
    status, replay = await cost_of(
        client,
        "POST",
        f"/v1/requests/{request['id']}/book",
        json={"slot_id": slot_ids[1]},
        headers={**tenant.handler, "Idempotency-Key": "round-trips-1"},
    )
    assert status == 201
    assert replay["statement"] > 1
    assert replay["begin"] == 1


async def test_a_booking_whose_principal_is_not_cached_takes_the_general_path_and_stays_idempotent(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A new token's first request reads its principal through the request's session; the booking
    then runs on that session's connection (a second connection could starve the pool)."""
    await wait_for(lambda: listening(app), within=6.0)
    agenda = await new_agenda(tenant, practitioners=1)
    (slot_id,) = await publish(agenda, [slot_item("rt-fresh", agenda.practitioners[0], next_day_at(15))])
    request = await open_request(tenant)
    fresh = {"Authorization": f"Bearer {await login(client, tenant.emails['handler'])}"}
    keyed = {**fresh, "Idempotency-Key": "fresh-token-1"}
    path = f"/v1/requests/{request['id']}/book"
    status, first = await cost_of(client, "POST", path, json={"slot_id": slot_id}, headers=keyed)
    assert status == 201
    # In the session's transaction after the principal's read: the key's claim, the lock and claim,
    # the booking's writes, the stored answer (the single statement would make it two in all).
    assert first["begin"] == 1
    assert first["statement"] >= 5
    again = await client.post(path, json={"slot_id": slot_id}, headers=keyed)  # now cached: declines, replays
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"


async def test_the_queue_costs_one_statement_with_the_callbacks_and_the_audit_of_the_page_shown(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await wait_for(lambda: listening(app), within=6.0)
    request = await open_request(tenant)
    for hour in (11, 9):
        called = await client.post(
            f"/v1/requests/{request['id']}/callbacks",
            json={"due_at": next_day_at(hour).isoformat()},
            headers=tenant.handler,
        )
        assert called.status_code == 201, called.text
    await client.get("/v1/requests", headers=tenant.handler)  # statements prepared
    status, queue = await cost_of(client, "GET", "/v1/requests", headers=tenant.handler)
    assert status == 200
    # The page, each request's next callback and the audit rows of the read: one statement.
    assert queue == {"statement": 1, "begin": 0, "end": 0}, queue
    items = (await client.get("/v1/requests", headers=tenant.handler)).json()["items"]
    shown = next(i for i in items if i["id"] == request["id"])["callback_due_at"]
    assert datetime.fromisoformat(shown) == next_day_at(9)  # the earliest of the two

    # A page of one among several: the request shown is audited, the one fetched to make the next
    # cursor is not.
    await open_request(tenant)
    one = await client.get("/v1/requests", params={"limit": 1}, headers={**tenant.handler, "X-Request-ID": "page-1"})
    assert one.status_code == 200
    assert one.json()["next_cursor"] is not None
    async with sessionmaker() as session:
        audited = await session.scalars(
            text("SELECT object_id FROM audit_event WHERE action = 'request.list' AND http_request_id = 'page-1'")
        )
        assert [str(i) for i in audited] == [one.json()["items"][0]["id"]]


async def test_a_refused_booking_is_answered_by_its_single_statement_as_the_general_path_answers(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """When the single statement declines for a reason it saw whole (no such request, its status,
    the slot taken or unknown), the refusal costs that one round trip, and says what the general
    path (taken by a token whose principal is not cached yet) says."""
    await wait_for(lambda: listening(app), within=6.0)
    agenda = await new_agenda(tenant, practitioners=1)
    taken, free = await publish(
        agenda, [slot_item(f"rt-refused-{i}", agenda.practitioners[0], next_day_at(9 + i)) for i in range(2)]
    )
    booked = await open_request(tenant)
    answer = await client.post(f"/v1/requests/{booked['id']}/book", json={"slot_id": taken}, headers=tenant.handler)
    assert answer.status_code == 201
    waiting = await open_request(tenant)
    unknown = "00000000-0000-4000-8000-000000000000"
    cases = {
        "slot taken": (waiting["id"], taken, 409),
        "no such slot": (waiting["id"], unknown, 404),
        "no such request": (unknown, free, 404),
        "request already booked": (booked["id"], free, 409),
    }
    await client.post(f"/v1/requests/{waiting['id']}/book", json={"slot_id": taken}, headers=tenant.handler)  # warm
    for case, (request_id, slot_id, expected) in cases.items():
        path = f"/v1/requests/{request_id}/book"
        status, cost = await cost_of(client, "POST", path, json={"slot_id": slot_id}, headers=tenant.handler)
        fast = await client.post(path, json={"slot_id": slot_id}, headers=tenant.handler)
        fresh = {"Authorization": f"Bearer {await login(client, tenant.emails['handler'])}"}
        general = await client.post(path, json={"slot_id": slot_id}, headers=fresh)
        assert status == fast.status_code == expected, case
        assert cost == {"statement": 1, "begin": 0, "end": 0}, case
        assert fast.json() == general.json(), case


async def test_a_confirmation_costs_two_round_trips_and_a_retry_replays_it(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A hold confirmed: the booking read, then one statement (the key's claim, the request and the
    booking locked, the slot's and the booking's change, the event, notifications, messages and
    audit row), outside any transaction. The same key again replays the same answer."""
    await wait_for(lambda: listening(app), within=6.0)
    agenda = await new_agenda(tenant, practitioners=1)
    slot_ids = await publish(
        agenda, [slot_item(f"rt-confirm-{i}", agenda.practitioners[0], next_day_at(9 + i)) for i in range(2)]
    )
    for i, slot_id in enumerate(slot_ids):
        booking_id = await hold_for_new_request(tenant, slot_id)
        keyed = {**tenant.handler, "Idempotency-Key": f"rt-confirm-{i}"}
        path = f"/v1/bookings/{booking_id}/confirm"
        status, cost = await cost_of(client, "POST", path, headers=keyed)  # the first warms the statements
    assert status == 200
    assert cost == {"statement": 2, "begin": 0, "end": 0}, cost
    first = (await client.get(f"/v1/bookings/{booking_id}", headers=tenant.handler)).json()
    replay = await client.post(path, headers=keyed)
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (200, "true")
    assert replay.json() == {key: first[key] for key in replay.json()}
    assert replay.json()["status"] == "booked"


async def test_a_confirmation_the_statement_declines_is_answered_as_the_general_path_answers(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    """No such booking, a booking released, a hold lapsed and taken over, a booking confirmed
    already: the single statement declines (or is not run) and the answer is the general path's,
    the one a token whose principal is not cached yet gets."""
    await wait_for(lambda: listening(app), within=6.0)
    clock.now = datetime.now(UTC)
    agenda = await new_agenda(tenant, practitioners=1)
    slots = await publish(
        agenda, [slot_item(f"rt-decline-{i}", agenda.practitioners[0], next_day_at(9 + i)) for i in range(3)]
    )
    released = await hold_for_new_request(tenant, slots[0])
    assert (await client.post(f"/v1/bookings/{released}/release", headers=tenant.handler)).status_code == 200
    confirmed = await hold_for_new_request(tenant, slots[1])
    assert (await client.post(f"/v1/bookings/{confirmed}/confirm", headers=tenant.handler)).status_code == 200
    lapsed = await hold_for_new_request(tenant, slots[2])
    clock.advance(minutes=4)
    await hold_for_new_request(tenant, slots[2])  # another handler takes the slot whose hold lapsed
    cases = {
        "no such booking": ("00000000-0000-4000-8000-000000000000", 404),
        "released": (released, 409),
        "taken over": (lapsed, 409),
        "confirmed already": (confirmed, 200),
    }
    for case, (booking_id, expected) in cases.items():
        path = f"/v1/bookings/{booking_id}/confirm"
        fast = await client.post(path, headers=tenant.handler)
        fresh = {"Authorization": f"Bearer {await login(client, tenant.emails['handler'])}"}
        general = await client.post(path, headers=fresh)
        assert fast.status_code == general.status_code == expected, (case, fast.text)
        assert fast.json() == general.json(), case
    taken_over = await client.post(f"/v1/bookings/{lapsed}/confirm", headers=tenant.handler)
    assert taken_over.json()["code"] == "hold_expired"


async def test_concurrent_confirmations_in_one_statement_book_once(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A double click, with and without the same key: one booking, one event, the same answer."""
    await wait_for(lambda: listening(app), within=6.0)
    agenda = await new_agenda(tenant, practitioners=1)
    slots = await publish(
        agenda, [slot_item(f"rt-twice-{i}", agenda.practitioners[0], next_day_at(9 + i)) for i in range(2)]
    )
    for i, slot_id in enumerate(slots):
        booking_id = await hold_for_new_request(tenant, slot_id)
        headers = {**tenant.handler, "Idempotency-Key": "rt-twice"} if i else tenant.handler
        answers = await asyncio.gather(
            *(client.post(f"/v1/bookings/{booking_id}/confirm", headers=headers) for _ in range(6))
        )
        assert [a.status_code for a in answers] == [200] * 6
        assert len({a.content for a in answers}) == 1
        async with sessionmaker() as session:
            kinds = await session.scalars(
                text("SELECT kind FROM orientation_event WHERE request_id = :r"), {"r": answers[0].json()["request_id"]}
            )
            assert list(kinds) == ["booked"]
