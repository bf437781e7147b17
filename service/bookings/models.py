from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, TenantOwned, created_at_column, uuid_pk


class Booking(TenantOwned, Base):
    """A patient's place in a slot: held while the handler talks, then booked."""

    __tablename__ = "booking"
    __table_args__ = (
        # The last guard of "never two patients in one slot", behind the conditional UPDATE.
        Index(
            "uq_booking_one_active_per_slot",
            "slot_id",
            unique=True,
            postgresql_where=text("status IN ('held', 'booked')"),
        ),
        # One appointment (or one hold) at a time per request.
        Index(
            "uq_booking_one_active_per_request",
            "request_id",
            unique=True,
            postgresql_where=text("status IN ('held', 'booked')"),
        ),
        Index("ix_booking_cpts_id_request_id", "cpts_id", "request_id"),
        # What the patient is told and quotes when calling back (fields.new_reference). Not unique:
        # a one-in-a-billion repeat must not fail a booking; a search by reference lists both.
        Index("ix_booking_cpts_id_reference", "cpts_id", "reference"),
        CheckConstraint("status IN ('held', 'booked', 'released', 'expired', 'cancelled')", name="status_known"),
        CheckConstraint("outcome IS NULL OR outcome IN ('fulfilled', 'noshow')", name="outcome_known"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("care_request.id", ondelete="CASCADE"))
    slot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("slot.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10))
    reference: Mapped[str] = mapped_column(String(7))
    hold_token: Mapped[uuid.UUID | None]
    hold_expires_at: Mapped[datetime | None]
    held_by_id: Mapped[uuid.UUID | None]
    booked_at: Mapped[datetime | None]
    booked_by_id: Mapped[uuid.UUID | None]
    ended_at: Mapped[datetime | None]
    cancelled_side: Mapped[str | None] = mapped_column(String(12))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    cancelled_by_kind: Mapped[str | None] = mapped_column(String(10))
    cancelled_by_id: Mapped[uuid.UUID | None]
    outcome: Mapped[str | None] = mapped_column(String(10))
    outcome_at: Mapped[datetime | None]
    outcome_by_kind: Mapped[str | None] = mapped_column(String(10))
    outcome_by_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = created_at_column()
