"""Appointments back to the SAS (INT_R03, FrAppointmentSAS): the bookings of the requests the SAS
regulated, POSTed to `SNP_SAS_BASE_URL` when made, then PUT by identifier on every change
(cancelled, fulfilled, no-show), each carrying the whole appointment as it is then. A booked
appointment is never moved here (a booked slot is not re-timed; booking another slot cancels this
one and makes a new appointment).

The messages come from the outbox (`service.notifications.sas`), written with the change; this
sender claims them under a lease, sends without holding a lock, records each attempt, and retries
on the webhooks' schedule until the last attempt leaves a dead letter for a coordinator."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.clock import utc_now
from service.config import Settings
from service.db import session_scope
from service.fhir.resources import CATEGORIE_ETABLISSEMENT, CPTS_CATEGORY, instant
from service.notifications import repository, sas
from service.notifications.domain import MessageStatus
from service.notifications.relay import NO_ANSWER, policy
from service.notifications.rounds import repeat_rounds
from service.notifications.sas import AppointmentFacts
from service.reference.sas_guide import IDNPS_SYSTEM, IDNST_SYSTEM, V2_0203, profile

_log = structlog.get_logger("service.fhir.appointments")
OPERATOR_EXTENSION = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
FHIR_JSON = "application/fhir+json"
_STATUS_OF_OUTCOME = {"fulfilled": "fulfilled", "noshow": "noshow"}


def appointment_system(settings: Settings) -> str:
    """Our identifiers' system: configured, or the public URL's, or a URN naming our UUIDs."""
    if settings.sas_appointment_system:
        return settings.sas_appointment_system
    if settings.public_url:
        return settings.public_url.rstrip("/") + "/fhir/sid/appointment"
    return "urn:ietf:rfc:3986"


def appointment_status(facts: AppointmentFacts) -> str:
    """The FHIR status of the booking as it is now."""
    if facts.booking_status == "cancelled":
        return "cancelled"
    return _STATUS_OF_OUTCOME.get(facts.outcome or "", "booked")


def identifier_value(facts: AppointmentFacts, system: str) -> str:
    # Under the generic URI system the value is itself a URI.
    return f"urn:uuid:{facts.booking_id}" if system == "urn:ietf:rfc:3986" else str(facts.booking_id)


def _operator(facts: AppointmentFacts) -> dict[str, Any]:
    """Who regulated: the SAS's regulator as the SAS named them, else by the RPPS on the request,
    else the CPTS (the operator may be an organisation)."""
    if facts.regulator_system and facts.regulator_value:
        code = "IDNPS" if facts.regulator_system == IDNPS_SYSTEM else "INTRN"
        system, value = facts.regulator_system, facts.regulator_value
    elif facts.regulating_physician:
        code, system, value = "IDNPS", IDNPS_SYSTEM, "8" + facts.regulating_physician
    else:
        code, system, value = "IDNST", IDNST_SYSTEM, f"1{facts.finess}"
    return {
        "url": OPERATOR_EXTENSION,
        "valueReference": {
            "identifier": {"type": {"coding": [{"system": V2_0203, "code": code}]}, "system": system, "value": value}
        },
    }


def appointment(facts: AppointmentFacts, system: str) -> dict[str, Any]:
    """The FrAppointmentSAS the SAS receives for one message (pure)."""
    tz = ZoneInfo(facts.timezone)
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "meta": {"profile": [profile("FrAppointmentSAS")]},
        "extension": [_operator(facts)],
        "identifier": [{"system": system, "value": identifier_value(facts, system)}],
        "status": appointment_status(facts),
        "serviceType": [{"coding": [{"system": CATEGORIE_ETABLISSEMENT, "code": CPTS_CATEGORY}]}],
        "start": instant(facts.start_at, tz),
        "end": instant(facts.end_at, tz),
        "participant": [
            {
                "actor": {
                    "identifier": {
                        "type": {"coding": [{"system": V2_0203, "code": "IDNPS"}]},
                        "system": IDNPS_SYSTEM,
                        "value": facts.effector_idnps,
                    }
                },
                "status": "accepted",
            }
        ],
    }
    if facts.booked_at is not None:
        body["created"] = instant(facts.booked_at, tz)
    return body


def request_of(facts: AppointmentFacts, base_url: str, system: str) -> tuple[str, str, dict[str, str]]:
    """The booking's first message creates (POST, conditional: a retry after a lost answer does
    not create it twice); later ones update by identifier (PUT)."""
    base = base_url.rstrip("/")
    search = f"identifier={quote(system, safe='')}|{quote(identifier_value(facts, system))}"
    if facts.first:
        return "POST", f"{base}/Appointment", {"If-None-Exist": search}
    return "PUT", f"{base}/Appointment?{search}", {}


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The client the SAS is called with: our IGC-Santé certificate for mutual TLS when configured."""
    context = ssl.create_default_context(cafile=settings.sas_ca_certs)
    if settings.sas_client_cert is not None:
        context.load_cert_chain(settings.sas_client_cert, settings.sas_client_key)
    return httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False, verify=context)


