from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, TenantOwned


class OutboxMessage(TenantOwned, Base):
    """An event for one software client, or for the SAS (the appointment of a request it
    regulated), written in the same transaction as the change that caused it: a crash can neither
    lose nor invent a notification. The feed reads a client's in `id` order; the relay delivers
    them to the client's webhook URL, or to the SAS (`service.notifications.sas`)."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_message_cpts_id_client_id_id", "cpts_id", "client_id", "id"),
        Index("ix_outbox_message_due", "next_attempt_at", "id", postgresql_where=text("status = 'pending'")),
        Index("ix_outbox_message_cpts_id_sas_id", "cpts_id", "id", postgresql_where=text("destination = 'sas'")),
        CheckConstraint(
            "(destination = 'client' AND client_id IS NOT NULL) OR (destination = 'sas' AND client_id IS NULL)",
            name="destination_known",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    destination: Mapped[str] = mapped_column(String(10), server_default=text("'client'"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("software_client.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(30))
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("booking.id", ondelete="CASCADE"))
    # The practitioner the event is about: the feed and the relay follow the client's current
    # practitioners, so a client removed from a practitioner stops receiving their patients.
    practitioner_id: Mapped[uuid.UUID]
    request_id: Mapped[uuid.UUID]
    occurred_at: Mapped[datetime]
    # What happened, without the patient's identity (added when the event is read or sent).
    snapshot: Mapped[dict[str, object]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(Text)


class DeliveryAttempt(Base):
    """One try at delivering a message: visible to the coordinator."""

    __tablename__ = "delivery_attempt"
    __table_args__ = (Index("ix_delivery_attempt_message_id", "message_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("outbox_message.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    error: Mapped[str | None] = mapped_column(String(300))
    duration_ms: Mapped[int] = mapped_column(Integer)


class PatientMessage(TenantOwned, Base):
    """A message to the patient (the booking's confirmation, its cancellation) by SMS or e-mail, for
    a patient who agreed to it. Written with the change, like the outbox; what it says is composed
    when it is sent, from the request as it is then (an erased identity sends nothing)."""

    __tablename__ = "patient_message"
    __table_args__ = (
        Index("ix_patient_message_cpts_id_request_id", "cpts_id", "request_id"),
        Index("ix_patient_message_due", "next_attempt_at", "id", postgresql_where=text("status = 'pending'")),
        CheckConstraint("channel IN ('sms', 'email')", name="channel_known"),
        CheckConstraint("status IN ('pending', 'sent', 'dead', 'skipped')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("care_request.id", ondelete="CASCADE"))
    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("booking.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(5))
    event_type: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
