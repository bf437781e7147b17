"""The webhook relay: delivers outbox messages to each client's URL.

A batch is claimed under a lease (`FOR UPDATE SKIP LOCKED`, then committed), delivered over HTTP
without holding any lock, and its outcomes recorded. Several relays may run at once (one per
`snp serve` worker, or `snp relay` processes): they never take the same message at the same
time. Delivery is at least once: a relay that dies mid-delivery leaves the lease to expire and
the message is sent again, with the same event id for the receiver to drop the duplicate.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import destinations
from service.accounts.domain import Role
from service.accounts.models import SoftwareClient
from service.audit import service as audit
from service.auth import Principal
from service.clock import utc_now
from service.config import Settings, webhook_policy
from service.cpts.models import Cpts
from service.db import session_scope
from service.destinations import WebhookPolicy
from service.fields import response_timezone
from service.notifications import repository
from service.notifications.domain import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    MessageStatus,
    RetryPolicy,
    sign,
)
from service.notifications.rounds import repeat_rounds
from service.notifications.service import render

_log = structlog.get_logger("service.relay")
USER_AGENT = "snp-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    message_id: int
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.webhook_max_attempts,
        base=timedelta(seconds=settings.webhook_backoff_base_seconds),
        maximum=timedelta(seconds=settings.webhook_backoff_max_seconds),
    )


# What the deliveries list says of a failure: the receiver's HTTP status when it answered, otherwise
# one generic reason, so that the list cannot serve to map what answers where (a port scanner).
NO_ANSWER = "no answer"
REFUSED = "destination refused"


def signature_header(client: SoftwareClient, timestamp: int, body: bytes, now: datetime, grace: timedelta) -> str:
    """Signed with the current secret, and during the grace period after a rotation with the
    previous one too (`t=...,v1=<new>,v1=<old>`): a receiver accepts either while it switches."""
    header = sign(client.webhook_secret, timestamp, body)
    rotated = client.webhook_secret_rotated_at
    if client.previous_webhook_secret and rotated is not None and now - rotated < grace:
        header += "," + sign(client.previous_webhook_secret, timestamp, body).split(",", 1)[1]
    return header


async def _post(
    http: httpx.AsyncClient,
    message_id: int,
    url: str,
    body: bytes,
    headers: dict[str, str],
    policy: WebhookPolicy,
) -> Outcome:
    started = time.perf_counter()
    try:
        # Checked again now (the name may resolve elsewhere than at registration), then sent to the
        # very address that was checked, under the original host name (Host header, TLS name).
        destination = await destinations.check(url, policy)
    except destinations.RefusedDestination:
        return Outcome(message_id, None, REFUSED, 0)
    try:
        answer = await http.post(
            destination.pinned_url(),
            content=body,
            headers={**headers, "Host": urlsplit(url).netloc},
            extensions={"sni_hostname": destination.host},
        )
        status, error = answer.status_code, None if answer.is_success else f"HTTP {answer.status_code}"
    except httpx.HTTPError:
        status, error = None, NO_ANSWER
    return Outcome(message_id, status, error, int((time.perf_counter() - started) * 1000))


async def run_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    now: Callable[[], datetime] = utc_now,
    batch: int = 20,
    rng: random.Random | None = None,
    destinations_policy: WebhookPolicy | None = None,
) -> int:
    """Deliver what is due; answer how many messages were tried. The destinations policy comes from
    the settings (tests pass one with a resolver of their own)."""
    started = now()
    lease = started + timedelta(seconds=settings.webhook_timeout_seconds * 2 + 30)
    async with session_scope(sessionmaker) as session:
        await repository.settle_undeliverable(session)
    async with session_scope(sessionmaker) as session:
        ids = await repository.claim(session, started, lease, batch)
    if not ids:
        return 0
    async with sessionmaker() as session:
        rows = await repository.to_deliver(session, ids)
        zones = {
            c.id: ZoneInfo(c.timezone)
            for c in await session.scalars(select(Cpts).where(Cpts.id.in_({m.cpts_id for m, *_ in rows})))
        }
    sends = []
    allowed = destinations_policy or webhook_policy(settings)
    grace = timedelta(hours=settings.webhook_secret_grace_hours)
    for message, care_request, booking, client in rows:
        if not client.webhook_url or not client.active:
            continue  # changed since the claim: the next round settles it as skipped
        token = response_timezone.set(zones[message.cpts_id])
        try:
            body = render(message, care_request, booking).model_dump_json().encode()
        finally:
            response_timezone.reset(token)
        timestamp = int(started.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header(client, timestamp, body, started, grace),
            EVENT_ID_HEADER: str(message.event_id),
            EVENT_TYPE_HEADER: message.event_type,
        }
        sends.append(_post(http, message.id, client.webhook_url, body, headers, allowed))
    outcomes = await asyncio.gather(*sends)
    retry = policy(settings)
    finished = now()
    by_id = {m.id: (m, r, c) for m, r, _, c in rows}
    async with session_scope(sessionmaker) as session:
        for outcome in outcomes:
            message, care_request, client = by_id[outcome.message_id]
            attempt = message.attempts + 1
            values: dict[str, object] = {
                "attempts": attempt,
                "lease_until": None,
                "last_status_code": outcome.status_code,
                "last_error": outcome.error,
            }
            if outcome.ok:
                values.update(status=MessageStatus.delivered.value, delivered_at=finished, next_attempt_at=None)
                recipient = Principal("client", client.id, client.cpts_id, Role.software, "UTC")
                await audit.record(
                    session, recipient, "webhook.delivered", "request", [care_request.id], finished, None,
                    {"event_id": str(message.event_id)},
                )  # fmt: skip
            else:
                retry_at = retry.after_failure(attempt, finished, rng)
                values.update(
                    status=(MessageStatus.pending if retry_at else MessageStatus.dead).value, next_attempt_at=retry_at
                )
            await repository.record_attempt(
                session,
                outcome.message_id,
                attempt,
                finished,
                outcome.status_code,
                outcome.error,
                outcome.duration_ms,
                values,
            )
            _log.info(
                "webhook.attempt",
                message_id=outcome.message_id,
                attempt=attempt,
                status=outcome.status_code,
                ok=outcome.ok,
            )
    return len(outcomes)


async def run_forever(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event) -> None:
    """Poll for due messages until `stop` is set; a failing round is logged, not fatal."""
    async with httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False) as http:
        await repeat_rounds(
            lambda: run_once(sessionmaker, settings, http), settings.relay_interval_seconds, stop, "relay.round_failed"
        )
