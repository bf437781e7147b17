"""Messages to patients: the booking's confirmation and its cancellation, by SMS or e-mail, to
patients who agreed to it (`care_request.notify_by`).

Like the webhooks, a message is written in the booking's own transaction (`ENQUEUE_SQL`), then
claimed under a lease and sent by `run_once`, outside any lock. What it says is composed when it is
sent, from the request and booking as they are then: an erased identity, a booking cancelled since
or an appointment already started send nothing (the message is marked skipped, with why). The
providers are pluggable: SMTP for e-mail, an HTTP gateway for SMS (see README, "Patient messages").
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiosmtplib
import httpx
import structlog
from sqlalchemy import Select, column, select, table, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import french
from service.accounts.domain import Role
from service.audit import service as audit
from service.auth import Principal
from service.clock import utc_now
from service.config import Settings
from service.cpts.models import Cpts
from service.db import session_scope
from service.notifications.domain import EventType, RetryPolicy
from service.notifications.models import PatientMessage
from service.notifications.rounds import repeat_rounds
from service.notifications.schemas import PatientMessageOut
from service.orientation.models import CareRequest
from service.practitioners.domain import display_name, place
from service.practitioners.models import Practitioner, Site
from service.slots.domain import Modality
from service.slots.models import Slot
from service.tenancy import scoped

_log = structlog.get_logger("service.patient_messages")
# The audit's actor for what the service does by itself.
SYSTEM_ACTOR = uuid.UUID(int=0)

# Written with the booking's change; one message per channel the patient agreed to. The shared
# parameters (`cpts_id`, `booking_id`, `request_id`, `now`) mean what they mean in the fragments
# the booking's compound statement embeds this one with (`bookings.repository.record_booked`).
ENQUEUE_SQL = """
    INSERT INTO patient_message (cpts_id, request_id, booking_id, channel, event_type, status, created_at,
                                 next_attempt_at)
    SELECT r.cpts_id, r.id, :booking_id, wanted.medium, :patient_event_type, 'pending', :now, :now
    FROM care_request AS r, unnest(r.notify_by) AS wanted(medium)
    WHERE r.id = :request_id AND r.cpts_id = :cpts_id
"""
_ENQUEUE = text(ENQUEUE_SQL)


def message_values(event_type: EventType) -> dict[str, Any]:
    """`ENQUEUE_SQL`'s own parameter."""
    return {"patient_event_type": event_type.value}


async def enqueue(
    session: AsyncSession,
    cpts_id: uuid.UUID,
    booking_id: uuid.UUID,
    request_id: uuid.UUID,
    event_type: EventType,
    now: datetime,
) -> None:
    values = {"cpts_id": cpts_id, "booking_id": booking_id, "request_id": request_id, "now": now}
    await session.execute(_ENQUEUE, {**values, **message_values(event_type)})


async def of_request(session: AsyncSession, cpts_id: uuid.UUID, request_id: uuid.UUID) -> list[PatientMessageOut]:
    """What was sent to the patient, and what was not (and why): the delivery state."""
    query = scoped(PatientMessage, cpts_id).where(PatientMessage.request_id == request_id)
    rows = await session.scalars(query.order_by(PatientMessage.id))
    return [PatientMessageOut.model_validate(m, from_attributes=True) for m in rows]


# --- composing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Appointment:
    """What a message says of the appointment (no patient name: an SMS can be read by anyone)."""

    cpts_name: str
    start: datetime  # in the CPTS's zone
    practitioner: str
    modality: Modality
    address: str
    phone: str | None
    reference: str


@dataclass(frozen=True)
class Composed:
    subject: str
    text: str


def compose(event_type: EventType, appointment: Appointment) -> Composed:
    """The message in French, short enough for two SMS."""
    when = french.appointment(appointment.start)
    where = {
        Modality.AMB: appointment.address,
        Modality.HH: "visite à votre domicile",
        Modality.VR: "téléconsultation (le praticien vous enverra le lien)",
    }[appointment.modality]
    phone = f" Tél. {appointment.phone}." if appointment.phone else ""
    if event_type is EventType.booking_confirmed:
        return Composed(
            subject=f"Votre rendez-vous du {when}",
            text=(
                f"{appointment.cpts_name} : rendez-vous le {when} avec {appointment.practitioner}, {where}."
                f"{phone} Réf. {appointment.reference}. Empêché ? Prévenez le cabinet."
            ),
        )
    return Composed(
        subject=f"Rendez-vous du {when} annulé",
        text=(
            f"{appointment.cpts_name} : votre rendez-vous du {when} avec {appointment.practitioner} est annulé. "
            f"Nous vous rappelons pour vous proposer une autre solution. Réf. {appointment.reference}."
        ),
    )


