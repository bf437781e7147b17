from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, created_at_column


class CompensationRate(Base):
    """Compensation settings in force from a date: earlier months keep the settings they had."""

    __tablename__ = "compensation_rate"
    __table_args__ = (
        CheckConstraint("hourly_rate_unfilled_cents >= 0 AND hourly_rate_filled_cents >= 0", name="rates_positive"),
        CheckConstraint("min_notice_hours BETWEEN 0 AND 720", name="min_notice_range"),
    )

    cpts_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cpts.id", ondelete="CASCADE"), primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, primary_key=True)
    hourly_rate_unfilled_cents: Mapped[int] = mapped_column(Integer)
    hourly_rate_filled_cents: Mapped[int] = mapped_column(Integer)
    min_notice_hours: Mapped[int] = mapped_column(Integer)
    annual_envelope_cents: Mapped[int | None] = mapped_column(Integer)
    annual_cap_per_professional_cents: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()
