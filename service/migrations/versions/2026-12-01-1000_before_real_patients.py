"""before real patients: regulators, revocable tokens, TOTP, login throttling, e-mails unique per
CPTS, webhook secret rotation, outbox messages that know their practitioner, age rules

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("staff_user", sa.Column("rpps", sa.String(length=11), nullable=True))
    op.add_column("staff_user", sa.Column("credentials_version", sa.Integer(), server_default="1", nullable=False))
    op.add_column("staff_user", sa.Column("totp_secret", sa.LargeBinary(), nullable=True))
    op.add_column("staff_user", sa.Column("pending_totp_secret", sa.LargeBinary(), nullable=True))
    op.add_column("staff_user", sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "staff_user",
        sa.Column("recovery_code_digests", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    )
    op.drop_constraint("uq_staff_user_email", "staff_user", type_="unique")
    op.drop_index("ix_staff_user_cpts_id_email", table_name="staff_user")
    op.create_unique_constraint("uq_staff_user_cpts_id_email", "staff_user", ["cpts_id", "email"])
    op.create_table(
        "login_throttle",
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=254), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_login_throttle")),
    )
    op.add_column("cpts", sa.Column("mfa_required", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("software_client", sa.Column("previous_webhook_secret", sa.String(length=100), nullable=True))
    op.add_column("software_client", sa.Column("webhook_secret_rotated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "care_request",
        sa.Column("age_rules", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
    )
    # The practitioner of each event, from what the event already says of its slot.
    op.add_column("outbox_message", sa.Column("practitioner_id", sa.UUID(), nullable=True))
    op.execute("UPDATE outbox_message SET practitioner_id = CAST(snapshot ->> 'practitioner_id' AS uuid)")
    op.alter_column("outbox_message", "practitioner_id", nullable=False)


def downgrade() -> None:
    op.drop_column("outbox_message", "practitioner_id")
    op.drop_column("care_request", "age_rules")
    op.drop_column("software_client", "webhook_secret_rotated_at")
    op.drop_column("software_client", "previous_webhook_secret")
    op.drop_column("cpts", "mfa_required")
    op.drop_table("login_throttle")
    op.drop_constraint("uq_staff_user_cpts_id_email", "staff_user", type_="unique")
    op.create_index("ix_staff_user_cpts_id_email", "staff_user", ["cpts_id", "email"], unique=False)
    op.create_unique_constraint("uq_staff_user_email", "staff_user", ["email"])
    op.drop_column("staff_user", "recovery_code_digests")
    op.drop_column("staff_user", "totp_enabled_at")
    op.drop_column("staff_user", "pending_totp_secret")
    op.drop_column("staff_user", "totp_secret")
    op.drop_column("staff_user", "credentials_version")
    op.drop_column("staff_user", "rpps")
