"""offerable slots index: searches and suggestions read free and held slots by time only

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 18:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_index(
        "ix_slot_offerable_cpts_id_start_at",
        "slot",
        ["cpts_id", "start_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('free', 'held')"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_slot_offerable_cpts_id_start_at",
        table_name="slot",
        postgresql_where=sa.text("status IN ('free', 'held')"),
    )
