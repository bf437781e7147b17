from __future__ import annotations

from pydantic import BaseModel, Field


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


class ReportHeader(BaseModel):
    month: str
    cpts_id: str
    timezone: str
    period_start: str = Field(description="First instant of the month, local time")
    period_end: str = Field(description="First instant of the next month, local time")
    cutoff: str = Field(description="Open requests are judged against their deadline at this instant")
    provisional: bool = Field(description="The month is not over yet")


class MonthlyReport(ReportHeader):
    """Every figure of INDICATORS.md; breakdowns are objects keyed by their category."""

    requests_total: int
    by_channel: dict[str, int]
    via_sas: int
    imported: int
    booked: int
    transfer_15: int
    emergency_department: int
    advice: int
    pharmacy: int
    own_gp: int
    no_solution: int
    patient_declined: int
    unreachable: int
    duplicate: int
    open: int
    unresolved_past_deadline: int
    by_outcome: dict[str, int]
    by_profession: dict[str, int]
    by_specialty: dict[str, int]
    by_modality: dict[str, int] = Field(description="Requests accepting each modality")
    booked_by_modality: dict[str, int]
    by_age_band: dict[str, int]
    by_commune: dict[str, int]
    by_motif: dict[str, int] = Field(description="By first-level Hub Santé motif")
    by_hour: dict[str, int] = Field(description="Local hour of reception")
    by_day_of_week: dict[str, int]
    needing_consultation: int
    booked_within_24h: int
    rate_within_24h: float | None
    booked_within_48h: int
    rate_within_48h: float | None
    delay_to_appointment_hours: Spread
    time_to_orientation_minutes: Spread
    unmet_demand: UnmetDemand
    fulfilled: int
    noshow: int
    cancelled_by_patient: int
    cancelled_by_practitioner: int
    cancelled_by_handler: int
    outcome_unknown: int
    slots_published: SlotsPublished
    slots_booked: int
    fill_rate: float | None
    slots_withdrawn: int
    slots_withdrawn_late: int
    participating_professionals: Professionals
    handlers: list[HandlerLine]


class Envelope(BaseModel):
    annual: str
    remaining_before: str
    paid_this_month: str


class StatementSlot(BaseModel):
    slot_id: str
    start: str
    end: str
    hours: float
    booked: bool
    rate: str
    gross: str
    paid: str


class StatementLine(BaseModel):
    practitioner_id: str
    family_name: str
    given_name: str
    hours_unfilled: float
    hours_filled: float
    gross: str
    capped: str = Field(description="Gross after the yearly cap per professional")
    scale: str
    paid: str
    slots: list[StatementSlot]


class CompensationStatement(ReportHeader):
    contract_year_start: str
    envelope: Envelope
    scale: str = Field(description="Envelope scaling factor (1.000000 when it covered everything)")
    lines: list[StatementLine]
    total_gross: str
    total_paid: str


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
    slots_booked: int
    fill_rate: float | None
    participating_professionals: int
    compensation_paid: str


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
    slots_booked: int
    rate_within_24h: float | None
    compensation_paid: str


class CompensationYear(BaseModel):
    envelope: str
    paid: str
    remaining: str


class ContractYearReport(BaseModel):
    cpts_id: str
    timezone: str
    start: str
    end: str
    size: int
    months: list[ContractYearMonth]
    total: ContractYearTotal
    envelopes: dict[str, str] = Field(description="ACI amounts of the CPTS's size, by line.part, in euros")
    compensation: CompensationYear
