from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from service.fields import InputModel, PlausibleDate

Amount = Annotated[str, StringConstraints(pattern=r"^\d{1,7}(?:\.\d{1,2})?$")]


class CompensationIn(InputModel):
    """Compensation settings from `effective_from` on (default: the first day of the current month);
    absent fields keep the values in force on that date."""

    hourly_rate_unfilled: Amount | None = Field(default=None, description='Euros per hour, e.g. "45.00"')
    hourly_rate_filled: Amount | None = Field(default=None, description="Euros per hour of booked slots")
    min_notice_hours: int | None = Field(default=None, ge=0, le=720)
    annual_envelope: Amount | None = Field(default=None, description="null: the ACI amount of the CPTS's size")
    annual_cap_per_professional: Amount | None = Field(default=None, description="null: no cap")
    effective_from: PlausibleDate | None = None


class CompensationOut(BaseModel):
    effective_from: date | None
    hourly_rate_unfilled: str
    hourly_rate_filled: str
    min_notice_hours: int
    annual_envelope: str
    annual_envelope_is_default: bool
    annual_cap_per_professional: str | None
