from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.accounts.domain import Role
from service.auth import Principal
from service.bookings import service as bookings_service
from service.config import Settings
from service.main import create_app
from service.notifications import relay
from service.notifications.models import OutboxMessage
from tests.builders import Agenda, Tenant, bearer, next_day_at, open_request, publish, slot_item
from tests.conftest import make_settings
from tests.receiver import Receiver, verify

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = Receiver()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def relay_settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        SNP_WEBHOOK_MAX_ATTEMPTS=4,
        SNP_WEBHOOK_BACKOFF_BASE_SECONDS=2,
        SNP_WEBHOOK_TIMEOUT_SECONDS=2,
    )


@pytest.fixture
async def hooked(
    tenant: Tenant, receiver: Receiver, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Agenda]:
    """A software client with a webhook URL on the receiver."""
    members = [await tenant.add_practitioner() for _ in range(2)]
    created = await tenant.add_client([m["id"] for m in members], webhook_url=receiver.url)
    yield Agenda(tenant, created["id"], created["api_key"], members)
    # Leave nothing due for the next test's relay.
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.cpts_id == tenant.cpts_id).values(status="dead")
        )


async def secret_of(client: httpx.AsyncClient, tenant: Tenant, client_id: str) -> str:
    rotated = await client.post(f"/v1/clients/{client_id}/rotate-webhook-secret", headers=tenant.coordinator)
    secret: str = rotated.json()["webhook_secret"]
    return secret


async def book_one(
    client: httpx.AsyncClient, agenda: Agenda, external_id: str, day: int = 1, member: int = 0
) -> dict[str, Any]:
    [slot_id] = await publish(
        agenda, [slot_item(external_id, agenda.practitioners[member], next_day_at(9 + day % 9, days=day))]
    )
    request = await open_request(agenda.tenant)
    answer = await client.post(
        f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=agenda.tenant.handler
    )
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def clock_from(start: datetime) -> tuple[Callable[[], datetime], Callable[[timedelta], None]]:
    moment = [start]

    def now() -> datetime:
        return moment[0]

    def advance(delta: timedelta) -> None:
        moment[0] += delta

    return now, advance


async def deliveries(client: httpx.AsyncClient, agenda: Agenda) -> list[dict[str, Any]]:
    answer = await client.get(f"/v1/clients/{agenda.client_id}/deliveries", headers=agenda.tenant.coordinator)
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_a_confirmed_booking_arrives_signed_and_verifiable(
    client: httpx.AsyncClient,
    hooked: Agenda,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    relay_settings: Settings,
) -> None:
    secret = await secret_of(client, hooked.tenant, hooked.client_id)
    booking = await book_one(client, hooked, "sig-1")
    async with httpx.AsyncClient() as http:
        assert await relay.run_once(sessionmaker, relay_settings, http) == 1
    [call] = receiver.calls
    body = json.loads(call.body)
    assert call.headers["content-type"] == "application/json"
    assert call.headers["x-snp-event-type"] == "booking.confirmed"
    assert call.headers["x-snp-event-id"] == body["id"]
    assert body["type"] == "booking.confirmed"
    assert body["booking"]["booking_id"] == booking["booking_id"]
    assert body["booking"]["slot"]["external_id"] == "sig-1"
    assert body["booking"]["patient"]["family_name"] == "Dupont"
    assert body["booking"]["slot"]["start"].endswith(("+01:00", "+02:00"))
    # What a receiver does: t and v1 from the header, HMAC-SHA256 over "t." + body with its secret.
    pairs = [item.split("=", 1) for item in call.headers["x-snp-signature"].split(",")]
    parts = dict(pairs[:2])  # t, then the current secret's signature (the previous one follows)
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + call.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert verify(secret, call.headers["x-snp-signature"], call.body, int(parts["t"]))
    assert not verify("whsec_another", call.headers["x-snp-signature"], call.body, int(parts["t"]))
    assert not verify(secret, call.headers["x-snp-signature"], call.body + b" ", int(parts["t"]))
    assert not verify(secret, call.headers["x-snp-signature"], call.body, int(parts["t"]) + 3600)
    [delivery] = await deliveries(client, hooked)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 1, 200)
    async with httpx.AsyncClient() as http:
        assert await relay.run_once(sessionmaker, relay_settings, http) == 0  # nothing is sent twice


