from __future__ import annotations

import secrets
import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, created_at_column, uuid_pk


class Cpts(Base):
    """A tenant: one CPTS and its settings."""

    __tablename__ = "cpts"
    __table_args__ = (
        CheckConstraint("population >= 0", name="population_non_negative"),
        CheckConstraint("size_override BETWEEN 1 AND 4", name="size_override_range"),
        CheckConstraint("response_window_hours BETWEEN 1 AND 168", name="response_window_range"),
        CheckConstraint("hold_ttl_seconds BETWEEN 10 AND 3600", name="hold_ttl_range"),
        CheckConstraint("min_slot_minutes >= 1 AND max_slot_minutes >= min_slot_minutes", name="slot_bounds"),
        CheckConstraint("publication_horizon_days BETWEEN 1 AND 366", name="horizon_range"),
        CheckConstraint("min_lead_minutes BETWEEN 0 AND 240", name="lead_range"),
        CheckConstraint("duplicate_window_hours BETWEEN 1 AND 720", name="duplicate_window_range"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200))
    finess: Mapped[str | None] = mapped_column(String(9))
    population: Mapped[int]
    # Size class 1-4 is derived from the population unless the contract says otherwise.
    size_override: Mapped[int | None] = mapped_column(SmallInteger)
    timezone: Mapped[str] = mapped_column(String(64), server_default="Europe/Paris")
    contract_start_date: Mapped[date]
    territory: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    response_window_hours: Mapped[int] = mapped_column(server_default="24")
    hold_ttl_seconds: Mapped[int] = mapped_column(server_default="180")
    # Publication bounds of a slot.
    min_slot_minutes: Mapped[int] = mapped_column(server_default="5")
    max_slot_minutes: Mapped[int] = mapped_column(server_default="720")
    publication_horizon_days: Mapped[int] = mapped_column(server_default="60")
    # The CPTS's own red-flag classification of some motifs: {code: transfer_15|assess|snp}.
    motif_overrides: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'"))
    # A slot starting sooner than this is not offered: the patient could not get there.
    min_lead_minutes: Mapped[int] = mapped_column(server_default="30")
    # Another request of the same patient this close is shown as a possible duplicate.
    duplicate_window_hours: Mapped[int] = mapped_column(server_default="72")
    # The CPTS shows its SNP slots to the national SAS (FHIR interface); it takes a FINESS.
    sas_enabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The CPTS's own number (the SAS's Organization.telecom).
    phone: Mapped[str | None] = mapped_column(String(30))
    # Staff must sign in with a second factor (TOTP) when set.
    mfa_required: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Keys the HMAC that pseudonymises patients in exports; never leaves the database.
    pseudonym_key: Mapped[bytes] = mapped_column(LargeBinary, default=lambda: secrets.token_bytes(32))
    created_at: Mapped[datetime] = created_at_column()


class CptsTarget(Base):
    """A contract's indicator target in force from a date (effective-dated like the rates)."""

    __tablename__ = "cpts_target"

    cpts_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cpts.id", ondelete="CASCADE"), primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, primary_key=True)
    indicator: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = created_at_column()
