"""indicator targets of a CPTS's contract, effective-dated

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 15:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "cpts_target",
        sa.Column("cpts_id", sa.UUID(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("indicator", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["cpts_id"], ["cpts.id"], name=op.f("fk_cpts_target_cpts_id_cpts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cpts_id", "effective_from", "indicator", name=op.f("pk_cpts_target")),
    )


def downgrade() -> None:
    op.drop_table("cpts_target")
