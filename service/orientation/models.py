from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Identity, Index, String, Text, false, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, TenantOwned, created_at_column, uuid_pk


class CareRequest(TenantOwned, Base):
    """A request for unscheduled care (demande de soins non programmés)."""

    __tablename__ = "care_request"
    __table_args__ = (
        # The queue reads each status in this order (`repository._queue_statement`).
        Index("ix_care_request_cpts_id_status_deadline_at_id", "cpts_id", "status", "deadline_at", "id"),
        # The month's requests in the order the reports and the export read them (received_at, id):
        # a cursor streams them from the index without sorting the month first.
        Index("ix_care_request_cpts_id_received_at_id", "cpts_id", "received_at", "id"),
        # Finding a caller again: by phone, by family name (normalised keys, see orientation.domain).
        Index("ix_care_request_cpts_id_patient_phone_key", "cpts_id", "patient_phone_key"),
        Index("ix_care_request_cpts_id_caller_phone_key", "cpts_id", "caller_phone_key"),
        Index("ix_care_request_cpts_id_family_name_key", "cpts_id", "family_name_key"),
        Index("ix_care_request_cpts_id_patient_pseudonym", "cpts_id", "patient_pseudonym"),
        CheckConstraint("deadline_at > received_at", name="deadline_after_reception"),
        CheckConstraint("status IN ('open', 'transfer_required', 'booked', 'closed')", name="status_known"),
        CheckConstraint("patient_ins IS NULL OR identity_status = 'QUAL'", name="ins_only_when_qualified"),
        # History imports are idempotent by the previous tool's reference.
        Index(
            "uq_care_request_cpts_id_external_ref",
            "cpts_id",
            "external_ref",
            unique=True,
            postgresql_where=text("external_ref IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # The 24-hour clock starts here.
    received_at: Mapped[datetime]
    deadline_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(20))
    via_sas: Mapped[bool] = mapped_column(Boolean, server_default=false())
    regulating_physician: Mapped[str | None] = mapped_column(String(11))
    caller_relation: Mapped[str | None] = mapped_column(String(20))
    # Identity fields: erased by `snp purge` after the retention period.
    caller_phone: Mapped[str | None] = mapped_column(String(30))
    patient_family_name: Mapped[str | None] = mapped_column(String(100))
    patient_given_name: Mapped[str | None] = mapped_column(String(100))
    patient_birth_date: Mapped[date | None]
    patient_phone: Mapped[str | None] = mapped_column(String(30))
    patient_ins: Mapped[str | None] = mapped_column(String(15))
    # Home visits need the address (sent to the practitioner); the e-mail receives the confirmation.
    patient_address: Mapped[str | None] = mapped_column(String(300))
    patient_email: Mapped[str | None] = mapped_column(String(254))
    # Search keys, erased with the identity: the phones' last nine digits, the family name's letters.
    patient_phone_key: Mapped[str | None] = mapped_column(String(9))
    caller_phone_key: Mapped[str | None] = mapped_column(String(9))
    family_name_key: Mapped[str | None] = mapped_column(String(100))
    # Channels the patient agreed to be told of the booking by: "sms", "email".
    notify_by: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    note: Mapped[str | None] = mapped_column(Text)
    # Pseudonymised facts kept for the indicators.
    patient_pseudonym: Mapped[str | None] = mapped_column(String(32))
    patient_sex: Mapped[str | None] = mapped_column(String(1))
    patient_age_band: Mapped[str | None] = mapped_column(String(8))
    patient_commune_insee: Mapped[str | None] = mapped_column(String(5))
    identity_status: Mapped[str] = mapped_column(String(5), server_default="PROV")
    motif: Mapped[str] = mapped_column(String(9))
    motif_classification: Mapped[str] = mapped_column(String(12))
    red_flags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    # The age rules (reference/age_rules.csv) that raised the motif's classification at reception.
    age_rules: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    needs_profession: Mapped[str | None] = mapped_column(String(4))
    needs_specialty: Mapped[str | None] = mapped_column(String(8))
    needs_modalities: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # Derived from the orientation log, stored for the queue (updated with every event).
    status: Mapped[str] = mapped_column(String(20))
    created_by_kind: Mapped[str] = mapped_column(String(10))
    created_by_id: Mapped[uuid.UUID]
    imported: Mapped[bool] = mapped_column(Boolean, server_default=false())
    external_ref: Mapped[str | None] = mapped_column(String(100))
    import_digest: Mapped[str | None] = mapped_column(String(64))
    # An imported request's appointment, as the previous tool recorded it (no slot behind it).
    imported_practitioner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("practitioner.id", ondelete="SET NULL")
    )
    imported_appointment_start: Mapped[datetime | None]
    imported_appointment_end: Mapped[datetime | None]
    imported_appointment_modality: Mapped[str | None] = mapped_column(String(3))
    imported_appointment_status: Mapped[str | None] = mapped_column(String(30))
    identity_purged_at: Mapped[datetime | None]
    # Set when a cancelled booking reopened the request (the queue marks it).
    reopened_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class OrientationEvent(TenantOwned, Base):
    """Append-only log of every decision on a request (a trigger refuses updates and deletes)."""

    __tablename__ = "orientation_event"
    __table_args__ = (Index("ix_orientation_event_cpts_id_request_id_id", "cpts_id", "request_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("care_request.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime]
    actor_kind: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[uuid.UUID]
    booking_id: Mapped[uuid.UUID | None]
    regulating_physician: Mapped[str | None] = mapped_column(String(11))
    # Free text may name the patient: the only column `snp purge` may clear.
    note: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, object]] = mapped_column(JSONB, server_default=text("'{}'"))


class RequestNote(TenantOwned, Base):
    """A note added to a request at any time (append-only; its text is erased by `snp purge`)."""

    __tablename__ = "request_note"
    __table_args__ = (Index("ix_request_note_cpts_id_request_id_id", "cpts_id", "request_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("care_request.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    author_kind: Mapped[str] = mapped_column(String(10))
    author_id: Mapped[uuid.UUID]
    text: Mapped[str | None] = mapped_column(Text)


class Callback(TenantOwned, Base):
    """A call to make back to the caller at a given time; the queue shows it when it is due."""

    __tablename__ = "request_callback"
    __table_args__ = (
        Index("ix_request_callback_cpts_id_request_id", "cpts_id", "request_id"),
        Index("ix_request_callback_due", "cpts_id", "due_at", postgresql_where=text("done_at IS NULL")),
        CheckConstraint("source IN ('handler', 'cancellation')", name="source_known"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("care_request.id", ondelete="CASCADE"))
    due_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime]
    created_by_id: Mapped[uuid.UUID | None]
    done_at: Mapped[datetime | None]