async def _send(
    http: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], body: bytes
) -> tuple[int | None, str | None, int]:
    started = time.perf_counter()
    try:
        sent = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, **headers}
        answer = await http.request(method, url, content=body, headers=sent)
        status, error = answer.status_code, None if answer.is_success else f"HTTP {answer.status_code}"
    except httpx.HTTPError:
        status, error = None, NO_ANSWER
    return status, error, int((time.perf_counter() - started) * 1000)


async def run_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    now: Callable[[], datetime] = utc_now,
    batch: int = 20,
) -> int:
    """Send what is due to the SAS; answer how many messages were tried."""
    if not settings.sas_base_url:
        async with session_scope(sessionmaker) as session:
            await sas.settle_unconfigured(session)
        return 0
    started = now()
    lease = started + timedelta(seconds=settings.webhook_timeout_seconds * 2 + 30)
    async with session_scope(sessionmaker) as session:
        ids = await sas.claim(session, started, lease, batch)
    if not ids:
        return 0
    async with sessionmaker() as session:
        messages = await sas.to_deliver(session, ids)
    system = appointment_system(settings)
    # One booking's messages in order: the claim takes only its oldest pending one.
    results = await asyncio.gather(
        *(
            _send(http, *request_of(m, settings.sas_base_url, system), json.dumps(appointment(m, system)).encode())
            for m in messages
        )
    )
    retry = policy(settings)
    finished = now()
    async with session_scope(sessionmaker) as session:
        for message, (status_code, error, duration_ms) in zip(messages, results, strict=True):
            attempt = message.attempts + 1
            ok = status_code is not None and 200 <= status_code < 300
            values: dict[str, object] = {
                "attempts": attempt,
                "lease_until": None,
                "last_status_code": status_code,
                "last_error": error,
            }
            if ok:
                values.update(status=MessageStatus.delivered.value, delivered_at=finished, next_attempt_at=None)
            else:
                retry_at = retry.after_failure(attempt, finished)
                values.update(
                    status=(MessageStatus.pending if retry_at else MessageStatus.dead).value, next_attempt_at=retry_at
                )
            await repository.record_attempt(
                session, message.message_id, attempt, finished, status_code, error, duration_ms, values
            )
            _log.info("sas.appointment_attempt", message_id=message.message_id, attempt=attempt, status=status_code)
    return len(messages)


async def run_forever(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event) -> None:
    """Poll for due appointments until `stop` is set; a failing round is logged, not fatal."""
    try:
        client = http_client(settings)
    except (OSError, ssl.SSLError) as exc:  # an unreadable certificate, key or authority file
        _log.error("sas.client_unusable", error_type=type(exc).__name__)
        return
    async with client as http:
        await repeat_rounds(
            lambda: run_once(sessionmaker, settings, http), settings.relay_interval_seconds, stop, "sas.round_failed"
        )
