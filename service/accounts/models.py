from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, ForeignKeyConstraint, Index, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, TenantOwned, created_at_column, uuid_pk


class StaffUser(TenantOwned, Base):
    """A person working for a CPTS: call handler, coordinator or admin."""

    __tablename__ = "staff_user"
    __table_args__ = (Index("ix_staff_user_cpts_id_email", "cpts_id", "email"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    # Stored lower-case; the login name, unique across the platform.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(Text)
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())
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