def sms_number(phone: str | None) -> str | None:
    """A French mobile number in E.164 ("06 12 34 56 78" -> "+33612345678"); None for anything an
    SMS cannot reach (a landline, a foreign or malformed number)."""
    if not phone:
        return None
    digits = "".join(c for c in phone if c.isdigit())
    if phone.strip().startswith("+"):
        digits = digits[2:] if digits.startswith("33") else ""
    elif digits.startswith("0033"):
        digits = digits[4:]
    elif digits.startswith("0"):
        digits = digits[1:]
    if len(digits) == 9 and digits[0] in "67":
        return "+33" + digits
    return None


# --- providers -------------------------------------------------------------------------------------


class SendFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


class Provider(Protocol):
    async def send(self, to: str, message: Composed) -> None:
        """Hand the message over, or raise `SendFailed`."""


@dataclass(frozen=True)
class SmtpProvider:
    host: str
    port: int
    sender: str
    username: str | None
    password: str | None
    starttls: bool
    timeout: float

    async def send(self, to: str, message: Composed) -> None:
        email = EmailMessage()
        email["From"], email["To"], email["Subject"] = self.sender, to, message.subject
        email["Message-ID"] = make_msgid(domain="snp.invalid")
        email.set_content(message.text)
        try:
            await aiosmtplib.send(
                email,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise SendFailed("address refused", permanent=True) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendFailed("mail server unavailable") from exc


@dataclass(frozen=True)
class HttpSmsProvider:
    """A gateway that takes `POST {url}` with `{"to": "+33...", "text": "...", "sender": "..."}` and
    a bearer token, and answers 2xx once it has the message (most French SMS gateways' shape)."""

    url: str
    token: str | None
    sender: str
    http: httpx.AsyncClient

    async def send(self, to: str, message: Composed) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            answer = await self.http.post(
                self.url, json={"to": to, "text": message.text, "sender": self.sender}, headers=headers
            )
        except httpx.HTTPError as exc:
            raise SendFailed("gateway unavailable") from exc
        if answer.status_code >= 500 or answer.status_code == 429:
            raise SendFailed(f"gateway HTTP {answer.status_code}")
        if not answer.is_success:
            raise SendFailed(f"gateway refused (HTTP {answer.status_code})", permanent=True)


def providers(settings: Settings, http: httpx.AsyncClient) -> dict[str, Provider]:
    """The channels this installation can send through."""
    found: dict[str, Provider] = {}
    if settings.smtp_host:
        found["email"] = SmtpProvider(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            timeout=settings.patient_message_timeout_seconds,
        )
    if settings.sms_gateway_url:
        token = settings.sms_gateway_token.get_secret_value() if settings.sms_gateway_token else None
        found["sms"] = HttpSmsProvider(settings.sms_gateway_url, token, settings.sms_sender, http)
    return found


def channels(settings: Settings) -> list[str]:
    """The channels a handler may offer the patient."""
    return [c for c, configured in (("sms", settings.sms_gateway_url), ("email", settings.smtp_host)) if configured]


# --- sending ---------------------------------------------------------------------------------------

BOOKING = table("booking", column("id"), column("slot_id"), column("status"), column("reference"))

_CLAIM = text(
    """
    UPDATE patient_message SET lease_until = :lease_until
    WHERE id IN (
        SELECT id FROM patient_message
        WHERE status = 'pending' AND next_attempt_at <= :now AND (lease_until IS NULL OR lease_until < :now)
        ORDER BY next_attempt_at, id
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
    """
)


def _to_send(ids: list[int]) -> Select[PatientMessage, CareRequest, Any, Any, Slot, Practitioner, Site, Cpts]:
    return (
        select(PatientMessage, CareRequest, BOOKING.c.status, BOOKING.c.reference, Slot, Practitioner, Site, Cpts)
        .join(CareRequest, CareRequest.id == PatientMessage.request_id)
        .join(BOOKING, BOOKING.c.id == PatientMessage.booking_id)
        .join(Slot, Slot.id == BOOKING.c.slot_id)
        .join(Practitioner, Practitioner.id == Slot.practitioner_id)
        .join(Site, Site.id == Slot.site_id)
        .join(Cpts, Cpts.id == PatientMessage.cpts_id)
        .where(PatientMessage.id.in_(ids))
        .order_by(PatientMessage.id)
    )


@dataclass(frozen=True)
class Outcome:
    message_id: int
    status: str  # sent, skipped, or failed (then pending again or dead)
    error: str | None = None
    permanent: bool = False


def _destination(channel: str, care_request: CareRequest) -> str | None:
    if care_request.identity_purged_at is not None:
        return None
    if channel == "sms":
        return sms_number(care_request.patient_phone)
    return care_request.patient_email


async def _send(message_id: int, provider: Provider, to: str, composed: Composed) -> Outcome:
    try:
        await provider.send(to, composed)
    except SendFailed as failed:
        return Outcome(message_id, "failed", failed.reason, failed.permanent)
    return Outcome(message_id, "sent")


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.patient_message_max_attempts,
        base=timedelta(seconds=30),
        maximum=timedelta(minutes=30),
    )


