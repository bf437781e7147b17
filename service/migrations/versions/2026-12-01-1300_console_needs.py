"""what the console needs: patient address, e-mail and search keys, notes, callbacks, booking
references, practice phones, patient messages, lead time and duplicate window

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 13:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Crockford's base32 without the letters people misread (as service.fields.REFERENCE_ALPHABET).
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    for column in (
        sa.Column("patient_address", sa.String(length=300), nullable=True),
        sa.Column("patient_email", sa.String(length=254), nullable=True),
        sa.Column("patient_phone_key", sa.String(length=9), nullable=True),
        sa.Column("caller_phone_key", sa.String(length=9), nullable=True),
        sa.Column("family_name_key", sa.String(length=100), nullable=True),
        sa.Column("notify_by", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column("care_request", column)
    # The keys of existing requests, as orientation.domain computes them (last nine digits of a phone;
    # the family name's letters, upper-case, without accents).
    op.execute(
        """
        UPDATE care_request SET
            patient_phone_key = CASE WHEN length(regexp_replace(patient_phone, '\\D', '', 'g')) >= 9
                                     THEN right(regexp_replace(patient_phone, '\\D', '', 'g'), 9) END,
            caller_phone_key = CASE WHEN length(regexp_replace(caller_phone, '\\D', '', 'g')) >= 9
                                    THEN right(regexp_replace(caller_phone, '\\D', '', 'g'), 9) END,
            family_name_key = NULLIF(regexp_replace(
                translate(upper(patient_family_name), 'ÀÂÄÁÃÇÉÈÊËÍÌÎÏÑÓÒÔÖÕÚÙÛÜÝŸ', 'AAAAACEEEEIIIINOOOOOUUUUYY'),
                '[^A-Z]', '', 'g'), '')
        """
    )
    op.execute(
        "UPDATE care_request SET reopened_at = (SELECT max(at) FROM orientation_event e WHERE e.request_id = care_request.id AND e.kind = 'reopened')"
    )
    op.create_index(
        "ix_care_request_cpts_id_patient_phone_key", "care_request", ["cpts_id", "patient_phone_key"], unique=False
    )
    op.create_index(
        "ix_care_request_cpts_id_caller_phone_key", "care_request", ["cpts_id", "caller_phone_key"], unique=False
    )
    op.create_index(
        "ix_care_request_cpts_id_family_name_key", "care_request", ["cpts_id", "family_name_key"], unique=False
    )
    op.create_index(
        "ix_care_request_cpts_id_patient_pseudonym", "care_request", ["cpts_id", "patient_pseudonym"], unique=False
    )

    op.create_table(
        "request_note",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author_kind", sa.String(length=10), nullable=False),
        sa.Column("author_id", sa.UUID(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("cpts_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cpts_id"], ["cpts.id"], name=op.f("fk_request_note_cpts_id_cpts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["care_request.id"],
            name=op.f("fk_request_note_request_id_care_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_note")),
    )
    op.create_index(
        "ix_request_note_cpts_id_request_id_id", "request_note", ["cpts_id", "request_id", "id"], unique=False
    )
    op.create_table(
        "request_callback",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.UUID(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cpts_id", sa.UUID(), nullable=False),
        sa.CheckConstraint("source IN ('handler', 'cancellation')", name=op.f("ck_request_callback_source_known")),
        sa.ForeignKeyConstraint(
            ["cpts_id"], ["cpts.id"], name=op.f("fk_request_callback_cpts_id_cpts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["care_request.id"],
            name=op.f("fk_request_callback_request_id_care_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_callback")),
    )
    op.create_index(
        "ix_request_callback_cpts_id_request_id", "request_callback", ["cpts_id", "request_id"], unique=False
    )
    op.create_index(
        "ix_request_callback_due",
        "request_callback",
        ["cpts_id", "due_at"],
        unique=False,
        postgresql_where=sa.text("done_at IS NULL"),
    )

    op.add_column("booking", sa.Column("reference", sa.String(length=7), nullable=True))
    # Existing bookings get a reference of the same shape (three characters, a dash, three).
    op.execute(
        f"""
        UPDATE booking SET reference = (
            SELECT string_agg(substr('{ALPHABET}', 1 + floor(random() * 32)::int, 1), '')
            FROM generate_series(1, 6) WHERE booking.id IS NOT NULL
        )
        """  # noqa: S608 - a module constant
    )
    op.execute("UPDATE booking SET reference = substr(reference, 1, 3) || '-' || substr(reference, 4, 3)")
    op.alter_column("booking", "reference", nullable=False)
    op.create_index("ix_booking_cpts_id_reference", "booking", ["cpts_id", "reference"], unique=False)

    op.add_column("site", sa.Column("phone", sa.String(length=30), nullable=True))
    op.add_column("cpts", sa.Column("min_lead_minutes", sa.Integer(), server_default="30", nullable=False))
    op.add_column("cpts", sa.Column("duplicate_window_hours", sa.Integer(), server_default="72", nullable=False))
    op.create_check_constraint(op.f("ck_cpts_lead_range"), "cpts", "min_lead_minutes BETWEEN 0 AND 240")
    op.create_check_constraint(
        op.f("ck_cpts_duplicate_window_range"), "cpts", "duplicate_window_hours BETWEEN 1 AND 720"
    )

    op.create_table(
        "patient_message",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("booking_id", sa.UUID(), nullable=False),
        sa.Column("channel", sa.String(length=5), nullable=False),
        sa.Column("event_type", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("cpts_id", sa.UUID(), nullable=False),
        sa.CheckConstraint("channel IN ('sms', 'email')", name=op.f("ck_patient_message_channel_known")),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'dead', 'skipped')", name=op.f("ck_patient_message_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["booking.id"], name=op.f("fk_patient_message_booking_id_booking"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["cpts_id"], ["cpts.id"], name=op.f("fk_patient_message_cpts_id_cpts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["care_request.id"],
            name=op.f("fk_patient_message_request_id_care_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_message")),
    )
    op.create_index("ix_patient_message_cpts_id_request_id", "patient_message", ["cpts_id", "request_id"], unique=False)
    op.create_index(
        "ix_patient_message_due",
        "patient_message",
        ["next_attempt_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("patient_message")
    op.drop_column("cpts", "duplicate_window_hours")
    op.drop_column("cpts", "min_lead_minutes")
    op.drop_column("site", "phone")
    op.drop_index("ix_booking_cpts_id_reference", table_name="booking")
    op.drop_column("booking", "reference")
    op.drop_table("request_callback")
    op.drop_table("request_note")
    for index in ("patient_pseudonym", "family_name_key", "caller_phone_key", "patient_phone_key"):
        op.drop_index(f"ix_care_request_cpts_id_{index}", table_name="care_request")
    for column in (
        "reopened_at",
        "notify_by",
        "family_name_key",
        "caller_phone_key",
        "patient_phone_key",
        "patient_email",
        "patient_address",
    ):
        op.drop_column("care_request", column)
