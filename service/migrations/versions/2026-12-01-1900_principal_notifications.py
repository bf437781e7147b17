"""notify the workers when what a principal is made of changes (their principal caches)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 19:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel service.accounts.principals listens on; one notification per statement (PostgreSQL
# folds identical ones of a transaction into one, sent at commit).
TRIGGERS = {
    "staff_user_principal_changed": (
        "staff_user",
        "AFTER UPDATE OF role, active, credentials_version, rpps, cpts_id OR DELETE",
    ),
    "software_client_principal_changed": (
        "software_client",
        "AFTER UPDATE OF active, key_digest, cpts_id OR DELETE",
    ),
    "client_practitioner_principal_changed": ("client_practitioner", "AFTER INSERT OR UPDATE OR DELETE"),
    "cpts_principal_changed": ("cpts", "AFTER UPDATE OF timezone OR DELETE"),
}


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(
        """
        CREATE FUNCTION notify_principal_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('snp_principals', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for name, (table, when) in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} ON {table} FOR EACH STATEMENT EXECUTE FUNCTION notify_principal_changed()"
        )


def downgrade() -> None:
    for name, (table, _) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION notify_principal_changed()")
