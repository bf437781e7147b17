from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, TenantOwned, created_at_column, uuid_pk


class Practitioner(TenantOwned, Base):
    """A health professional member of the CPTS."""

    __tablename__ = "practitioner"
    __table_args__ = (
        UniqueConstraint("cpts_id", "idnps", name="uq_practitioner_cpts_id_idnps"),
        Index("ix_practitioner_cpts_id_family_name", "cpts_id", "family_name", "given_name", "id"),
        CheckConstraint("id_type IN ('rpps', 'adeli')", name="id_type_known"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    id_type: Mapped[str] = mapped_column(String(5))
    national_id: Mapped[str] = mapped_column(String(11))
    # The national professional id: "8" + RPPS or "0" + ADELI.
    idnps: Mapped[str] = mapped_column(String(12))
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    profession: Mapped[str] = mapped_column(String(4))
    specialty: Mapped[str | None] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class Site(TenantOwned, Base):
    """A place of practice of one practitioner (FHIR PractitionerRole + Location)."""

    __tablename__ = "site"
    __table_args__ = (
        Index("ix_site_cpts_id_practitioner_id", "cpts_id", "practitioner_id"),
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    practitioner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("practitioner.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300))
    postal_code: Mapped[str | None] = mapped_column(String(5))
    commune_insee: Mapped[str] = mapped_column(String(5))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    home_visit_communes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    # The practice's own number, read to the patient (else the practitioner's).
    phone: Mapped[str | None] = mapped_column(String(30))
    # Created by a pull from agenda software (`connectors`) on first sight of a place: the
    # coordinator checks its name and position.
    needs_review: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = created_at_column()
