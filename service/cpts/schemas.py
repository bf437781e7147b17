from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from service.compensation.schemas import CompensationIn, CompensationOut
from service.cpts.domain import TARGET_INDICATORS, target_problem
from service.fields import InputModel, InseeCode, Label, LocalDatetime, Phone, PlausibleDate, Timezone
from service.reference.codes import motif_classification


class CptsOut(BaseModel):
    id: uuid.UUID
    name: str
    finess: str | None
    size: int = Field(description="ACI size class 1-4, from the population unless overridden")
    size_override: int | None
    population: int
    timezone: str
    contract_start_date: date
    response_window_hours: int
    hold_ttl_seconds: int
    min_slot_minutes: int
    max_slot_minutes: int
    publication_horizon_days: int
    min_lead_minutes: int = Field(description="A slot starting sooner is not suggested (a video call: 5 minutes)")
    duplicate_window_hours: int = Field(description="Requests of the same patient this close are shown as duplicates")
    territory: list[str]
    mfa_required: bool = Field(description="Staff sign in with a second factor (TOTP)")
    sas_enabled: bool = Field(description="The CPTS shows its SNP slots to the national SAS (FHIR)")
    phone: str | None
    targets: dict[str, float] = Field(description="The contract's indicator targets in force today")
    motif_overrides: dict[str, str]
    compensation: CompensationOut = Field(description="The compensation settings in force today")
    created_at: LocalDatetime


class CptsCreate(InputModel):
    name: Label
    population: int = Field(ge=0, le=10_000_000)
    timezone: Timezone = "Europe/Paris"
    contract_start_date: PlausibleDate | None = None
    finess: str | None = Field(default=None, pattern=r"^[0-9AB]{9}$")
    territory: list[InseeCode] = Field(default_factory=list, max_length=2000)


class TargetsIn(InputModel):
    """The contract's indicator targets from `effective_from` on (default: the first day of the
    current month): the whole set (an indicator left out has no target from then on)."""

    values: dict[str, float] = Field(
        max_length=len(TARGET_INDICATORS),
        description=f"Indicator -> target; indicators: {', '.join(TARGET_INDICATORS)} (rates between 0 and 1)",
    )
    effective_from: PlausibleDate | None = None

    @field_validator("values")
    @classmethod
    def _known(cls, values: dict[str, float]) -> dict[str, float]:
        for indicator, value in values.items():
            problem = target_problem(indicator, value)
            if problem:
                raise ValueError(problem)
        return values


class CptsPatch(InputModel):
    """Settings a coordinator may change; absent fields stay as they are."""

    name: Label | None = None
    finess: str | None = Field(default=None, pattern=r"^[0-9AB]{9}$")
    population: int | None = Field(default=None, ge=0, le=10_000_000)
    size: int | None = Field(default=None, ge=1, le=4, description="Override of the size class; null derives it")
    timezone: Timezone | None = None
    contract_start_date: PlausibleDate | None = None
    territory: list[InseeCode] | None = Field(default=None, max_length=2000)
    response_window_hours: int | None = Field(default=None, ge=1, le=168)
    hold_ttl_seconds: int | None = Field(default=None, ge=10, le=3600)
    min_slot_minutes: int | None = Field(default=None, ge=1, le=720)
    max_slot_minutes: int | None = Field(default=None, ge=5, le=1440)
    publication_horizon_days: int | None = Field(default=None, ge=1, le=366)
    min_lead_minutes: int | None = Field(default=None, ge=0, le=240)
    duplicate_window_hours: int | None = Field(default=None, ge=1, le=720)
    mfa_required: bool | None = Field(default=None, description="Require a second factor (TOTP) of all staff")
    sas_enabled: bool | None = Field(default=None, description="Join the SAS (needs a FINESS of 9 digits)")
    phone: Phone | None = None
    compensation: CompensationIn | None = None
    targets: TargetsIn | None = Field(default=None, description="A new set of indicator targets from a date")
    motif_overrides: dict[str, Literal["transfer_15", "assess", "snp"]] | None = Field(
        default=None, description="Replaces the CPTS's own classification of motifs ({} to use the default)"
    )

    @field_validator("motif_overrides")
    @classmethod
    def _known_motifs(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        unknown = sorted(set(value or {}) - set(motif_classification()))
        if unknown:
            raise ValueError(f"unknown Hub Santé motif(s): {', '.join(unknown[:5])}")
        return value
