"""The PostgreSQL server the tests use: TEST_DATABASE_URL, or the embedded one. Each run works in
databases of its own, created here and dropped at the end."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service import embedded_db

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def admin_url() -> Iterator[str]:
    """A URL with the right to create databases on the test server."""
    with ExitStack() as stack:
        url = os.environ.get("TEST_DATABASE_URL")
        if not url:
            data_dir = Path(os.environ.get("SNP_TEST_DATA_DIR", ROOT / ".data"))
            url = stack.enter_context(embedded_db.embedded_server(data_dir))
        yield url


def _libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def create_database(server_url: str, prefix: str = "snp_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(_libpq(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return embedded_db.database_url(_libpq(server_url), name)


async def drop_database(server_url: str, database_url: str) -> None:
    name = database_url.split("?")[0].rsplit("/", 1)[1]
    conn = await asyncpg.connect(_libpq(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def cut_pooled_connection(engine: AsyncEngine, server_url: str) -> None:
    """End the server side of the connection an engine's pool holds (its only one), as a database
    restart or a network cut would: the pool does not know until it next uses it."""
    async with engine.connect() as conn:
        pid = await conn.scalar(text("SELECT pg_backend_pid()"))
    admin = await asyncpg.connect(_libpq(server_url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