async def run_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    available: Mapping[str, Provider],
    *,
    now: Callable[[], datetime] = utc_now,
    batch: int = 20,
    rng: random.Random | None = None,
) -> int:
    """Send what is due; answer how many messages were settled or tried."""
    started = now()
    lease = started + timedelta(seconds=settings.patient_message_timeout_seconds * 2 + 30)
    async with session_scope(sessionmaker) as session:
        ids = [row[0] for row in await session.execute(_CLAIM, {"now": started, "lease_until": lease, "batch": batch})]
    if not ids:
        return 0
    async with sessionmaker() as session:
        rows = list(await session.execute(_to_send(ids)))
    outcomes: list[Outcome] = []
    sends = []
    for message, care_request, booking_status, reference, slot, practitioner, site, cpts in rows:
        event = EventType(message.event_type)
        provider = available.get(message.channel)
        to = _destination(message.channel, care_request)
        if provider is None:
            outcomes.append(Outcome(message.id, "skipped", f"no {message.channel} provider configured"))
        elif to is None:
            outcomes.append(Outcome(message.id, "skipped", "no address to send to"))
        elif event is EventType.booking_confirmed and booking_status != "booked":
            outcomes.append(Outcome(message.id, "skipped", "the booking changed since"))
        elif slot.start_at <= started:
            outcomes.append(Outcome(message.id, "skipped", "the appointment time has passed"))
        else:
            appointment = Appointment(
                cpts_name=cpts.name,
                start=slot.start_at.astimezone(ZoneInfo(cpts.timezone)),
                practitioner=display_name(practitioner.family_name, practitioner.given_name, practitioner.profession),
                modality=Modality(slot.modality),
                address=place(site.address, site.postal_code, site.commune_insee).full_address,
                phone=site.phone or practitioner.phone,
                reference=reference,
            )
            sends.append(_send(message.id, provider, to, compose(event, appointment)))
    outcomes += await asyncio.gather(*sends)
    await _record(sessionmaker, {m.id: m for m, *_ in rows}, outcomes, now(), retry_policy(settings), rng)
    return len(outcomes)


async def _record(
    sessionmaker: async_sessionmaker[AsyncSession],
    messages: Mapping[int, PatientMessage],
    outcomes: list[Outcome],
    finished: datetime,
    retry: RetryPolicy,
    rng: random.Random | None,
) -> None:
    async with session_scope(sessionmaker) as session:
        for outcome in outcomes:
            message = messages[outcome.message_id]
            values: dict[str, Any] = {"lease_until": None, "last_error": outcome.error}
            if outcome.status == "sent":
                values.update(status="sent", sent_at=finished, attempts=message.attempts + 1, next_attempt_at=None)
            elif outcome.status == "skipped":
                values.update(status="skipped", next_attempt_at=None)
            else:
                attempt = message.attempts + 1
                retry_at = None if outcome.permanent else retry.after_failure(attempt, finished, rng)
                values.update(status="pending" if retry_at else "dead", attempts=attempt, next_attempt_at=retry_at)
            await session.execute(update(PatientMessage).where(PatientMessage.id == message.id).values(**values))
            if outcome.status == "sent":  # the patient's number or address went to the provider
                sender = Principal("system", SYSTEM_ACTOR, message.cpts_id, Role.admin, "UTC")
                await audit.record(
                    session, sender, "patient_message.sent", "request", [message.request_id], finished, None,
                    {"channel": message.channel, "event_type": message.event_type},
                )  # fmt: skip
            # Which channel, what happened: never the number, the address or the text.
            _log.info(
                "patient_message.settled",
                message_id=message.id,
                channel=message.channel,
                status=values["status"],
                error=outcome.error,
            )


async def run_forever(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event) -> None:
    """Send due messages until `stop` is set; a failing round is logged, not fatal."""
    async with httpx.AsyncClient(timeout=settings.patient_message_timeout_seconds, follow_redirects=False) as http:
        available = providers(settings, http)
        await repeat_rounds(
            lambda: run_once(sessionmaker, settings, available),
            settings.relay_interval_seconds,
            stop,
            "patient_message.round_failed",
        )
