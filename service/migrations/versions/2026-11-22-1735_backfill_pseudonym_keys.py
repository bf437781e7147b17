"""backfill pseudonym keys: a random 32-byte key for every existing CPTS

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 17:35:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    # Two version-4 UUIDs come from the server's strong random source: 244 random bits.
    op.execute(
        "UPDATE cpts SET pseudonym_key = decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex') "
        "WHERE pseudonym_key IS NULL"
    )
    op.alter_column("cpts", "pseudonym_key", nullable=False)


def downgrade() -> None:
    op.alter_column("cpts", "pseudonym_key", nullable=True)
