from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, LargeBinary, String, Text, true
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, TenantOwned, created_at_column


class FhirSource(TenantOwned, Base):
    """A software client whose slots are pulled from the editor's SAS interface (its FHIR slot
    search), and how the last pulls went. Secrets are kept encrypted (`connectors.domain`)."""

    __tablename__ = "fhir_source"
    __table_args__ = (
        CheckConstraint("flow IN ('INT_R01', 'INT_R04')", name="flow_known"),
        CheckConstraint("window_hours BETWEEN 1 AND 336", name="window_range"),
        CheckConstraint("interval_seconds BETWEEN 60 AND 86400", name="interval_range"),
    )

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("software_client.id", ondelete="CASCADE"), primary_key=True)
    base_url: Mapped[str] = mapped_column(String(2000))
    flow: Mapped[str] = mapped_column(String(8))
    window_hours: Mapped[int] = mapped_column(Integer)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    slot_types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    bearer_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    client_cert: Mapped[bytes | None] = mapped_column(LargeBinary)
    client_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=true())
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime]
    # The pulls: when the next is due, the last attempt, success and error, what it did.
    next_pull_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
