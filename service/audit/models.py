from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Identity, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, TenantOwned


class AuditEvent(TenantOwned, Base):
    """Append-only trace of every read or change of patient data: who, what, when, from where."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_cpts_id_at", "cpts_id", "at"),
        Index("ix_audit_event_cpts_id_object_id", "cpts_id", "object_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[datetime]
    actor_kind: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[uuid.UUID]
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[uuid.UUID | None]
    ip: Mapped[str | None] = mapped_column(String(45))
    http_request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, object]] = mapped_column(JSONB, server_default=text("'{}'"))
