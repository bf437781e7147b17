"""The reports as typed models: the indicators build them, and every rendering (JSON, CSV, XLSX,
the CLI) reads them. The sections of the tabular renderings come from the `In` marker of each
field, so that an indicator is named once. Money stays in integer cents until it is rendered
(as a decimal string in euros in JSON, a number in XLSX)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from service.money import euros


class Section(StrEnum):
    demand = "demand"
    response = "response"
    appointments = "appointments"
    supply = "supply"


@dataclass(frozen=True)
class In:
    """Marks an indicator of the monthly report: its section, and whether it is a ratio."""

    section: Section
    percent: bool = False


Euros = Annotated[
    int,
    PlainSerializer(euros, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{2}$", "description": "Euros, two decimals"}),
]
"""An amount in integer cents, shown as a decimal string in euros ("45.00")."""

Scale = Annotated[
    float,
    PlainSerializer(lambda v: f"{v:.6f}", return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "description": "Scaling factor, six decimals"}),
]
LocalTime = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A datetime already in the CPTS's timezone, written with its offset."""


class Spread(BaseModel):
    median: float | None
    p90: float | None


class UnmetDemand(BaseModel):
    total: int
    by_hour: dict[str, int]
    by_day_of_week: dict[str, int]


class SlotsPublished(BaseModel):
    count: int
    hours: float


class Professionals(BaseModel):
    total: int
    by_profession: dict[str, int]


class HandlerLine(BaseModel):
    user_id: str
    name: str
    requests_handled: int
    median_handling_minutes: float | None


class TargetResult(BaseModel):
    """A figure against the contract's target in force for the period."""

    indicator: str
    comparator: str = Field(description="min: the figure must reach the target; max: stay at or under it")
    target: float
    value: float | None
    met: bool | None = Field(description="None when there is no figure (a rate of an empty month)")


class ReportHeader(BaseModel):
    month: str
    cpts_id: str
    cpts_name: str
    timezone: str
    period_start: LocalTime = Field(description="First instant of the month, local time")
    period_end: LocalTime = Field(description="First instant of the next month, local time")
    cutoff: LocalTime = Field(description="Open requests are judged against their deadline at this instant")
    provisional: bool = Field(description="The month is not over yet")


DEMAND, RESPONSE, APPOINTMENTS, SUPPLY = (In(s) for s in Section)
RATE = In(Section.response, percent=True)


class MonthlyReport(ReportHeader):
    """Every figure of docs/indicators.md; breakdowns are objects keyed by their category."""

    requests_total: Annotated[int, DEMAND]
    by_channel: Annotated[dict[str, int], DEMAND]
    via_sas: Annotated[int, DEMAND]
    imported: Annotated[int, DEMAND]
    booked: Annotated[int, DEMAND]
    transfer_15: Annotated[int, DEMAND]
    emergency_department: Annotated[int, DEMAND]
    advice: Annotated[int, DEMAND]
    pharmacy: Annotated[int, DEMAND]
    own_gp: Annotated[int, DEMAND]
    no_solution: Annotated[int, DEMAND]
    patient_declined: Annotated[int, DEMAND]
    unreachable: Annotated[int, DEMAND]
    duplicate: Annotated[int, DEMAND]
    open: Annotated[int, DEMAND]
    unresolved_past_deadline: Annotated[int, DEMAND]
    by_outcome: dict[str, int] = Field(description="The outcomes above, as one object")
    by_profession: Annotated[dict[str, int], DEMAND]
    by_specialty: Annotated[dict[str, int], DEMAND]
    by_modality: Annotated[dict[str, int], DEMAND] = Field(description="Requests accepting each modality")
    by_age_band: Annotated[dict[str, int], DEMAND]
    by_commune: Annotated[dict[str, int], DEMAND]
    by_motif: Annotated[dict[str, int], DEMAND] = Field(description="By first-level Hub Santé motif")
    by_hour: Annotated[dict[str, int], DEMAND] = Field(description="Local hour of reception")
    by_day_of_week: Annotated[dict[str, int], DEMAND]
    needing_consultation: Annotated[int, RESPONSE]
    booked_within_24h: Annotated[int, RESPONSE]
    rate_within_24h: Annotated[float | None, RATE]
    booked_within_48h: Annotated[int, RESPONSE]
    rate_within_48h: Annotated[float | None, RATE]
    delay_to_appointment_hours: Annotated[Spread, RESPONSE]
    time_to_orientation_minutes: Annotated[Spread, RESPONSE]
    unmet_demand: Annotated[UnmetDemand, RESPONSE]
    fulfilled: Annotated[int, APPOINTMENTS]
    noshow: Annotated[int, APPOINTMENTS]
    cancelled_by_patient: Annotated[int, APPOINTMENTS]
    cancelled_by_practitioner: Annotated[int, APPOINTMENTS]
    cancelled_by_handler: Annotated[int, APPOINTMENTS]
    outcome_unknown: Annotated[int, APPOINTMENTS]
    booked_by_modality: Annotated[dict[str, int], APPOINTMENTS]
    slots_published: Annotated[SlotsPublished, SUPPLY]
    slots_booked: Annotated[int, SUPPLY]
    fill_rate: Annotated[float | None, In(Section.supply, percent=True)]
    slots_withdrawn: Annotated[int, SUPPLY]
    slots_withdrawn_late: Annotated[int, SUPPLY]
    participating_professionals: Annotated[Professionals, SUPPLY]
    handlers: list[HandlerLine]
    targets: list[TargetResult] = Field(default_factory=list, description="The contract's targets of the month")

    def indicators(self) -> Iterator[tuple[In, str, Any]]:
        """(marker, name, value) of every indicator, in the order of the fields."""
        for name, info in type(self).model_fields.items():
            marker = next((m for m in info.metadata if isinstance(m, In)), None)
            if marker is not None:
                value = getattr(self, name)
                yield marker, name, value.model_dump() if isinstance(value, BaseModel) else value


