from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from service.connectors.domain import DEFAULT_INTERVAL_SECONDS, DEFAULT_WINDOW_HOURS
from service.connectors.fhir_slots import Flow
from service.fields import InputModel, LocalDatetime

Pem = Annotated[str, StringConstraints(min_length=20, max_length=20_000, pattern=r"-----BEGIN [A-Z ]+-----")]


SlotType = Literal["SNP", "CPTS", "PRO", "PUBLIC"]


DEFAULT_SLOT_TYPES: tuple[SlotType, ...] = ("CPTS", "SNP")


def _default_slot_types() -> list[SlotType]:
    return list(DEFAULT_SLOT_TYPES)


class FhirSourceIn(InputModel):
    """Where and how to pull a software client's slots: the editor's SAS interface."""

    base_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s\x00-\x1f]+$", max_length=2000)] = Field(
        description="The FHIR base the SAS queries (`{base_url}/Slot`)"
    )
    flow: Flow = Field(description="INT_R01 (individual practitioners) or INT_R04 (CPTS slots)")
    window_hours: int = Field(default=DEFAULT_WINDOW_HOURS, ge=1, le=336)
    interval_seconds: int = Field(default=DEFAULT_INTERVAL_SECONDS, ge=60, le=86_400)
    slot_types: list[SlotType] = Field(
        default_factory=_default_slot_types, min_length=1, max_length=4,
        description="Which slots to take, by their meta.security type (TRE_R314)",
    )  # fmt: skip
    bearer_token: Annotated[str, StringConstraints(min_length=8, max_length=4000, pattern=r"^[\x21-\x7e]+$")] | None = (
        None
    )
    client_cert: Pem | None = Field(default=None, description="PEM certificate for mutual TLS")
    client_key: Pem | None = Field(default=None, description="PEM private key for mutual TLS")
    enabled: bool = True

    @model_validator(mode="after")
    def _one_credential(self) -> FhirSourceIn:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        if self.bearer_token is not None and self.client_cert is not None:
            raise ValueError("either a bearer token or a client certificate, not both")
        return self


class PullError(BaseModel):
    at: datetime
    kind: str = Field(
        description="timeout, tls, connection, http_status, operation_outcome, bundle, refused_url, credentials"
    )
    detail: str
    element: str | None = Field(default=None, description="For a Bundle that does not match the guide")


class PullResult(BaseModel):
    at: datetime
    duration_ms: int
    queries: int
    created: int
    updated: int
    unchanged: int
    withdrawn: int
    conflicts: int
    rejected: int
    skipped: int
    ignored: int
    sites_created: int
    problems: list[dict[str, Any]] = Field(description="Skipped entries and rejected slots, 50 at most")


class FhirSourceOut(BaseModel):
    client_id: uuid.UUID
    base_url: str
    flow: Flow
    window_hours: int
    interval_seconds: int
    slot_types: list[str]
    credentials: Literal["bearer_token", "client_certificate", "none"] = Field(description="Never shown")
    enabled: bool
    next_pull_at: LocalDatetime | None
    last_attempt_at: LocalDatetime | None
    last_success_at: LocalDatetime | None
    failures: int = Field(description="Consecutive failed pulls (the next waits longer)")
    last_error: PullError | None
    last_result: PullResult | None