async def test_a_receiver_failing_three_times_then_succeeding_gets_it_once_more(
    client: httpx.AsyncClient,
    hooked: Agenda,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    relay_settings: Settings,
) -> None:
    await book_one(client, hooked, "retry-1")
    receiver.answers = deque([500, 503, 502])
    now, advance = clock_from(datetime.now(UTC) + timedelta(seconds=1))
    scheduled: list[datetime] = []
    async with httpx.AsyncClient() as http:
        for attempt in range(1, 5):
            assert await relay.run_once(sessionmaker, relay_settings, http, now=now) == 1
            [delivery] = await deliveries(client, hooked)
            if attempt < 4:
                assert (delivery["status"], delivery["attempts"]) == ("pending", attempt)
                due = datetime.fromisoformat(delivery["next_attempt_at"])
                scheduled.append(due)
                # Nothing is sent before it is due.
                assert await relay.run_once(sessionmaker, relay_settings, http, now=now) == 0
                advance(due - now() + timedelta(milliseconds=1))
    assert len(receiver.calls) == 4
    assert len({c.headers["x-snp-event-id"] for c in receiver.calls}) == 1  # the same event each time
    assert len({c.body for c in receiver.calls}) == 1
    [delivery] = await deliveries(client, hooked)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 4)
    assert [h["status_code"] for h in delivery["history"]] == [500, 503, 502, 200]
    # Exponential backoff with jitter: the k-th wait is between 0.5 and 1 x 2 s x 2^(k-1).
    waits = [
        (b - a).total_seconds()
        for a, b in zip([datetime.fromisoformat(h["at"]) for h in delivery["history"]], scheduled, strict=False)
    ]
    for k, wait in enumerate(waits, start=1):
        assert 2 * 2 ** (k - 1) * 0.5 <= wait <= 2 * 2 ** (k - 1) + 0.01, waits


async def test_a_receiver_that_never_succeeds_ends_dead_and_can_be_redelivered(
    client: httpx.AsyncClient,
    hooked: Agenda,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    relay_settings: Settings,
) -> None:
    await book_one(client, hooked, "dead-1")
    receiver.answers = deque([500] * 10)
    now, advance = clock_from(datetime.now(UTC) + timedelta(seconds=1))
    async with httpx.AsyncClient() as http:
        for _ in range(6):
            await relay.run_once(sessionmaker, relay_settings, http, now=now)
            advance(timedelta(hours=2))
    [delivery] = await deliveries(client, hooked)
    assert (delivery["status"], delivery["attempts"], delivery["next_attempt_at"]) == ("dead", 4, None)
    assert len(receiver.calls) == 4  # SNP_WEBHOOK_MAX_ATTEMPTS
    dead = await client.get(
        f"/v1/clients/{hooked.client_id}/deliveries", params={"status": "dead"}, headers=hooked.tenant.coordinator
    )
    assert [d["message_id"] for d in dead.json()["items"]] == [delivery["message_id"]]

    receiver.answers.clear()
    again = await client.post(
        f"/v1/clients/{hooked.client_id}/deliveries/{delivery['message_id']}/redeliver",
        headers=hooked.tenant.coordinator,
    )
    assert (again.status_code, again.json()["status"]) == (200, "pending")
    async with httpx.AsyncClient() as http:
        assert await relay.run_once(sessionmaker, relay_settings, http) == 1
    [delivery] = await deliveries(client, hooked)
    assert (delivery["status"], len(delivery["history"])) == ("delivered", 5)


