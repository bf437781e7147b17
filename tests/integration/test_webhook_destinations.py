"""Webhooks cannot be turned against the service or other tenants: where they may go (checked with
stubbed resolvers: no traffic ever leaves 127.0.0.1), fairness between clients, messages nobody
should receive, the client's current practitioners, secret rotation, and logs without secrets."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import destinations
from service.config import Settings, webhook_policy
from service.destinations import RefusedDestination, WebhookPolicy
from service.logging import drop_personal_data
from service.notifications import relay
from service.notifications.models import OutboxMessage
from tests.builders import Agenda, Tenant, next_day_at, open_request, publish, slot_item
from tests.conftest import make_settings
from tests.receiver import Receiver, verify


def resolving(table: dict[str, list[str]]) -> destinations.Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


PRODUCTION = WebhookPolicy(resolver=resolving({"hooks.example": ["93.184.215.14"]}))


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("http://hooks.example/x", ["93.184.215.14"]),  # plain http outside development
        ("https://user:pass@hooks.example/x", ["93.184.215.14"]),  # credentials in the URL
        ("https://hooks.example/x", ["127.0.0.1"]),  # loopback, not allow-listed
        ("https://hooks.example/x", ["169.254.169.254"]),  # the cloud metadata endpoint
        ("https://hooks.example/x", ["10.0.0.1"]),
        ("https://hooks.example/x", ["192.168.1.10"]),
        ("https://hooks.example/x", ["::1"]),
        ("https://hooks.example/x", ["::ffff:127.0.0.1"]),  # loopback behind an IPv4-mapped address
        ("https://hooks.example/x", ["fd00::1"]),
        ("https://hooks.example/x", ["224.0.0.1"]),  # multicast
        ("https://hooks.example/x", ["0.0.0.0"]),  # noqa: S104 - refused, not bound
        ("https://hooks.example/x", ["93.184.215.14", "10.0.0.1"]),  # one bad address among good ones
        ("https://hooks.example/x", []),
        ("https:///x", ["93.184.215.14"]),
    ],
)
async def test_a_destination_inside_the_network_is_refused(url: str, resolved: list[str]) -> None:
    policy = WebhookPolicy(resolver=resolving({"hooks.example": resolved}))
    with pytest.raises(RefusedDestination):
        await destinations.check(url, policy)


@pytest.mark.parametrize("host", ["127.0.0.1", "0x7f000001", "2130706433", "[::1]", "localhost"])
async def test_loopback_spelt_any_way_is_refused_by_the_real_resolver(host: str) -> None:
    # Numeric hosts and localhost resolve on this machine, without any DNS query.
    with pytest.raises(RefusedDestination):
        await destinations.check(f"https://{host}:8443/hook", WebhookPolicy())


async def test_public_https_passes_and_the_delivery_goes_to_the_checked_address() -> None:
    checked = await destinations.check("https://hooks.example:8443/x?a=1", PRODUCTION)
    assert (checked.host, checked.address) == ("hooks.example", "93.184.215.14")
    assert checked.pinned_url() == "https://93.184.215.14:8443/x?a=1"
    v6 = await destinations.check(
        "https://hooks.example/x",
        WebhookPolicy(resolver=resolving({"hooks.example": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})),
    )
    assert v6.pinned_url() == "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/x"


async def test_loopback_is_allowed_only_in_development_or_for_allow_listed_hosts() -> None:
    local = resolving({"localhost": ["127.0.0.1"], "receiver": ["127.0.0.1"]})
    with pytest.raises(RefusedDestination):
        await destinations.check("https://receiver/x", WebhookPolicy(resolver=local))
    await destinations.check("https://receiver/x", WebhookPolicy(resolver=local, allowed_hosts=frozenset({"receiver"})))
    development = webhook_policy(make_settings("postgresql://x/y", SNP_ENV="development"))
    assert development.allow_http
    assert development.allow_loopback
    production = webhook_policy(
        make_settings(
            "postgresql://x/y", SNP_ENV="production", SNP_WEBHOOK_ALLOW_HTTP=False, SNP_WEBHOOK_ALLOWED_HOSTS=""
        )
    )
    assert not production.allow_http
    assert not production.allow_loopback
    # Private ranges stay refused even when listed, in every mode.
    private = WebhookPolicy(resolver=resolving({"receiver": ["10.1.2.3"]}), allowed_hosts=frozenset({"receiver"}))
    with pytest.raises(RefusedDestination):
        await destinations.check("https://receiver/x", private)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.2/x",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/x",
        "https://[::1]/x",
        "https://user:pass@agenda.example/x",
        "https://unknown.example/x",
    ],
)
async def test_registering_such_a_url_is_a_422_that_changes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, url: str
) -> None:
    member = await tenant.add_practitioner()
    answer = await client.post(
        "/v1/clients",
        json={"name": "Agenda", "practitioner_ids": [member["id"]], "webhook_url": url},
        headers=tenant.coordinator,
    )
    assert (answer.status_code, answer.json()["code"]) == (422, "webhook_url_refused"), answer.text
    assert answer.json()["errors"][0]["loc"] == ["body", "webhook_url"]
    listed = (await client.get("/v1/clients", headers=tenant.coordinator)).json()["items"]
    assert listed == []
    created = await tenant.add_client([member["id"]])
    patched = await client.patch(f"/v1/clients/{created['id']}", json={"webhook_url": url}, headers=tenant.coordinator)
    assert patched.status_code == 422


# --- the relay ------------------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = Receiver()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def relay_settings(database_url: str) -> Settings:
    return make_settings(database_url, SNP_WEBHOOK_TIMEOUT_SECONDS=2)


@pytest.fixture(autouse=True)
async def nothing_left_pending(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    yield
    async with sessionmaker() as session, session.begin():
        await session.execute(update(OutboxMessage).where(OutboxMessage.status == "pending").values(status="dead"))


async def hooked_agenda(tenant: Tenant, url: str, practitioners: int = 1) -> Agenda:
    members = [await tenant.add_practitioner() for _ in range(practitioners)]
    created = await tenant.add_client([m["id"] for m in members], webhook_url=url)
    return Agenda(tenant, created["id"], created["api_key"], members)


async def book(client: httpx.AsyncClient, agenda: Agenda, n: int, member: int = 0) -> None:
    slot_ids = await publish(
        agenda,
        [
            slot_item(
                f"s{member}-{i}",
                agenda.practitioners[member],
                next_day_at(7 + i // 3, days=1) + timedelta(minutes=20 * (i % 3)),
            )
            for i in range(n)
        ],
    )
    for slot_id in slot_ids:
        request = await open_request(agenda.tenant)
        booked = await client.post(
            f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=agenda.tenant.handler
        )
        assert booked.status_code == 201, booked.text


async def statuses(sessionmaker: async_sessionmaker[AsyncSession], agenda: Agenda) -> list[tuple[str, str | None]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(OutboxMessage.status, OutboxMessage.last_error)
            .where(OutboxMessage.client_id == agenda.client_id)
            .order_by(OutboxMessage.id)
        )
        return [(r[0], r[1]) for r in rows]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_name_that_now_resolves_inside_is_not_delivered_to(
    client: httpx.AsyncClient,
    tenant: Tenant,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    relay_settings: Settings,
) -> None:
    agenda = await hooked_agenda(tenant, "https://agenda.example/hooks")  # public when registered
    await book(client, agenda, 1)
    rebound = WebhookPolicy(resolver=resolving({"agenda.example": ["169.254.169.254"]}))
    async with httpx.AsyncClient() as http:
        tried = await relay.run_once(sessionmaker, relay_settings, http, destinations_policy=rebound)
    assert tried == 1
    assert receiver.calls == []
    [(status, error)] = await statuses(sessionmaker, agenda)
    assert (status, error) == ("pending", relay.REFUSED)  # retried later, never sent there


async def test_the_deliveries_list_reports_a_generic_failure(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession], relay_settings: Settings
) -> None:
    agenda = await hooked_agenda(tenant, f"http://127.0.0.1:{closed_port()}/hooks")
    await book(client, agenda, 1)
    async with httpx.AsyncClient() as http:
        await relay.run_once(sessionmaker, relay_settings, http)
    [item] = (await client.get(f"/v1/clients/{agenda.client_id}/deliveries", headers=tenant.coordinator)).json()[
        "items"
    ]
    assert (item["last_status_code"], item["last_error"]) == (None, "no answer")
    assert item["history"][0]["error"] == "no answer"  # not "ConnectError", not "connection refused"


async def test_messages_of_a_deactivated_client_are_skipped_and_hold_up_no_one(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    relay_settings: Settings,
) -> None:
    dead_end = await hooked_agenda(tenant, f"http://127.0.0.1:{closed_port()}/hooks")
    await book(client, dead_end, 25)
    await client.patch(f"/v1/clients/{dead_end.client_id}", json={"active": False}, headers=tenant.coordinator)
    healthy = await hooked_agenda(other_tenant, receiver.url)
    await book(client, healthy, 1)
    async with httpx.AsyncClient() as http:
        await relay.run_once(sessionmaker, relay_settings, http, batch=5)
    assert len(receiver.calls) == 1  # the other CPTS's delivery went out in the first round
    settled = await statuses(sessionmaker, dead_end)
    assert {s for s, _ in settled} == {"skipped"}
    assert len(settled) == 25
    deliveries = await client.get(
        f"/v1/clients/{dead_end.client_id}/deliveries", params={"status": "skipped"}, headers=tenant.coordinator
    )
    assert len(deliveries.json()["items"]) == 25
    # Visible and redeliverable once the client is back.
    await client.patch(f"/v1/clients/{dead_end.client_id}", json={"active": True}, headers=tenant.coordinator)
    message_id = deliveries.json()["items"][0]["message_id"]
    again = await client.post(
        f"/v1/clients/{dead_end.client_id}/deliveries/{message_id}/redeliver", headers=tenant.coordinator
    )
    assert (again.status_code, again.json()["status"]) == (200, "pending")


async def test_a_backlog_never_delays_another_clients_next_delivery_by_more_than_one_round(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    relay_settings: Settings,
) -> None:
    backlog = await hooked_agenda(tenant, f"http://127.0.0.1:{closed_port()}/hooks")
    await book(client, backlog, 30)
    healthy = await hooked_agenda(other_tenant, receiver.url)
    await book(client, healthy, 1)
    async with httpx.AsyncClient() as http:
        tried = await relay.run_once(sessionmaker, relay_settings, http, batch=5)
    assert tried == 5
    assert len(receiver.calls) == 1  # taken in the first round although 30 older messages were due


async def test_a_client_removed_from_a_practitioner_no_longer_learns_of_their_patients(
    client: httpx.AsyncClient,
    tenant: Tenant,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    relay_settings: Settings,
) -> None:
    agenda = await hooked_agenda(tenant, receiver.url, practitioners=2)
    await book(client, agenda, 1, member=0)
    await book(client, agenda, 1, member=1)
    keep = agenda.practitioners[1]["id"]
    await client.patch(f"/v1/clients/{agenda.client_id}", json={"practitioner_ids": [keep]}, headers=tenant.coordinator)
    feed = (await client.get("/v1/bookings/feed", headers=agenda.headers)).json()["items"]
    assert [e["booking"]["practitioner_id"] for e in feed] == [keep]
    async with httpx.AsyncClient() as http:
        await relay.run_once(sessionmaker, relay_settings, http)
    assert len(receiver.calls) == 1
    assert sorted(s for s, _ in await statuses(sessionmaker, agenda)) == ["delivered", "skipped"]


async def test_after_a_rotation_both_secrets_sign_for_the_grace_period(
    client: httpx.AsyncClient,
    tenant: Tenant,
    receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    agenda = await hooked_agenda(tenant, receiver.url)
    old = (
        await client.post(f"/v1/clients/{agenda.client_id}/rotate-webhook-secret", headers=tenant.coordinator)
    ).json()
    rotated = await client.post(f"/v1/clients/{agenda.client_id}/rotate-webhook-secret", headers=tenant.coordinator)
    new: dict[str, Any] = rotated.json()
    assert new["previous_secret_valid_until"]
    await book(client, agenda, 1)
    async with httpx.AsyncClient() as http:
        await relay.run_once(sessionmaker, make_settings(database_url), http)
    [call] = receiver.calls
    header = call.headers["x-snp-signature"]
    timestamp = int(header.split(",")[0].split("=")[1])
    assert header.count("v1=") == 2
    assert verify(new["webhook_secret"], header, call.body, timestamp)
    assert verify(old["webhook_secret"], header, call.body, timestamp)
    # Past the grace period, only the new secret signs.
    receiver.calls.clear()
    request = await open_request(tenant)
    [slot_id] = await publish(agenda, [slot_item("late", agenda.practitioners[0], next_day_at(18, days=2))])
    await client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    async with httpx.AsyncClient() as http:
        await relay.run_once(sessionmaker, make_settings(database_url, SNP_WEBHOOK_SECRET_GRACE_HOURS=0), http)
    [after] = receiver.calls
    signed = after.headers["x-snp-signature"]
    assert signed.count("v1=") == 1
    stamp = int(signed.split(",")[0].split("=")[1])
    assert verify(new["webhook_secret"], signed, after.body, stamp)
    assert not verify(old["webhook_secret"], signed, after.body, stamp)


def test_logs_never_show_a_urls_credentials_or_query() -> None:
    event = drop_personal_data(
        None, "info", {"event": "POST https://user:secret@hooks.example/x?token=abc", "detail": ["http://h/p?k=v"]}
    )
    assert "secret" not in str(event)
    assert "abc" not in str(event)
    assert "k=v" not in str(event)
    assert "hooks.example" in event["event"]
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING  # its "HTTP Request: POST <url>" lines
