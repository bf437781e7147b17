"""Who a token or an API key names, kept per worker so that a request does not ask PostgreSQL each
time, and exact through PostgreSQL's LISTEN/NOTIFY.

Triggers (migration 0013) notify the channel `snp_principals` when something a principal is made
of changes: a user's role, activity, credentials version (a password change, a deactivation, a
role change), RPPS or CPTS; a client's key, activity or CPTS; its practitioners; a CPTS's time
zone. Every worker listens on a connection of its own and empties its cache on each notification.

How stale an entry can be: until the notification arrives, milliseconds after the change's
commit. The worker that made the change empties its cache before that, at its own commit, so its
next request already sees the change. While the listening connection is down nothing is cached
and every request asks the database. Caching starts only once the triggers are found and a
notification of the worker's own has come back on that connection, and every `CHECK_SECONDS` one
must come back again: a connection that dies without closing, or a pooler that answers queries but
drops notifications, stops the caching within twice that. An entry is also dropped after
`max_age` seconds (`SNP_PRINCIPAL_CACHE_SECONDS`) whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, TypeVar

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from service.accounts.repository import ClientPrincipalRow, UserPrincipalRow
from service.db import connection_info

CHANNEL = "snp_principals"
APPLICATION_NAME = "snp-principals"  # the listening connection, as pg_stat_activity shows it
CHECK_SECONDS = 5.0
RECONNECT_SECONDS = 1.0
_log = structlog.get_logger("service.principals")

Key = TypeVar("Key")
Row = TypeVar("Row")


class PrincipalCache:
    """Users by id and clients by key digest, with the generation they were read in: a row read
    while a notification emptied the cache is not kept (it may predate the change)."""

    def __init__(self, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.clock = clock
        self.listening = False
        self.generation = 0
        self._users: dict[uuid.UUID, tuple[float, UserPrincipalRow]] = {}
        self._clients: dict[str, tuple[float, ClientPrincipalRow]] = {}

    @property
    def enabled(self) -> bool:
        return self.listening and self.max_age > 0

    def clear(self) -> None:
        self.generation += 1
        self._users.clear()
        self._clients.clear()

    def stop_listening(self) -> None:
        self.listening = False
        self.clear()

    def _get(self, entries: dict[Key, tuple[float, Row]], key: Key) -> Row | None:
        if not self.enabled:
            return None
        found = entries.get(key)
        if found is None:
            return None
        stored_at, row = found
        if self.clock() - stored_at >= self.max_age:
            del entries[key]
            return None
        return row

    def _keep(self, entries: dict[Key, tuple[float, Row]], key: Key, row: Row, generation: int) -> None:
        if self.enabled and generation == self.generation:
            entries[key] = (self.clock(), row)

    def user(self, user_id: uuid.UUID) -> UserPrincipalRow | None:
        return self._get(self._users, user_id)

    def keep_user(self, row: UserPrincipalRow, generation: int) -> None:
        self._keep(self._users, row.id, row, generation)

    def client(self, key_digest: str) -> ClientPrincipalRow | None:
        return self._get(self._clients, key_digest)

    def keep_client(self, key_digest: str, row: ClientPrincipalRow, generation: int) -> None:
        self._keep(self._clients, key_digest, row, generation)


# A statement that may change what a principal is made of (the triggers' tables), whether the ORM
# or a hand-written statement sends it.
_CHANGES_PRINCIPALS = re.compile(
    r"\b(?:UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+(?:staff_user|software_client|client_practitioner|cpts)\b",
    re.IGNORECASE,
)
_CHANGED = "snp_principals_changed"
_CLEAR_AT_CHECKIN = "snp_principals_clear_at_checkin"


@lru_cache(maxsize=4096)
def changes_principals(statement: str) -> bool:
    return _CHANGES_PRINCIPALS.search(statement) is not None


def empty_on_own_commits(engine: AsyncEngine, cache: PrincipalCache) -> None:
    """This worker's own changes empty its cache when they commit, before their notification
    comes back: the answer to a password change is followed by a request that knows of it."""

    def statement(conn: Any, cursor: Any, text: str, *_: Any) -> None:
        info = connection_info(conn)
        if changes_principals(text):
            if info is None:
                cache.clear()
            else:
                info[_CHANGED] = True

    def commit(conn: Any) -> None:
        # Fired before the COMMIT is sent: emptied now, and again when the connection goes back to
        # the pool (after the COMMIT, before the answer), so that a request reading the old row
        # while the COMMIT is in flight cannot keep it.
        info = connection_info(conn)
        if info is None or info.pop(_CHANGED, False):
            cache.clear()
            if info is not None:
                info[_CLEAR_AT_CHECKIN] = True

    def checkin(dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop(_CLEAR_AT_CHECKIN, False):
            cache.clear()

    def rollback(conn: Any) -> None:
        info = connection_info(conn)
        if info is not None:
            info.pop(_CHANGED, None)

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", statement)
    event.listen(sync, "commit", commit)
    event.listen(sync, "rollback", rollback)
    event.listen(sync.pool, "checkin", checkin)


async def listen(connect: Callable[[], Awaitable[Any]], cache: PrincipalCache, stop: asyncio.Event) -> None:
    """Keep a connection listening on `snp_principals` until `stop`; cache only while it is up and
    answers its checks."""
    while not stop.is_set():
        try:
            await _listen_once(connect, cache, stop)
        except Exception as exc:  # noqa: BLE001 - the listener must outlive a lost connection
            _log.warning("principals.listener_lost", error_type=type(exc).__name__)
        finally:
            cache.stop_listening()
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=RECONNECT_SECONDS)


_ECHO = "echo:"
_TRIGGERS_PRESENT = "SELECT count(*) = 4 FROM pg_trigger WHERE tgname LIKE '%\\_principal\\_changed'"


async def _echo(connection: Any, echoes: dict[str, asyncio.Future[None]]) -> None:
    """Send a notification of our own on the channel and wait for it to come back."""
    payload = f"{_ECHO}{uuid.uuid4().hex}"
    echo: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    echoes[payload] = echo
    try:
        await asyncio.wait_for(connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload), CHECK_SECONDS)
        await asyncio.wait_for(echo, CHECK_SECONDS)
    finally:
        echoes.pop(payload, None)


async def _first_of(one: asyncio.Event, other: asyncio.Event, seconds: float) -> None:
    """Until either event is set, or `seconds` pass."""
    waits = {asyncio.ensure_future(one.wait()), asyncio.ensure_future(other.wait())}
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def _listen_once(connect: Callable[[], Awaitable[Any]], cache: PrincipalCache, stop: asyncio.Event) -> None:
    """One listening connection, until it is lost, stops answering, or `stop` is set."""
    connection = await connect()
    try:
        lost = asyncio.Event()

        def terminated(_: Any) -> None:
            cache.stop_listening()  # at once: the notifications stopped with the connection
            lost.set()

        connection.add_termination_listener(terminated)
        echoes: dict[str, asyncio.Future[None]] = {}

        def notified(_: Any, __: Any, ___: Any, payload: str) -> None:
            echo = echoes.pop(payload, None)
            if echo is not None:  # our own check coming back, not a change
                if not echo.done():
                    echo.set_result(None)
            elif not payload.startswith(_ECHO):
                cache.clear()

        await connection.add_listener(CHANNEL, notified)
        if not await connection.fetchval(_TRIGGERS_PRESENT):
            raise RuntimeError("the principal triggers are missing (migration 0013): nothing is cached")
        await _echo(connection, echoes)
        cache.clear()  # what changed while nobody listened
        cache.listening = True
        while True:
            await _first_of(stop, lost, CHECK_SECONDS)
            if stop.is_set() or lost.is_set():
                return
            # Notifications still come back on this connection (not only answers: a pooler in front
            # of PostgreSQL, or a connection half gone, would answer a query and drop notifications).
            await _echo(connection, echoes)
    finally:
        cache.stop_listening()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), timeout=2)
