"""the SAS's regulators (INT_R02), and the appointments sent back to it through the outbox (INT_R03)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 18:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "sas_regulator",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("identifier_system", sa.String(length=100), nullable=False),
        sa.Column("identifier_value", sa.String(length=64), nullable=False),
        sa.Column("rpps", sa.String(length=11), nullable=True),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("credentials_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sas_regulator")),
        sa.UniqueConstraint(
            "identifier_system", "identifier_value", name="uq_sas_regulator_identifier_system_identifier_value"
        ),
    )
    op.create_index("ix_sas_regulator_rpps", "sas_regulator", ["rpps"], unique=False)
    # The outbox also carries the appointments the SAS is told of: a message is for a software
    # client or for the SAS, never both.
    op.add_column(
        "outbox_message",
        sa.Column("destination", sa.String(length=10), server_default=sa.text("'client'"), nullable=False),
    )
    op.alter_column("outbox_message", "client_id", existing_type=sa.UUID(), nullable=True)
    op.create_check_constraint(
        op.f("ck_outbox_message_destination_known"),
        "outbox_message",
        "(destination = 'client' AND client_id IS NOT NULL) OR (destination = 'sas' AND client_id IS NULL)",
    )
    op.create_index(
        "ix_outbox_message_cpts_id_sas_id",
        "outbox_message",
        ["cpts_id", "id"],
        unique=False,
        postgresql_where=sa.text("destination = 'sas'"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_message_cpts_id_sas_id", table_name="outbox_message")
    op.execute("DELETE FROM outbox_message WHERE destination = 'sas'")
    op.drop_constraint(op.f("ck_outbox_message_destination_known"), "outbox_message", type_="check")
    op.alter_column("outbox_message", "client_id", existing_type=sa.UUID(), nullable=False)
    op.drop_column("outbox_message", "destination")
    op.drop_index("ix_sas_regulator_rpps", table_name="sas_regulator")
    op.drop_table("sas_regulator")
