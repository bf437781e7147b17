"""the month's requests in the order reports and exports read them

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 21:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    # (cpts_id, received_at, id) serves everything the two-column index did, and the ORDER BY of
    # the facts query: the export's cursor streams from it instead of sorting the month first.
    op.create_index("ix_care_request_cpts_id_received_at_id", "care_request", ["cpts_id", "received_at", "id"])
    op.drop_index("ix_care_request_cpts_id_received_at", table_name="care_request")


def downgrade() -> None:
    op.create_index("ix_care_request_cpts_id_received_at", "care_request", ["cpts_id", "received_at"])
    op.drop_index("ix_care_request_cpts_id_received_at_id", table_name="care_request")
