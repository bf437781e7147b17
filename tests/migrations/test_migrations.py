from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from service import migrate
from tests import dbserver


@pytest.fixture
async def empty_database(server_url: str) -> AsyncIterator[str]:
    url = await dbserver.create_database(server_url, "snp_migr")
    yield url
    await dbserver.drop_database(server_url, url)


async def tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_upgrade_downgrade_reupgrade_and_no_drift(empty_database: str) -> None:
    from alembic import command

    config = migrate.alembic_config(empty_database)
    migrate.upgrade(empty_database)
    created = await tables(empty_database)
    assert {"cpts", "practitioner", "staff_user", "software_client", "alembic_version"} <= created
    # The models and the migrations describe the same schema.
    command.check(config)
    migrate.downgrade(empty_database, "base")
    assert await tables(empty_database) == {"alembic_version"}
    migrate.upgrade(empty_database)
    assert await tables(empty_database) == created


def test_migration_files_are_dated_and_set_a_lock_timeout() -> None:
    import re

    versions = sorted(p for p in (migrate.MIGRATIONS / "versions").glob("*.py") if p.name != "__init__.py")
    assert versions
    for path in versions:
        assert re.match(r"^\d{4}-\d{2}-\d{2}-\d{4}_[a-z0-9_]+\.py$", path.name), path.name
        upgrade = path.read_text().split("def upgrade()", 1)[1].split("def downgrade()", 1)[0]
        assert "SET LOCAL lock_timeout" in upgrade, path.name


async def test_existing_cpts_get_a_pseudonym_key(empty_database: str) -> None:
    migrate.upgrade(empty_database, "0004")
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute(
            "INSERT INTO cpts (id, name, population, contract_start_date) "
            "VALUES (gen_random_uuid(), 'Old', 1000, '2024-01-01')"
        )
        assert await conn.fetchval("SELECT pseudonym_key FROM cpts") is None
    finally:
        await conn.close()
    migrate.upgrade(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        key = await conn.fetchval("SELECT pseudonym_key FROM cpts")
        nullable = await conn.fetchval(
            "SELECT is_nullable FROM information_schema.columns "
            "WHERE table_name = 'cpts' AND column_name = 'pseudonym_key'"
        )
    finally:
        await conn.close()
    assert len(key) == 32
    assert nullable == "NO"