async def test_two_relays_running_together_deliver_each_message_once(
    client: httpx.AsyncClient,
    hooked: Agenda,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    # A generous timeout: on a loaded machine a delivery that times out is (rightly) sent again,
    # which is not what this test is about (two relays never taking the same message at once).
    relay_settings = make_settings(database_url, SNP_WEBHOOK_MAX_ATTEMPTS=4, SNP_WEBHOOK_TIMEOUT_SECONDS=20)
    for n in range(12):
        await book_one(client, hooked, f"two-{n}", day=1 + n // 2, member=n % 2)
    receiver.delay = 0.05  # deliveries overlap in time
    async with httpx.AsyncClient() as first, httpx.AsyncClient() as second:
        rounds = 0
        while True:
            sent = await asyncio.gather(
                relay.run_once(sessionmaker, relay_settings, first, batch=3),
                relay.run_once(sessionmaker, relay_settings, second, batch=3),
            )
            rounds += 1
            if sum(sent) == 0:
                break
    ids = [c.headers["x-snp-event-id"] for c in receiver.calls]
    assert len(ids) == 12
    assert len(set(ids)) == 12
    assert {d["status"] for d in await deliveries(client, hooked)} == {"delivered"}
    assert rounds >= 2


async def test_a_rollback_after_a_failed_booking_leaves_no_outbox_message(
    hooked: Agenda, sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    [slot_id] = await publish(hooked, [slot_item("rb-1", hooked.practitioners[0], next_day_at(10, days=2))])
    request = await open_request(hooked.tenant)
    principal = Principal("user", hooked.tenant.cpts_id, hooked.tenant.cpts_id, Role.handler, "Europe/Paris")
    async with sessionmaker() as session:
        await session.begin()
        await bookings_service.take_slot(
            session, principal, uuid.UUID(request["id"]), uuid.UUID(slot_id), datetime.now(UTC), confirm=True
        )
        inside = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.request_id == request["id"])
        )
        assert inside == 1  # written with the booking...
        await session.rollback()  # ...and gone with it when the transaction fails
    async with sessionmaker() as session:
        after = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.request_id == request["id"])
        )
    assert after == 0
    # Over HTTP: a refused booking (the slot is taken) writes no message either.
    other = await open_request(hooked.tenant)
    await client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=hooked.tenant.handler)
    refused = await client.post(
        f"/v1/requests/{other['id']}/book", json={"slot_id": slot_id}, headers=hooked.tenant.handler
    )
    assert refused.status_code == 409
    async with sessionmaker() as session:
        for_other = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.request_id == other["id"])
        )
    assert for_other == 0


async def test_the_feed_shows_each_event_as_its_webhook_sent_it(
    client: httpx.AsyncClient,
    hooked: Agenda,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    relay_settings: Settings,
) -> None:
    """The feed's page (read by its own statement) and the relay's webhook (read through the ORM)
    render the same events alike: a booking and its cancellation, patient and note included."""
    booking = await book_one(client, hooked, "same-1")
    cancelled = await client.post(
        f"/v1/bookings/{booking['booking_id']}/cancel",
        json={"reason": "Le patient va mieux.", "cancelled_by": "patient"},
        headers=hooked.tenant.handler,
    )
    assert cancelled.status_code == 200
    async with httpx.AsyncClient() as http:
        assert await relay.run_once(sessionmaker, relay_settings, http) == 2
    sent = sorted((json.loads(call.body) for call in receiver.calls), key=lambda event: event["sequence"])
    feed = (await client.get("/v1/bookings/feed", headers=bearer(hooked.api_key))).json()["items"]
    assert [event["type"] for event in sent] == ["booking.confirmed", "booking.cancelled"]
    assert feed == sent


