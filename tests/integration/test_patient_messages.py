"""Messages to patients who agreed to them: the confirmation and any cancellation, by e-mail through a
real SMTP server (aiosmtpd on 127.0.0.1) and by SMS through an HTTP gateway (a local receiver)."""

from __future__ import annotations

import email.policy
import itertools
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.models import AuditEvent
from service.config import Settings
from service.notifications import patients
from service.notifications.models import PatientMessage
from tests.builders import Agenda, Tenant, new_agenda, next_day_at, open_request, publish, slot_item
from tests.conftest import make_settings
from tests.receiver import Receiver

PATIENT = {
    "family_name": "Moreau",
    "given_name": "Inès",
    "birth_date": "1990-02-02",
    "phone": "06 12 34 56 78",
    "email": "ines.moreau@example.org",
    "commune_insee": "44109",
}


class Mailbox:
    """What an SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(
            (list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=email.policy.default))
        )
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
async def gateway() -> AsyncIterator[Receiver]:
    running = Receiver()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def sender_settings(database_url: str, mailbox: tuple[Mailbox, int], gateway: Receiver) -> Settings:
    return make_settings(
        database_url,
        SNP_SMTP_HOST="127.0.0.1",
        SNP_SMTP_PORT=mailbox[1],
        SNP_SMTP_STARTTLS=False,
        SNP_SMTP_FROM="CPTS test <snp@cpts.test>",
        SNP_SMS_GATEWAY_URL=gateway.url,
        SNP_SMS_GATEWAY_TOKEN="sms-token",
        SNP_PATIENT_MESSAGE_MAX_ATTEMPTS=2,
    )


@pytest.fixture
async def agenda(tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Agenda]:
    yield await new_agenda(tenant, practitioners=1)
    # Leave nothing due for another test's sender.
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(PatientMessage)
            .where(PatientMessage.cpts_id == tenant.cpts_id, PatientMessage.status == "pending")
            .values(status="dead")
        )


async def send(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        available = patients.providers(settings, http)
        return await patients.run_once(sessionmaker, settings, available, now=lambda: now or datetime.now(UTC))


_hours = itertools.count()


async def book(client: httpx.AsyncClient, agenda: Agenda, external_id: str, **request: Any) -> dict[str, Any]:
    n = next(_hours)
    start = next_day_at(8 + n % 10, days=2 + n // 10)
    [slot_id] = await publish(agenda, [slot_item(external_id, agenda.practitioners[0], start)])
    created = await open_request(agenda.tenant, **request)
    booked = await client.post(
        f"/v1/requests/{created['id']}/book", json={"slot_id": slot_id}, headers=agenda.tenant.handler
    )
    assert booked.status_code == 201, booked.text
    result: dict[str, Any] = booked.json()
    return result


async def messages_of(client: httpx.AsyncClient, tenant: Tenant, request_id: str) -> list[dict[str, Any]]:
    detail = (await client.get(f"/v1/requests/{request_id}", headers=tenant.handler)).json()
    found: list[dict[str, Any]] = detail["messages"]
    return found


async def test_the_patient_gets_the_confirmation_and_the_cancellation_by_sms_and_email(
    client: httpx.AsyncClient,
    agenda: Agenda,
    mailbox: tuple[Mailbox, int],
    gateway: Receiver,
    sender_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = agenda.tenant
    booking = await book(client, agenda, "m1", patient=PATIENT, notify_by=["sms", "email"])
    pending = await messages_of(client, tenant, booking["request_id"])
    assert [(m["channel"], m["status"]) for m in pending] == [("email", "pending"), ("sms", "pending")]

    with caplog.at_level(logging.INFO):
        assert await send(sessionmaker, sender_settings) == 2
    sent = await messages_of(client, tenant, booking["request_id"])
    assert [(m["channel"], m["status"], m["attempts"]) for m in sent] == [("email", "sent", 1), ("sms", "sent", 1)]

    [sms] = gateway.calls
    body = json.loads(sms.body)
    assert sms.headers["authorization"] == "Bearer sms-token"
    assert body["to"] == "+33612345678"
    assert booking["reference"] in body["text"]
    assert "rendez-vous le" in body["text"]
    assert booking["slot"]["site"]["full_address"] in body["text"]
    assert "Moreau" not in body["text"]  # an SMS can be read by anyone holding the phone
    box = mailbox[0]
    [(recipients, mail)] = box.messages
    assert recipients == ["ines.moreau@example.org"]
    assert str(mail["Subject"]).startswith("Votre rendez-vous du ")
    assert booking["reference"] in mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    # Nothing of the patient in the logs: neither the number, nor the address, nor the text.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("service")]
    assert any("patient_message.settled" in line for line in ours)
    logged = "\n".join(ours)
    assert "612345678" not in logged
    assert "ines.moreau" not in logged
    assert booking["reference"] not in logged
    async with sessionmaker() as session:
        audited = list(
            await session.scalars(
                select(AuditEvent.detail).where(
                    AuditEvent.object_id == booking["request_id"], AuditEvent.action == "patient_message.sent"
                )
            )
        )
    assert sorted(str(d["channel"]) for d in audited) == ["email", "sms"]

    cancelled = await client.post(
        f"/v1/bookings/{booking['booking_id']}/cancel", json={"reason": "mieux", "cancelled_by": "patient"},
        headers=tenant.handler,
    )  # fmt: skip
    assert cancelled.status_code == 200
    assert await send(sessionmaker, sender_settings) == 2
    assert "est annulé" in json.loads(gateway.calls[1].body)["text"]
    assert str(box.messages[1][1]["Subject"]).endswith("annulé")
    assert await send(sessionmaker, sender_settings) == 0  # nothing is sent twice


async def test_a_failing_gateway_is_retried_then_given_up_and_a_refusal_is_final(
    client: httpx.AsyncClient,
    agenda: Agenda,
    gateway: Receiver,
    sender_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    tenant = agenda.tenant
    booking = await book(client, agenda, "m2", patient=PATIENT, notify_by=["sms"])
    gateway.answers.extend([503, 503])
    now = datetime.now(UTC)
    assert await send(sessionmaker, sender_settings, now) == 1
    [first] = await messages_of(client, tenant, booking["request_id"])
    assert (first["status"], first["attempts"], first["last_error"]) == ("pending", 1, "gateway HTTP 503")
    assert first["next_attempt_at"] is not None
    assert await send(sessionmaker, sender_settings, now) == 0  # not due yet
    assert await send(sessionmaker, sender_settings, now + timedelta(hours=1)) == 1
    [dead] = await messages_of(client, tenant, booking["request_id"])
    assert (dead["status"], dead["attempts"]) == ("dead", 2)  # SNP_PATIENT_MESSAGE_MAX_ATTEMPTS=2

    other = await book(client, agenda, "m3", patient=PATIENT, notify_by=["sms"])
    gateway.answers.append(400)
    assert await send(sessionmaker, sender_settings) == 1
    [refused] = await messages_of(client, tenant, other["request_id"])
    assert (refused["status"], refused["attempts"]) == ("dead", 1)
    assert refused["last_error"] == "gateway refused (HTTP 400)"


async def test_what_cannot_or_should_not_be_sent_is_skipped_with_why(
    client: httpx.AsyncClient,
    agenda: Agenda,
    gateway: Receiver,
    database_url: str,
    sender_settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    tenant = agenda.tenant
    no_consent = await book(client, agenda, "m4", patient=PATIENT)
    assert await messages_of(client, tenant, no_consent["request_id"]) == []

    landline = await book(client, agenda, "m5", patient={**PATIENT, "phone": "02 40 00 00 00"}, notify_by=["sms"])
    email_only = make_settings(database_url, SNP_SMTP_HOST="127.0.0.1", SNP_SMTP_PORT=1)  # no SMS gateway
    unconfigured = await book(client, agenda, "m6", patient=PATIENT, notify_by=["sms"])
    assert await send(sessionmaker, email_only) == 2
    [no_mobile] = await messages_of(client, tenant, landline["request_id"])
    assert (no_mobile["status"], no_mobile["last_error"]) == ("skipped", "no sms provider configured")
    [no_gateway] = await messages_of(client, tenant, unconfigured["request_id"])
    assert no_gateway["status"] == "skipped"

    landline_again = await book(client, agenda, "m7", patient={**PATIENT, "phone": "02 40 00 00 00"}, notify_by=["sms"])
    assert await send(sessionmaker, sender_settings) == 1
    [skipped] = await messages_of(client, tenant, landline_again["request_id"])
    assert (skipped["status"], skipped["last_error"]) == ("skipped", "no address to send to")
    assert gateway.calls == []

    # A confirmation still queued when the booking is cancelled is not sent (the cancellation is).
    changed = await book(client, agenda, "m8", patient=PATIENT, notify_by=["sms"])
    await client.post(
        f"/v1/bookings/{changed['booking_id']}/cancel", json={"reason": "x", "cancelled_by": "patient"},
        headers=tenant.handler,
    )  # fmt: skip
    assert await send(sessionmaker, sender_settings) == 2
    states = {
        m["event_type"]: (m["status"], m["last_error"])
        for m in await messages_of(client, tenant, changed["request_id"])
    }
    assert states == {
        "booking.confirmed": ("skipped", "the booking changed since"),
        "booking.cancelled": ("sent", None),
    }


def test_french_mobile_numbers_become_e164_and_others_are_refused() -> None:
    assert patients.sms_number("06 12 34 56 78") == "+33612345678"
    assert patients.sms_number("+33 7 12 34 56 78") == "+33712345678"
    assert patients.sms_number("0033612345678") == "+33612345678"
    assert patients.sms_number("02 40 00 00 00") is None  # a landline
    assert patients.sms_number("+44 7700 900123") is None  # not French
    assert patients.sms_number("06 12") is None
    assert patients.sms_number(None) is None


async def test_the_confirmation_can_be_sent_after_the_booking_once_per_channel(
    client: httpx.AsyncClient, agenda: Agenda, tenant: Tenant, other_tenant: Tenant
) -> None:
    booking = await book(client, agenda, "m9", patient={**PATIENT, "email": None})
    path = f"/v1/bookings/{booking['booking_id']}/patient-messages"
    first = await client.post(path, json={"channel": "sms"}, headers=tenant.handler)
    assert first.status_code == 201, first.text
    again = await client.post(path, json={"channel": "sms"}, headers=tenant.handler)
    assert [(m["channel"], m["status"]) for m in again.json()] == [("sms", "pending")]  # asked twice, sent once
    detail = (await client.get(f"/v1/requests/{booking['request_id']}", headers=tenant.handler)).json()
    assert detail["notify_by"] == ["sms"]  # the consent is recorded
    no_email = await client.post(path, json={"channel": "email"}, headers=tenant.handler)
    assert no_email.status_code == 422
    assert (await client.post(path, json={"channel": "fax"}, headers=tenant.handler)).status_code == 422
    assert (await client.post(path, json={"channel": "sms"}, headers=other_tenant.handler)).status_code == 404
    await client.post(
        f"/v1/bookings/{booking['booking_id']}/cancel", json={"reason": "x", "cancelled_by": "patient"},
        headers=tenant.handler,
    )  # fmt: skip
    cancelled = await client.post(path, json={"channel": "sms"}, headers=tenant.handler)
    assert cancelled.status_code == 409
