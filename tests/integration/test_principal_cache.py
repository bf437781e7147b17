"""The workers' principal cache (service.accounts.principals) against the real PostgreSQL: a
principal is read once, then served from memory; a change made anywhere (another worker, the CLI,
plain SQL) empties it through LISTEN/NOTIFY within a bounded time; this worker's own changes take
effect on its very next request; while the listening connection is down nothing is cached."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from service.accounts import principals
from service.accounts.principals import APPLICATION_NAME, PrincipalCache
from service.accounts.repository import UserPrincipalRow
from tests.builders import Tenant

# How long a change made elsewhere may take to reach this worker (the notification's delivery).
STALENESS_BOUND = 2.0


@contextmanager
def principal_lookups(app: FastAPI) -> Iterator[list[str]]:
    """The principal queries (of staff_user or software_client) run inside the block."""
    seen: list[str] = []

    def statement(conn: object, cursor: object, text: str, *_: object) -> None:
        if "FROM staff_user AS u JOIN cpts" in text or "FROM software_client AS k JOIN cpts" in text:
            seen.append(text)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", statement)


async def wait_for(predicate: Callable[[], Awaitable[bool]], within: float = STALENESS_BOUND) -> float:
    """Seconds until `predicate()` is true; fails after `within`."""
    started = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - started
        assert time.monotonic() - started < within, "not within the bound"
        await asyncio.sleep(0.02)


async def listening(app: FastAPI) -> bool:
    cache: PrincipalCache = app.state.principals
    return cache.listening


async def test_a_principal_is_read_once_then_a_change_made_elsewhere_reaches_the_worker_at_once(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, database_url: str
) -> None:
    await wait_for(lambda: listening(app))
    assert (await client.get("/v1/requests", headers=tenant.handler)).status_code == 200
    with principal_lookups(app) as lookups:
        assert (await client.get("/v1/motifs", headers=tenant.handler)).status_code == 200
    assert lookups == []  # the principal came from the cache

    # Another process deactivates the handler: no request of this worker made the change.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE staff_user SET active = false WHERE id = $1", uuid.UUID(tenant.user_ids["handler"]))
    finally:
        await conn.close()

    async def refused() -> bool:
        return (await client.get("/v1/motifs", headers=tenant.handler)).status_code == 401

    delay = await wait_for(refused)
    assert delay < STALENESS_BOUND


async def test_this_workers_own_change_holds_on_its_next_request(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await wait_for(lambda: listening(app))
    handler = tenant.handler
    assert (await client.get("/v1/motifs", headers=handler)).status_code == 200  # cached now
    changed = await client.patch(
        f"/v1/users/{tenant.user_ids['handler']}",
        json={"password": "Une toute autre phrase de passe 2026 !"},
        headers=tenant.coordinator,
    )
    assert changed.status_code == 200, changed.text
    # The very next request, with no pause for the notification: the old token is dead.
    assert (await client.get("/v1/motifs", headers=handler)).status_code == 401


async def test_while_the_listening_connection_is_down_nothing_is_cached(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await wait_for(lambda: listening(app))
    assert (await client.get("/v1/motifs", headers=tenant.handler)).status_code == 200  # cached now
    monkeypatch.setattr(principals, "RECONNECT_SECONDS", 3.0)  # time to look before it reconnects
    conn = await asyncpg.connect(database_url)
    try:
        ended = await conn.fetchval(
            # This database's listener only: the machine's server may serve other databases' services.
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME,
        )
        assert ended == 1

        async def deaf() -> bool:
            return not await listening(app)

        await wait_for(deaf, within=1.0)
        with principal_lookups(app) as lookups:
            assert (await client.get("/v1/motifs", headers=tenant.handler)).status_code == 200
            assert (await client.get("/v1/motifs", headers=tenant.handler)).status_code == 200
        assert len(lookups) == 2  # the principal was asked of the database each time
        # A change made elsewhere now is seen at once, without any notification.
        await conn.execute(
            "UPDATE staff_user SET credentials_version = credentials_version + 1 WHERE id = $1",
            uuid.UUID(tenant.user_ids["handler"]),
        )
        assert (await client.get("/v1/motifs", headers=tenant.handler)).status_code == 401
    finally:
        await conn.close()
    await wait_for(lambda: listening(app), within=6.0)  # it reconnects by itself


def row(user_id: uuid.UUID) -> UserPrincipalRow:
    return UserPrincipalRow(user_id, uuid.uuid4(), "handler", "Europe/Paris", 1, None)


def test_a_row_read_while_the_cache_was_emptied_is_not_kept() -> None:
    cache = PrincipalCache(max_age=60)
    cache.listening = True
    user_id = uuid.uuid4()
    generation = cache.generation
    cache.clear()  # a notification arrived while the row was being read
    cache.keep_user(row(user_id), generation)
    assert cache.user(user_id) is None
    cache.keep_user(row(user_id), cache.generation)
    assert cache.user(user_id) is not None


def test_entries_expire_and_nothing_is_cached_unless_listening() -> None:
    now = [0.0]
    cache = PrincipalCache(max_age=60, clock=lambda: now[0])
    user_id = uuid.uuid4()
    cache.keep_user(row(user_id), cache.generation)
    assert cache.user(user_id) is None  # not listening: not kept
    cache.listening = True
    cache.keep_user(row(user_id), cache.generation)
    assert cache.user(user_id) is not None
    now[0] = 60.0
    assert cache.user(user_id) is None
    disabled = PrincipalCache(max_age=0)
    disabled.listening = True
    disabled.keep_user(row(user_id), disabled.generation)
    assert disabled.user(user_id) is None