class Envelope(BaseModel):
    annual: Euros
    remaining_before: Euros
    paid_this_month: Euros


class StatementSlot(BaseModel):
    slot_id: str
    start: LocalTime
    end: LocalTime
    hours: float
    booked: bool
    rate: Euros
    gross: Euros
    paid: Euros


class StatementLine(BaseModel):
    practitioner_id: str
    id_type: str = Field(description="rpps or adeli")
    national_id: str = Field(description="The RPPS (11 digits) or ADELI (9 characters) number")
    family_name: str
    given_name: str
    profession: str = Field(description="TRE_G15 code")
    profession_label: str
    site: str = Field(description="The practitioner's first site: name, postal code and commune")
    slots_counted: int
    rate_unfilled: Euros = Field(description="Per unfilled hour, in force for the month")
    rate_filled: Euros = Field(description="Per filled hour, in force for the month")
    hours_unfilled: float
    hours_filled: float
    gross: Euros
    capped: Euros = Field(description="Gross after the yearly cap per professional")
    scale: Scale
    paid: Euros
    slots: list[StatementSlot]


class CompensationStatement(ReportHeader):
    contract_year_start: str
    envelope: Envelope
    scale: Scale = Field(description="Envelope scaling factor (1.000000 when it covered everything)")
    lines: list[StatementLine]
    total_gross: Euros
    total_paid: Euros


class ContractYearMonth(BaseModel):
    month: str
    provisional: bool
    requests_total: int
    booked: int
    needing_consultation: int
    booked_within_24h: int
    rate_within_24h: float | None
    booked_within_48h: int
    unresolved_past_deadline: int
    no_solution: int
    transfer_15: int
    slots_published: int
    slots_offered: int = Field(description="Published and not withdrawn")
    slots_booked: int
    fill_rate: float | None
    participating_professionals: int
    compensation_paid: Euros


class ContractYearTotal(BaseModel):
    requests_total: int
    booked: int
    needing_consultation: int
    booked_within_24h: int
    booked_within_48h: int
    unresolved_past_deadline: int
    no_solution: int
    transfer_15: int
    slots_published: int
    slots_offered: int
    slots_booked: int
    rate_within_24h: float | None
    fill_rate: float | None
    participating_professionals: int = Field(description="The most of any month")
    compensation_paid: Euros


class CompensationYear(BaseModel):
    envelope: Euros
    paid: Euros
    remaining: Euros


class EnvelopeMonth(BaseModel):
    month: str
    paid: Euros
    paid_to_date: Euros
    remaining: Euros


class EnvelopeProgress(BaseModel):
    """What the contract year's compensation envelope has paid, month by month, and where the
    current pace leads by the end of the year."""

    envelope: Euros
    months: list[EnvelopeMonth]
    paid_to_date: Euros
    remaining: Euros
    elapsed_share: float = Field(description="Share of the contract year elapsed at the report's time")
    projected_year_total: Euros = Field(description="Paid to date, extended at the same pace to the year's end")
    projected_remaining: Euros = Field(description="What the projection leaves (0 when it exceeds the envelope)")


class ContractYearReport(BaseModel):
    cpts_id: str
    cpts_name: str
    finess: str | None
    timezone: str
    start: str
    end: str
    size: int
    months: list[ContractYearMonth]
    total: ContractYearTotal
    envelopes: dict[str, Euros] = Field(description="ACI amounts of the CPTS's size, by line.part, in euros")
    compensation: CompensationYear
    envelope_progress: EnvelopeProgress
    targets: list[TargetResult] = Field(description="The year's figures against the targets in force at its end")


class DayLine(BaseModel):
    day: str = Field(description="YYYY-MM-DD, local")
    requests: int
    unmet: int = Field(description="No solution, or no answer by the deadline")
    slots_offered: int
    slots_booked: int


class YearPoint(BaseModel):
    month: str
    provisional: bool
    rate_within_24h: float | None
    target: float | None = Field(description="The rate within 24 h the contract asks for that month")


class Dashboard(BaseModel):
    """The month at a glance for coordinators: the monthly report, and what the charts draw."""

    report: MonthlyReport
    weekdays: list[str] = Field(description="Row labels of the heatmaps (monday first)")
    demand_by_weekday_hour: list[list[int]] = Field(description="7 rows (weekdays) x 24 columns (local hours)")
    unmet_by_weekday_hour: list[list[int]]
    days: list[DayLine]
    contract_year: list[YearPoint] = Field(description="The contract year's months up to this one")
    envelope: EnvelopeProgress
