"""The round trips to PostgreSQL counted in the driver (`snp_db_round_trips_total`, what `make bench`
divides by its requests): nothing for a request that does not touch the database, and the booking
path's count pinned, so that a change adding an exchange to it is seen here first."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.cpts.models import Cpts
from service.db import untouched
from tests.builders import (
    Agenda,
    Clock,
    Tenant,
    bearer,
    hold_for_new_request,
    login,
    new_agenda,
    next_day_at,
    open_request,
    publish,
    request_body,
    slot_item,
)
from tests.integration.test_notifications import book_one
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


async def test_a_new_request_costs_two_round_trips_and_a_retry_replays_its_first_answer(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The CPTS's settings, then one statement (the key's claim with the answer, the request, its
    audit row), outside any transaction. The same key replays the first answer even after the
    request was booked; the same key with another body is refused and opens nothing."""
    await wait_for(lambda: listening(app), within=6.0)
    await open_request(tenant)  # statements prepared
    keyed = {**tenant.handler, "Idempotency-Key": "rt-new-request"}
    status, cost = await cost_of(client, "POST", "/v1/requests", json=request_body(), headers=keyed)
    assert status == 201
    assert cost == {"statement": 2, "begin": 0, "end": 0}, cost
    first = await client.post("/v1/requests", json=request_body(), headers=keyed)
    assert (first.status_code, first.headers["idempotent-replayed"]) == (201, "true")
    opened = first.json()
    assert opened["status"] == "open"
    agenda = await new_agenda(tenant, practitioners=1)
    (slot_id,) = await publish(agenda, [slot_item("rt-new-request", agenda.practitioners[0], next_day_at(10))])
    booked = await client.post(f"/v1/requests/{opened['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    assert booked.status_code == 201
    replay = await client.post("/v1/requests", json=request_body(), headers=keyed)
    assert (replay.status_code, replay.content) == (201, first.content)  # the first answer: still "open"
    other = await client.post("/v1/requests", json=request_body(motif="M19.04.00"), headers=keyed)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    queue = (await client.get("/v1/requests", params={"status": "open"}, headers=tenant.handler)).json()
    assert opened["id"] not in [item["id"] for item in queue["items"]]  # booked, and no second request


async def test_a_new_request_is_written_alike_by_its_single_statement_and_the_general_path(
    app: FastAPI,
    client: httpx.AsyncClient,
    tenant: Tenant,
    clock: Clock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The same call taken at the same instant by the single statement (principal cached) and by the
    general path (a token whose principal is not cached yet): the same row, audit row, key record
    and answer, but for the request's id."""
    await wait_for(lambda: listening(app), within=6.0)
    clock.now = datetime.now(UTC)
    body = request_body(note="Rappeler après 18 h", notify_by=["sms"], via_sas=True, regulating_physician="10003456789")
    await open_request(tenant)  # the principal cached, the statements prepared
    keys = ["parity-fast", "parity-general"]
    costs = []
    for key in keys:
        # A new login drops the principal from the worker's cache: its next request reads it again.
        headers = tenant.handler if key == "parity-fast" else bearer(await login(client, tenant.emails["handler"]))
        status, cost = await cost_of(
            client, "POST", "/v1/requests", json=body, headers={**headers, "Idempotency-Key": key}
        )
        assert status == 201
        costs.append(cost)
    assert (costs[0]["begin"], costs[1]["begin"]) == (0, 1)  # both paths were taken
    records, bodies, rows, audits = [], [], [], []
    async with sessionmaker() as session:
        for key in keys:
            record = await one_row(
                session,
                "SELECT status_code, response_body, response_headers, answer_of FROM idempotency_record"
                " WHERE key = :key",
                key=key,
            )
            bodies.append(app.state.response_cipher.decrypt(record.pop("response_body")))
            records.append(record)
            request_id = json.loads(bodies[-1])["id"]
            rows.append(await one_row(session, "SELECT * FROM care_request WHERE id = :id", id=request_id))
            audits.append(
                await one_row(
                    session,
                    "SELECT actor_kind, actor_id, action, object_type, at, detail FROM audit_event"
                    " WHERE object_id = :id AND action = 'request.create'",
                    id=request_id,
                )
            )
    ids = [str(row.pop("id")) for row in rows]
    assert records[0] == records[1]
    assert bodies[0].replace(ids[0].encode(), b"") == bodies[1].replace(ids[1].encode(), b"")
    assert rows[0] == rows[1]
    assert rows[0]["via_sas"]
    assert rows[0]["patient_pseudonym"]
    assert rows[0]["notify_by"] == ["sms"]
    assert audits[0] == audits[1]


async def one_row(session: AsyncSession, sql: str, **params: Any) -> dict[str, Any]:
    return dict((await session.execute(text(sql), params)).mappings().one())


async def test_concurrent_new_requests_with_one_key_open_one_request(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A double click on "Enregistrer l'appel": six concurrent creations with one key open one
    request and all get its answer."""
    await wait_for(lambda: listening(app), within=6.0)
    await open_request(tenant)  # the principal cached: the single statement is taken
    keyed = {**tenant.handler, "Idempotency-Key": "rt-new-twice"}
    body = request_body(patient={**request_body()["patient"], "family_name": "Doublon"})
    answers = await asyncio.gather(*(client.post("/v1/requests", json=body, headers=keyed) for _ in range(6)))
    assert [a.status_code for a in answers] == [201] * 6
    assert len({a.content for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 5
    async with sessionmaker() as session:
        opened = await session.scalar(
            text("SELECT count(*) FROM care_request WHERE cpts_id = :c AND patient_family_name = 'Doublon'"),
            {"c": tenant.cpts_id},
        )
    assert opened == 1


async def test_a_feed_page_costs_one_statement_with_the_audit_of_the_events_shown(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The practice software's feed: its page and the audit rows of the requests it shows in one
    statement outside any transaction; the event read to tell a next page is not audited."""
    await wait_for(lambda: listening(app), within=6.0)
    member = await tenant.add_practitioner()
    software = await tenant.add_client([member["id"]])
    agenda = Agenda(tenant, software["id"], software["api_key"], [member])
    booked = [await book_one(client, agenda, f"rt-feed-{n}", day=1 + n) for n in range(3)]
    headers = bearer(software["api_key"])
    first = (await client.get("/v1/bookings/feed", params={"limit": 1}, headers=headers)).json()  # key cached
    params = {"limit": 1, "cursor": first["next_cursor"]}
    status, cost = await cost_of(client, "GET", "/v1/bookings/feed", params=params, headers=headers)
    assert status == 200
    assert cost == {"statement": 1, "begin": 0, "end": 0}, cost
    async with sessionmaker() as session:
        audited = [
            await session.scalar(
                text("SELECT count(*) FROM audit_event WHERE action = 'feed.read' AND object_id = :id"),
                {"id": booking["request_id"]},
            )
            for booking in booked
        ]
    assert audited == [1, 1, 0]


async def test_only_a_session_that_did_nothing_is_left_without_commit_or_close(
    sessionmaker: async_sessionmaker[AsyncSession], tenant: Tenant
) -> None:
    """`routing.TransactionalRoute` skips the commit, rollback and close of an untouched session (a
    booking's, whose statement runs beside it); anything pending must still be committed."""
    fresh = sessionmaker()
    assert untouched(fresh)
    fresh.add(Cpts(id=uuid.uuid4(), name="En attente", population=1000, timezone="Europe/Paris"))
    assert not untouched(fresh)  # an object added, not flushed: committing would write it
    fresh.expunge_all()
    await fresh.close()
    async with sessionmaker() as session:
        await session.execute(text("SELECT 1"))
        assert not untouched(session)  # a transaction begun
        await session.commit()
        assert untouched(session)  # committed: the connection is back in the pool
        loaded = await session.get(Cpts, tenant.cpts_id)
        await session.commit()
        assert loaded is not None
        assert not untouched(session)


async def test_the_connections_of_single_statements_go_back_to_the_pool_whatever_the_answer(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The hot paths check a connection out for the driver alone (`db.DriverConnection`), beside
    SQLAlchemy's `Connection`: through bookings answered 201, 409 and 404, a confirmation, a new
    request and the reads, each goes back to the pool and is used again. One not given back is
    closed by the garbage collector and the next request pays for a new PostgreSQL backend."""
    await wait_for(lambda: listening(app), within=6.0)
    pool = app.state.engine.sync_engine.pool
    agenda = await new_agenda(tenant, practitioners=1)
    first, second = await publish(
        agenda, [slot_item(f"rt-pool-{i}", agenda.practitioners[0], next_day_at(9 + i)) for i in range(2)]
    )
    booked, waiting = await open_request(tenant), await open_request(tenant)
    unknown = "00000000-0000-4000-8000-000000000000"
    opened: list[object] = []

    def count(*_: object) -> None:
        opened.append(None)

    event.listen(pool, "connect", count)
    try:
        answers = [
            await client.post(f"/v1/requests/{booked['id']}/book", json={"slot_id": first}, headers=tenant.handler),
            await client.post(f"/v1/requests/{waiting['id']}/book", json={"slot_id": first}, headers=tenant.handler),
            await client.post(f"/v1/requests/{waiting['id']}/book", json={"slot_id": unknown}, headers=tenant.handler),
        ]
        path = f"/v1/requests/{waiting['id']}/hold"
        held = await client.post(path, json={"slot_id": second}, headers=tenant.handler)
        confirmed = await client.post(f"/v1/bookings/{held.json()['booking_id']}/confirm", headers=tenant.handler)
        answers += [
            held,
            confirmed,
            await client.post("/v1/requests", json=request_body(), headers=tenant.handler),
            await client.get("/v1/cpts/current", headers=tenant.handler),
            await client.get("/v1/requests", headers=tenant.handler),
        ]
    finally:
        event.remove(pool, "connect", count)
    assert [a.status_code for a in answers] == [201, 409, 404, 201, 200, 201, 200, 200]
    assert (len(opened), pool.checkedout()) == (0, 0)
