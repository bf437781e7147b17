"""a single statement that declines says why: a refusal that needs nothing more than the statement
saw (the slot taken, the request's status) is answered without the general path

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 12:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    # Beside snp_decline(), which a server still running the previous code calls: the same error,
    # with the reason in its DETAIL.
    op.execute(
        """
        CREATE FUNCTION snp_decline(reason text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'declined: the general path answers' USING ERRCODE = 'SNP01', DETAIL = reason;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION snp_decline(text)")
