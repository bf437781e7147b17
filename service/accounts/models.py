from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, TenantOwned, created_at_column, uuid_pk


class StaffUser(TenantOwned, Base):
    """A person working for a CPTS: call handler, coordinator or admin."""

    __tablename__ = "staff_user"
    # An e-mail is unique within a CPTS only: a CPTS cannot learn of another's staff through it.
    __table_args__ = (UniqueConstraint("cpts_id", "email", name="uq_staff_user_cpts_id_email"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    # Stored lower-case; the login name.
    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    # The physician's RPPS on a regulator's account (accounts.domain.regulator_problem).
    rpps: Mapped[str | None] = mapped_column(String(11))
    password_hash: Mapped[str | None] = mapped_column(Text)
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    # Bumped on a password change, a deactivation or a role change: tokens carry the version they
    # were issued under and stop working when it moves.
    credentials_version: Mapped[int] = mapped_column(Integer, server_default="1")
    # Second factor (TOTP): the secret encrypted with a key derived from SNP_SECRET_KEY; active once
    # confirmed with a first code. Recovery codes are kept as SHA-256 digests, each usable once.
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    pending_totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # enrolled, not yet confirmed
    totp_enabled_at: Mapped[datetime | None]
    recovery_code_digests: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    created_at: Mapped[datetime] = created_at_column()
    last_login_at: Mapped[datetime | None]


class SoftwareClient(TenantOwned, Base):
    """A practice-software integration publishing slots for some of the CPTS's practitioners."""

    __tablename__ = "software_client"
    __table_args__ = (Index("ix_software_client_cpts_id_created_at", "cpts_id", "created_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200))
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    # The server signs webhooks with it, so it is kept, unlike the API key.
    webhook_secret: Mapped[str] = mapped_column(String(100))
    # After a rotation, webhooks are signed with both secrets for a grace period, so that the
    # receiver can switch without losing a delivery.
    previous_webhook_secret: Mapped[str | None] = mapped_column(String(100))
    webhook_secret_rotated_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    created_at: Mapped[datetime] = created_at_column()
    key_rotated_at: Mapped[datetime | None]


class ClientPractitioner(Base):
    """The practitioners a software client may publish slots for."""

    __tablename__ = "client_practitioner"
    __table_args__ = (
        ForeignKeyConstraint(["client_id"], ["software_client.id"], ondelete="CASCADE"),
        ForeignKeyConstraint(["practitioner_id"], ["practitioner.id"], ondelete="CASCADE"),
        Index("ix_client_practitioner_practitioner_id", "practitioner_id"),
    )

    cpts_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cpts.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    practitioner_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class LoginThrottle(Base):
    """Failed logins, per account (e-mail) and per client address, in the database so that every
    replica sees them. A lock is visible on the user and a coordinator may lift it."""

    __tablename__ = "login_throttle"

    scope: Mapped[str] = mapped_column(String(10), primary_key=True)  # "account" or "address"
    key: Mapped[str] = mapped_column(String(254), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    window_started_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class SasRegulator(Base):
    """A regulating physician of the SAS, pushed by the SAS platform (INT_R02, FrPractitionerRegul):
    deployment-wide like the SAS itself, a regulator for every CPTS that joined it. No password:
    they will sign in through Pro Santé Connect; until then their record names who regulated a
    request, and `active = false` withdraws that right."""

    __tablename__ = "sas_regulator"
    __table_args__ = (
        UniqueConstraint(
            "identifier_system", "identifier_value", name="uq_sas_regulator_identifier_system_identifier_value"
        ),
        Index("ix_sas_regulator_rpps", "rpps"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # The identifier the SAS names them by (IDNPS, or the SAS's own INTRN), as it sent it.
    identifier_system: Mapped[str] = mapped_column(String(100))
    identifier_value: Mapped[str] = mapped_column(String(64))
    # The RPPS when the identifier is an RPPS-based IDNPS: what requests name the regulator by.
    rpps: Mapped[str | None] = mapped_column(String(11))
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(Boolean)
    # Bumped when the rights change (withdrawn, restored), as for staff accounts.
    credentials_version: Mapped[int] = mapped_column(Integer, server_default="1")
    # The resource's version (meta.versionId), bumped on every update.
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime]


class SasClient(Base):
    """The national SAS platform: one deployment-wide principal (not a tenant's) that may only call
    the FHIR interface. Its API key is kept as a digest, like software clients'."""

    __tablename__ = "sas_client"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200))
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    created_at: Mapped[datetime] = created_at_column()
    key_rotated_at: Mapped[datetime | None]