async def test_the_feed_resumes_exactly_after_its_cursor_and_shows_only_the_clients_practitioners(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    first, second = await tenant.add_practitioner(), await tenant.add_practitioner()
    mine = await tenant.add_client([first["id"]])
    theirs = await tenant.add_client([second["id"]])
    both = await tenant.add_client([first["id"], second["id"]])
    agenda_first = Agenda(tenant, mine["id"], mine["api_key"], [first])
    agenda_second = Agenda(tenant, theirs["id"], theirs["api_key"], [second])
    bookings = [await book_one(client, agenda_first, f"f-{n}", day=1 + n) for n in range(3)]
    await book_one(client, agenda_second, "other-1")
    await client.post(
        f"/v1/bookings/{bookings[0]['booking_id']}/cancel",
        json={"reason": "mieux", "cancelled_by": "patient"},
        headers=tenant.handler,
    )

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/bookings/feed", params=params, headers=bearer(mine["api_key"]))).json()
        if not page["items"]:
            assert page["next_cursor"] == cursor  # nothing new: poll again from the same place
            break
        seen += page["items"]
        cursor = page["next_cursor"]
    assert [(e["type"], e["booking"]["slot"]["external_id"]) for e in seen] == [
        ("booking.confirmed", "f-0"),
        ("booking.confirmed", "f-1"),
        ("booking.confirmed", "f-2"),
        ("booking.cancelled", "f-0"),
    ]
    assert [e["sequence"] for e in seen] == sorted(e["sequence"] for e in seen)
    assert seen[-1]["booking"]["cancelled_side"] == "patient"
    assert seen[0]["booking"]["patient"]["phone"] == "06 12 34 56 78"

    # A new booking comes after the cursor, and only that.
    await book_one(client, agenda_first, "f-late", day=6)
    later = (await client.get("/v1/bookings/feed", params={"cursor": cursor}, headers=bearer(mine["api_key"]))).json()
    assert [e["booking"]["slot"]["external_id"] for e in later["items"]] == ["f-late"]

    other_feed = (await client.get("/v1/bookings/feed", headers=bearer(theirs["api_key"]))).json()
    assert [e["booking"]["slot"]["external_id"] for e in other_feed["items"]] == ["other-1"]
    both_feed = (await client.get("/v1/bookings/feed", params={"limit": 500}, headers=bearer(both["api_key"]))).json()
    assert len(both_feed["items"]) == 6
    assert (await client.get("/v1/bookings/feed", headers=tenant.handler)).status_code == 403
    bad = await client.get("/v1/bookings/feed", params={"cursor": "nope"}, headers=bearer(mine["api_key"]))
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")
    # Without a webhook URL, events wait in the feed only.
    assert {
        d["status"]
        for d in (await client.get(f"/v1/clients/{mine['id']}/deliveries", headers=tenant.coordinator)).json()["items"]
    } == {"feed_only"}


async def test_reading_the_feed_is_audited(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    from service.audit.models import AuditEvent

    member = await tenant.add_practitioner()
    software = await tenant.add_client([member["id"]])
    booking = await book_one(client, Agenda(tenant, software["id"], software["api_key"], [member]), "aud-1")
    await client.get("/v1/bookings/feed", headers=bearer(software["api_key"]))
    async with sessionmaker() as session:
        actions = list(
            await session.execute(
                select(AuditEvent.action, AuditEvent.actor_kind, AuditEvent.actor_id).where(
                    AuditEvent.object_id == booking["request_id"], AuditEvent.action == "feed.read"
                )
            )
        )
    assert [(a, k, str(i)) for a, k, i in actions] == [("feed.read", "client", software["id"])]


async def test_deliveries_of_another_cpts_are_404(
    client: httpx.AsyncClient, hooked: Agenda, other_tenant: Tenant
) -> None:
    answer = await client.get(f"/v1/clients/{hooked.client_id}/deliveries", headers=other_tenant.coordinator)
    assert answer.status_code == 404
    redeliver = await client.post(
        f"/v1/clients/{hooked.client_id}/deliveries/1/redeliver", headers=other_tenant.coordinator
    )
    assert redeliver.status_code == 404


async def test_the_relay_runs_inside_the_service(
    hooked: Agenda, receiver: Receiver, client: httpx.AsyncClient, database_url: str
) -> None:
    app: FastAPI = create_app(make_settings(database_url, SNP_RELAY_ENABLED=True, SNP_RELAY_INTERVAL_SECONDS=0.05))
    async with app.router.lifespan_context(app):
        await book_one(client, hooked, "inside-1")
        for _ in range(100):
            if receiver.calls:
                break
            await asyncio.sleep(0.05)
    assert [json.loads(c.body)["booking"]["slot"]["external_id"] for c in receiver.calls] == ["inside-1"]


async def test_the_readme_receiver_verifies_a_real_webhook(
    client: httpx.AsyncClient,
    hooked: Agenda,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    relay_settings: Settings,
) -> None:
    section = README.split("## Learning of bookings", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    secret = await secret_of(client, hooked.tenant, hooked.client_id)
    await book_one(client, hooked, "readme-1")
    async with httpx.AsyncClient() as http:
        await relay.run_once(sessionmaker, relay_settings, http)
    [call] = receiver.calls
    namespace: dict[str, Any] = {}
    exec(code.replace('"whsec_..."', repr(secret)), namespace)  # noqa: S102 - the README's own example
    headers = {name: call.headers[name.lower()] for name in ("X-SNP-Signature", "X-SNP-Event-Id")}
    assert namespace["handle"](headers, call.body) == 200
    assert namespace["seen"] == {call.headers["x-snp-event-id"]}
    assert namespace["handle"](headers, call.body) == 200  # the duplicate is dropped
    assert namespace["handle"](headers, call.body.replace(b"Dupont", b"Durand")) == 401
