"""reporting: compensation settings, pseudonyms, imported history (schema; keys are backfilled next)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 17:06:03.865710+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "compensation_rate",
        sa.Column("cpts_id", sa.UUID(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("hourly_rate_unfilled_cents", sa.Integer(), nullable=False),
        sa.Column("hourly_rate_filled_cents", sa.Integer(), nullable=False),
        sa.Column("min_notice_hours", sa.Integer(), nullable=False),
        sa.Column("annual_envelope_cents", sa.Integer(), nullable=True),
        sa.Column("annual_cap_per_professional_cents", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "hourly_rate_unfilled_cents >= 0 AND hourly_rate_filled_cents >= 0",
            name=op.f("ck_compensation_rate_rates_positive"),
        ),
        sa.CheckConstraint("min_notice_hours BETWEEN 0 AND 720", name=op.f("ck_compensation_rate_min_notice_range")),
        sa.ForeignKeyConstraint(
            ["cpts_id"], ["cpts.id"], name=op.f("fk_compensation_rate_cpts_id_cpts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cpts_id", "effective_from", name=op.f("pk_compensation_rate")),
    )
    op.add_column("care_request", sa.Column("patient_pseudonym", sa.String(length=32), nullable=True))
    op.add_column("care_request", sa.Column("import_digest", sa.String(length=64), nullable=True))
    op.add_column("care_request", sa.Column("imported_practitioner_id", sa.UUID(), nullable=True))
    op.add_column("care_request", sa.Column("imported_appointment_start", sa.DateTime(timezone=True), nullable=True))
    op.add_column("care_request", sa.Column("imported_appointment_end", sa.DateTime(timezone=True), nullable=True))
    op.add_column("care_request", sa.Column("imported_appointment_modality", sa.String(length=3), nullable=True))
    op.add_column("care_request", sa.Column("imported_appointment_status", sa.String(length=30), nullable=True))
    op.create_index(
        "uq_care_request_cpts_id_external_ref",
        "care_request",
        ["cpts_id", "external_ref"],
        unique=True,
        postgresql_where=sa.text("external_ref IS NOT NULL"),
    )
    op.create_foreign_key(
        op.f("fk_care_request_imported_practitioner_id_practitioner"),
        "care_request",
        "practitioner",
        ["imported_practitioner_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column("cpts", sa.Column("pseudonym_key", sa.LargeBinary(), nullable=True))
    # Reports read a month of a CPTS's slots, whatever their status.
    op.create_index("ix_slot_cpts_id_start_at", "slot", ["cpts_id", "start_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_slot_cpts_id_start_at", table_name="slot")
    op.drop_column("cpts", "pseudonym_key")
    op.drop_constraint(
        op.f("fk_care_request_imported_practitioner_id_practitioner"), "care_request", type_="foreignkey"
    )
    op.drop_index(
        "uq_care_request_cpts_id_external_ref",
        table_name="care_request",
        postgresql_where=sa.text("external_ref IS NOT NULL"),
    )
    op.drop_column("care_request", "imported_appointment_status")
    op.drop_column("care_request", "import_digest")
    op.drop_column("care_request", "imported_appointment_modality")
    op.drop_column("care_request", "imported_appointment_end")
    op.drop_column("care_request", "imported_appointment_start")
    op.drop_column("care_request", "imported_practitioner_id")
    op.drop_column("care_request", "patient_pseudonym")
    op.drop_table("compensation_rate")
