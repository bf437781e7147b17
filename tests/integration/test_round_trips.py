"""The round trips to PostgreSQL counted in the driver (`snp_db_round_trips_total`, what `make bench`
divides by its requests): nothing for a request that does not touch the database, and the booking
path's count pinned, so that a change adding an exchange to it is seen here first."""

from __future__ import annotations

from datetime import datetime

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from tests.builders import Tenant, login, new_agenda, next_day_at, open_request, publish, slot_item
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


async def test_the_queue_costs_its_page_with_the_callbacks_and_its_audit_row(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
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
    # The page with each request's next callback in one statement, and the audit row of the read.
    assert queue == {"statement": 2, "begin": 0, "end": 0}, queue
    items = (await client.get("/v1/requests", headers=tenant.handler)).json()["items"]
    shown = next(i for i in items if i["id"] == request["id"])["callback_due_at"]
    assert datetime.fromisoformat(shown) == next_day_at(9)  # the earliest of the two


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


async def test_a_confirmation_records_the_booking_in_one_statement(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A hold confirmed: the key's claim, the booking and the request locked, the slot's claim, the
    booking's change, then its event, notifications, messages and audit row in one statement, the
    slot's details and the stored answer, in one transaction."""
    await wait_for(lambda: listening(app), within=6.0)
    agenda = await new_agenda(tenant, practitioners=1)
    slot_ids = await publish(
        agenda, [slot_item(f"rt-confirm-{i}", agenda.practitioners[0], next_day_at(9 + i)) for i in range(2)]
    )
    for i, slot_id in enumerate(slot_ids):
        request = await open_request(tenant)
        hold = await client.post(
            f"/v1/requests/{request['id']}/hold", json={"slot_id": slot_id}, headers=tenant.handler
        )
        keyed = {**tenant.handler, "Idempotency-Key": f"rt-confirm-{i}"}
        path = f"/v1/bookings/{hold.json()['booking_id']}/confirm"
        status, cost = await cost_of(client, "POST", path, headers=keyed)  # the first warms the statements
    assert status == 200
    assert cost == {"statement": 9, "begin": 1, "end": 1}, cost
