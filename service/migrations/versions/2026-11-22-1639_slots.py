"""slots: published SNP slots, one live slot per practitioner at a time

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 16:39:28.056011+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    # A range over uuid, so that "same practitioner" is a GiST range overlap (no btree_gist needed).
    op.execute("CREATE TYPE uuidrange AS RANGE (subtype = uuid)")
    op.create_table(
        "slot",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("cpts_id", sa.UUID(), nullable=False),
        sa.Column("publisher_id", sa.UUID(), nullable=False),
        sa.Column("client_id", sa.UUID(), nullable=True),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("practitioner_id", sa.UUID(), nullable=False),
        sa.Column("site_id", sa.UUID(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modality", sa.String(length=3), nullable=False),
        sa.Column("visibility", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("specialty", sa.String(length=8), nullable=True),
        sa.Column("home_visit_communes", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="free", nullable=False),
        sa.Column("hold_token", sa.UUID(), nullable=True),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        postgresql.ExcludeConstraint(
            (sa.text("uuidrange(practitioner_id, practitioner_id, '[]')"), "&&"),
            (sa.text("tstzrange(start_at, end_at)"), "&&"),
            where=sa.text("status <> 'withdrawn'"),
            using="gist",
            name="ex_slot_practitioner_overlap",
        ),
        sa.CheckConstraint("modality IN ('AMB', 'VR', 'HH')", name=op.f("ck_slot_modality_known")),
        sa.CheckConstraint("status IN ('free', 'held', 'booked', 'withdrawn')", name=op.f("ck_slot_status_known")),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_slot_end_after_start")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["software_client.id"], name=op.f("fk_slot_client_id_software_client"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["cpts_id"], ["cpts.id"], name=op.f("fk_slot_cpts_id_cpts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioner.id"],
            name=op.f("fk_slot_practitioner_id_practitioner"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_slot_site_id_site"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot")),
        sa.UniqueConstraint("cpts_id", "publisher_id", "external_id", name="uq_slot_publisher_external_id"),
    )
    op.create_index(
        "ix_slot_cpts_id_publisher_id_start_at", "slot", ["cpts_id", "publisher_id", "start_at"], unique=False
    )
    op.create_index("ix_slot_cpts_id_status_start_at", "slot", ["cpts_id", "status", "start_at"], unique=False)
    op.add_column("cpts", sa.Column("min_slot_minutes", sa.Integer(), server_default="5", nullable=False))
    op.add_column("cpts", sa.Column("max_slot_minutes", sa.Integer(), server_default="720", nullable=False))
    op.add_column("cpts", sa.Column("publication_horizon_days", sa.Integer(), server_default="60", nullable=False))
    op.create_check_constraint("slot_bounds", "cpts", "min_slot_minutes >= 1 AND max_slot_minutes >= min_slot_minutes")
    op.create_check_constraint("horizon_range", "cpts", "publication_horizon_days BETWEEN 1 AND 366")


def downgrade() -> None:
    op.drop_constraint("horizon_range", "cpts", type_="check")
    op.drop_constraint("slot_bounds", "cpts", type_="check")
    op.drop_column("cpts", "publication_horizon_days")
    op.drop_column("cpts", "max_slot_minutes")
    op.drop_column("cpts", "min_slot_minutes")
    op.drop_index("ix_slot_cpts_id_status_start_at", table_name="slot")
    op.drop_index("ix_slot_cpts_id_publisher_id_start_at", table_name="slot")
    op.drop_table("slot")
    op.execute("DROP TYPE uuidrange")
