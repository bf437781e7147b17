"""agenda software read through its SAS interface: FHIR sources, the slots' agenda links, and the
sites a pull created for the coordinator to review

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 22:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("slot", sa.Column("agenda_url", sa.String(2000), nullable=True))
    op.add_column("site", sa.Column("needs_review", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "fhir_source",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("cpts_id", sa.Uuid(), nullable=False),
        sa.Column("base_url", sa.String(2000), nullable=False),
        sa.Column("flow", sa.String(8), nullable=False),
        sa.Column("window_hours", sa.Integer(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("slot_types", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("bearer_token", sa.LargeBinary(), nullable=True),
        sa.Column("client_cert", sa.LargeBinary(), nullable=True),
        sa.Column("client_key", sa.LargeBinary(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_pull_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", postgresql.JSONB(), nullable=True),
        sa.Column("last_result", postgresql.JSONB(), nullable=True),
        sa.CheckConstraint("flow IN ('INT_R01', 'INT_R04')", name=op.f("ck_fhir_source_flow_known")),
        sa.CheckConstraint("window_hours BETWEEN 1 AND 336", name=op.f("ck_fhir_source_window_range")),
        sa.CheckConstraint("interval_seconds BETWEEN 60 AND 86400", name=op.f("ck_fhir_source_interval_range")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["software_client.id"], name=op.f("fk_fhir_source_client_id_software_client"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["cpts_id"], ["cpts.id"], name=op.f("fk_fhir_source_cpts_id_cpts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_fhir_source")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("fhir_source")
    op.drop_column("site", "needs_review")
    op.drop_column("slot", "agenda_url")
