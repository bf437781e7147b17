"""the queue in its index's order: each status's requests by deadline, then id, so that a page
of the queue reads its rows from the index instead of sorting every open request

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 14:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    # (cpts_id, status, deadline_at, id) serves everything the three-column index did, and the
    # queue's ORDER BY within a status, ties on the deadline included (requests received together).
    op.create_index(
        "ix_care_request_cpts_id_status_deadline_at_id", "care_request", ["cpts_id", "status", "deadline_at", "id"]
    )
    op.drop_index("ix_care_request_cpts_id_status_deadline_at", table_name="care_request")


def downgrade() -> None:
    op.create_index("ix_care_request_cpts_id_status_deadline_at", "care_request", ["cpts_id", "status", "deadline_at"])
    op.drop_index("ix_care_request_cpts_id_status_deadline_at_id", table_name="care_request")
