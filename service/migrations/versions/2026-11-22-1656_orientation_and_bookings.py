"""orientation and bookings: requests, their append-only log, bookings, the audit trail

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:56:04.672955+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The orientation log and the audit trail are append-only: corrections are new rows. The one
# exception is `snp purge` erasing a free-text note of the orientation log (it may name the patient).
APPEND_ONLY = (
    """
    CREATE FUNCTION refuse_changes() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
    END;
    $$
    """,
    """
    CREATE FUNCTION refuse_orientation_event_changes() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.note IS NULL AND (to_jsonb(NEW) - 'note') = (to_jsonb(OLD) - 'note') THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'orientation_event is append-only' USING ERRCODE = 'restrict_violation';
    END;
    $$
    """,
    """
    CREATE TRIGGER orientation_event_append_only BEFORE UPDATE OR DELETE ON orientation_event
        FOR EACH ROW EXECUTE FUNCTION refuse_orientation_event_changes()
    """,
    """
    CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
        FOR EACH ROW EXECUTE FUNCTION refuse_changes()
    """,
)


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("cpts_id", sa.UUID(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=10), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("object_type", sa.String(length=20), nullable=False),
        sa.Column("object_id", sa.UUID(), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("http_request_id", sa.String(length=64), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.ForeignKeyConstraint(["cpts_id"], ["cpts.id"], name=op.f("fk_audit_event_cpts_id_cpts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index("ix_audit_event_cpts_id_at", "audit_event", ["cpts_id", "at"], unique=False)
    op.create_index("ix_audit_event_cpts_id_object_id", "audit_event", ["cpts_id", "object_id"], unique=False)
    op.create_table(
        "care_request",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("cpts_id", sa.UUID(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("via_sas", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("regulating_physician", sa.String(length=11), nullable=True),
        sa.Column("caller_relation", sa.String(length=20), nullable=True),
        sa.Column("caller_phone", sa.String(length=30), nullable=True),
        sa.Column("patient_family_name", sa.String(length=100), nullable=True),
        sa.Column("patient_given_name", sa.String(length=100), nullable=True),
        sa.Column("patient_birth_date", sa.Date(), nullable=True),
        sa.Column("patient_phone", sa.String(length=30), nullable=True),
        sa.Column("patient_ins", sa.String(length=15), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("patient_sex", sa.String(length=1), nullable=True),
        sa.Column("patient_age_band", sa.String(length=8), nullable=True),
        sa.Column("patient_commune_insee", sa.String(length=5), nullable=True),
        sa.Column("identity_status", sa.String(length=5), server_default="PROV", nullable=False),
        sa.Column("motif", sa.String(length=9), nullable=False),
        sa.Column("motif_classification", sa.String(length=12), nullable=False),
        sa.Column("red_flags", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("needs_profession", sa.String(length=4), nullable=True),
        sa.Column("needs_specialty", sa.String(length=8), nullable=True),
        sa.Column("needs_modalities", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_by_kind", sa.String(length=10), nullable=False),
        sa.Column("created_by_id", sa.UUID(), nullable=False),
        sa.Column("imported", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("external_ref", sa.String(length=100), nullable=True),
        sa.Column("identity_purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "patient_ins IS NULL OR identity_status = 'QUAL'", name=op.f("ck_care_request_ins_only_when_qualified")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'transfer_required', 'booked', 'closed')", name=op.f("ck_care_request_status_known")
        ),
        sa.CheckConstraint("deadline_at > received_at", name=op.f("ck_care_request_deadline_after_reception")),
        sa.ForeignKeyConstraint(
            ["cpts_id"], ["cpts.id"], name=op.f("fk_care_request_cpts_id_cpts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_request")),
    )
    op.create_index("ix_care_request_cpts_id_received_at", "care_request", ["cpts_id", "received_at"], unique=False)
    op.create_index(
        "ix_care_request_cpts_id_status_deadline_at", "care_request", ["cpts_id", "status", "deadline_at"], unique=False
    )
    op.create_table(
        "orientation_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("cpts_id", sa.UUID(), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=10), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=False),
        sa.Column("booking_id", sa.UUID(), nullable=True),
        sa.Column("regulating_physician", sa.String(length=11), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.ForeignKeyConstraint(
            ["cpts_id"], ["cpts.id"], name=op.f("fk_orientation_event_cpts_id_cpts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["care_request.id"],
            name=op.f("fk_orientation_event_request_id_care_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orientation_event")),
    )
    op.create_index(
        "ix_orientation_event_cpts_id_request_id_id", "orientation_event", ["cpts_id", "request_id", "id"], unique=False
    )
    op.create_table(
        "booking",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("cpts_id", sa.UUID(), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("slot_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("hold_token", sa.UUID(), nullable=True),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("held_by_id", sa.UUID(), nullable=True),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("booked_by_id", sa.UUID(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_side", sa.String(length=12), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("cancelled_by_kind", sa.String(length=10), nullable=True),
        sa.Column("cancelled_by_id", sa.UUID(), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome_by_kind", sa.String(length=10), nullable=True),
        sa.Column("outcome_by_id", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('fulfilled', 'noshow')", name=op.f("ck_booking_outcome_known")
        ),
        sa.CheckConstraint(
            "status IN ('held', 'booked', 'released', 'expired', 'cancelled')", name=op.f("ck_booking_status_known")
        ),
        sa.ForeignKeyConstraint(["cpts_id"], ["cpts.id"], name=op.f("fk_booking_cpts_id_cpts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["care_request.id"], name=op.f("fk_booking_request_id_care_request"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["slot_id"], ["slot.id"], name=op.f("fk_booking_slot_id_slot"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking")),
    )
    op.create_index("ix_booking_cpts_id_request_id", "booking", ["cpts_id", "request_id"], unique=False)
    op.create_index(
        "uq_booking_one_active_per_request",
        "booking",
        ["request_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('held', 'booked')"),
    )
    op.create_index(
        "uq_booking_one_active_per_slot",
        "booking",
        ["slot_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('held', 'booked')"),
    )
    op.add_column(
        "cpts",
        sa.Column(
            "motif_overrides", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False
        ),
    )

    for statement in APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_event_append_only ON audit_event")
    op.execute("DROP TRIGGER orientation_event_append_only ON orientation_event")
    op.execute("DROP FUNCTION refuse_orientation_event_changes()")
    op.execute("DROP FUNCTION refuse_changes()")
    op.drop_column("cpts", "motif_overrides")
    op.drop_index(
        "uq_booking_one_active_per_slot", table_name="booking", postgresql_where=sa.text("status IN ('held', 'booked')")
    )
    op.drop_index(
        "uq_booking_one_active_per_request",
        table_name="booking",
        postgresql_where=sa.text("status IN ('held', 'booked')"),
    )
    op.drop_index("ix_booking_cpts_id_request_id", table_name="booking")
    op.drop_table("booking")
    op.drop_index("ix_orientation_event_cpts_id_request_id_id", table_name="orientation_event")
    op.drop_table("orientation_event")
    op.drop_index("ix_care_request_cpts_id_status_deadline_at", table_name="care_request")
    op.drop_index("ix_care_request_cpts_id_received_at", table_name="care_request")
    op.drop_table("care_request")
    op.drop_index("ix_audit_event_cpts_id_object_id", table_name="audit_event")
    op.drop_index("ix_audit_event_cpts_id_at", table_name="audit_event")
    op.drop_table("audit_event")
