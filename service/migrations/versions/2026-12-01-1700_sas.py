"""the SAS: its deployment-wide client, and a CPTS's choice to join it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 17:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "sas_client",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("key_rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sas_client")),
        sa.UniqueConstraint("key_digest", name=op.f("uq_sas_client_key_digest")),
    )
    op.add_column("cpts", sa.Column("sas_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column("cpts", sa.Column("phone", sa.String(length=30), nullable=True))


def downgrade() -> None:
    op.drop_column("cpts", "phone")
    op.drop_column("cpts", "sas_enabled")
    op.drop_table("sas_client")
