from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, TenantOwned, uuid_pk


class Slot(TenantOwned, Base):
    """One patient's place in a practitioner's agenda, `[start_at, end_at)`."""

    __tablename__ = "slot"
    __table_args__ = (
        # Idempotent publication: a publisher's own id for the slot.
        UniqueConstraint("cpts_id", "publisher_id", "external_id", name="uq_slot_publisher_external_id"),
        # Never two live slots of one practitioner at the same time. `uuidrange` (a range type over
        # uuid, created by the migration) lets the built-in GiST range operators express
        # "same practitioner" without the btree_gist extension.
        ExcludeConstraint(
            (func.uuidrange(literal_column("practitioner_id"), literal_column("practitioner_id"), "[]"), "&&"),
            (func.tstzrange(literal_column("start_at"), literal_column("end_at")), "&&"),
            name="ex_slot_practitioner_overlap",
            using="gist",
            where=text("status <> 'withdrawn'"),
        ),
        Index("ix_slot_cpts_id_status_start_at", "cpts_id", "status", "start_at"),
        Index("ix_slot_cpts_id_publisher_id_start_at", "cpts_id", "publisher_id", "start_at"),
        Index("ix_slot_cpts_id_start_at", "cpts_id", "start_at"),
        # What handlers may still offer, by time: searches and suggestions skip the booked slots
        # of the coming hours instead of reading past them.
        Index(
            "ix_slot_offerable_cpts_id_start_at",
            "cpts_id",
            "start_at",
            postgresql_where=text("status IN ('free', 'held')"),
        ),
        CheckConstraint("end_at > start_at", name="end_after_start"),
        CheckConstraint("status IN ('free', 'held', 'booked', 'withdrawn')", name="status_known"),
        CheckConstraint("modality IN ('AMB', 'VR', 'HH')", name="modality_known"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # The software client that published it, or the CPTS itself for slots its coordinators enter.
    publisher_id: Mapped[uuid.UUID]
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("software_client.id", ondelete="SET NULL"))
    external_id: Mapped[str] = mapped_column(String(128))
    practitioner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("practitioner.id", ondelete="CASCADE"))
    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    modality: Mapped[str] = mapped_column(String(3))
    visibility: Mapped[list[str]] = mapped_column(ARRAY(Text))
    specialty: Mapped[str | None] = mapped_column(String(8))
    home_visit_communes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    # The slot on the publisher's own agenda (what the SAS reads in Slot.comment): a booking made
    # here carries it back, so the editor can reconcile.
    agenda_url: Mapped[str | None] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(10), server_default="free")
    hold_token: Mapped[uuid.UUID | None]
    hold_expires_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    published_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]
