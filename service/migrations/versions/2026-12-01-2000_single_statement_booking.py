"""the booking in a single statement: the idempotency record names the booking it answered, and a
statement can decline (roll itself back) when its guards did not let it book

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 20:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    # A booking made in one statement cannot store its encrypted HTTP answer (written after the
    # statement); the record names the booking instead, and a replay renders it again.
    op.add_column(
        "idempotency_record",
        sa.Column("answer_of", sa.Uuid(), nullable=True),
    )
    # Raised by a single statement whose guards found it could not do its work: everything it
    # wrote is undone, and the caller takes the general path (which says why).
    op.execute(
        """
        CREATE FUNCTION snp_decline() RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'declined: the general path answers' USING ERRCODE = 'SNP01';
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION snp_decline()")
    op.drop_column("idempotency_record", "answer_of")
