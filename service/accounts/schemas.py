from __future__ import annotations

import uuid
from typing import Annotated, Literal, Self

from pydantic import AnyHttpUrl, BaseModel, Field, StringConstraints, model_validator

from service.accounts.domain import regulator_problem
from service.fields import Email, InputModel, Label, LocalDatetime

StaffRole = Literal["handler", "coordinator", "admin", "regulator"]
Rpps = Annotated[str, StringConstraints(pattern=r"^\d{11}$")]


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int
    mfa_enrollment_required: bool = Field(
        default=False, description="The CPTS requires a second factor: this token only enrols one"
    )


class MfaEnrollment(BaseModel):
    secret: str = Field(description="Base32 TOTP secret, for an authenticator app (shown once)")
    otpauth_uri: str = Field(description="The same as an otpauth:// URI (for a QR code)")


class MfaCode(InputModel):
    code: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\d{6}$")]


class MfaActivated(BaseModel):
    recovery_codes: list[str] = Field(description="Single-use codes for a lost phone, shown once")


class UserCreate(InputModel):
    email: Email
    display_name: Label
    role: StaffRole
    password: str = Field(min_length=12, max_length=200, description="At least 12 characters")
    rpps: Rpps | None = Field(default=None, description="The physician's RPPS: required for a regulator")

    @model_validator(mode="after")
    def _regulator_rpps(self) -> Self:
        problem = regulator_problem(self.role, self.rpps)
        if problem:
            raise ValueError(problem)
        return self


class UserPatch(InputModel):
    display_name: Label | None = None
    role: StaffRole | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=200)
    rpps: Rpps | None = None


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    role: StaffRole
    rpps: str | None
    active: bool
    mfa_enabled: bool
    locked_until: LocalDatetime | None = Field(description="Failed logins locked the account until then")
    created_at: LocalDatetime
    last_login_at: LocalDatetime | None


class ClientCreate(InputModel):
    name: Label
    practitioner_ids: list[uuid.UUID] = Field(default_factory=list, max_length=5000)
    webhook_url: AnyHttpUrl | None = None


class ClientPatch(InputModel):
    name: Label | None = None
    practitioner_ids: list[uuid.UUID] | None = Field(default=None, max_length=5000)
    webhook_url: AnyHttpUrl | None = None
    active: bool | None = None


class ClientOut(BaseModel):
    id: uuid.UUID
    name: str
    api_key_prefix: str = Field(description="The first characters of the current API key")
    practitioner_ids: list[uuid.UUID]
    webhook_url: str | None
    active: bool
    created_at: LocalDatetime
    key_rotated_at: LocalDatetime | None


class ClientCreated(ClientOut):
    api_key: str = Field(description="Shown once: only a hash is kept")
    webhook_secret: str = Field(description="Signs the webhooks sent to this client")


class ClientKeyRotated(BaseModel):
    id: uuid.UUID
    api_key: str = Field(description="Shown once; the previous key stops working now")
    api_key_prefix: str
    key_rotated_at: LocalDatetime


class WebhookSecretRotated(BaseModel):
    id: uuid.UUID
    webhook_secret: str
    previous_secret_valid_until: LocalDatetime = Field(description="Webhooks carry both signatures until then")
