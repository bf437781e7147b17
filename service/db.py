"""Declarative base, engine and the per-request session.

The session of an HTTP request is opened and committed by `routing.TransactionalRoute`, so that
the commit happens before the response is sent; dependencies only fetch it from the request.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import ColumnElement, DateTime, ForeignKey, MetaData, event, func
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import Integer, Text
from sqlalchemy.util.concurrency import greenlet_spawn

from service.observability import DB_ROUND_TRIPS

# Array parameters of the set-based statements (`unnest` of arrays instead of a round trip per row).
UUIDS = ARRAY(UUID(as_uuid=True))
TEXTS = ARRAY(Text)
TIMES = ARRAY(DateTime(timezone=True))
INTS = ARRAY(Integer)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def sql_fragment(expression: ColumnElement[Any]) -> str:
    """An expression as SQL text, for a compiled statement of a hot path: a rule written once as a
    SQLAlchemy expression (the `predicates` modules) serves the ORM queries and those statements."""
    rendered = expression.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})  # type: ignore[no-untyped-call]
    return f"({rendered})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True), uuid.UUID: UUID(as_uuid=True)}


class TenantOwned:
    """Mixin of every table whose rows belong to one CPTS: `service.tenancy` scopes its queries."""

    cpts_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cpts.id", ondelete="CASCADE"))


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=uuid.uuid4)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


def async_url(url: str) -> str:
    """Accept plain `postgresql://` URLs (as libpq tools write them) and use the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


@dataclass(frozen=True)
class Timeouts:
    """How long a request waits for the database before it answers 503 + Retry-After: connecting,
    a connection from the pool, a statement (on the server, and on the client for a server that
    no longer answers at all), a row lock."""

    connect_seconds: float = 3.0
    pool_seconds: float = 3.0
    statement_seconds: float = 5.0
    lock_seconds: float = 3.0


class DatabaseUnavailable(ConnectionError):
    """No connection to the database could be made (refused, no socket, no answer in time)."""


def connector(url: str, timeouts: Timeouts | None = None, name: str = "snp-service") -> Callable[[], Awaitable[Any]]:
    """A connection of the driver's own, outside the pool (e.g. to LISTEN), with the pool's limits."""
    return _connector(async_url(url), timeouts or Timeouts(), name)


def _connector(url: str, limits: Timeouts, name: str = "snp-service") -> Callable[[], Awaitable[Any]]:
    """Opens the driver's connections: a failure to connect is told apart from any other OSError
    (a request that meets it answers 503 + Retry-After, see service.problems)."""
    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    options = {
        "timeout": limits.connect_seconds,
        # The client side of the statement limit: a frozen server would never send its error.
        "command_timeout": limits.statement_seconds + 1,
        "server_settings": {
            "application_name": name,
            "timezone": "UTC",
            "statement_timeout": str(int(limits.statement_seconds * 1000)),
            "lock_timeout": str(int(limits.lock_seconds * 1000)),
            # Compiling a plan (JIT) pays off for long analytic queries only; here it added 0.3 s to
            # the first row of a month's export and doubled the month's facts query (issue 16).
            "jit": "off",
            # A page read at random costs about what a sequential one does when the data is on SSD
            # or in memory; the default (4, for spinning disks) made the booking's cached plan read
            # every practitioner and client link of the CPTS (a tenth of its PostgreSQL CPU at 200
            # practitioners, growing with them) instead of one row each by primary key (issue 16).
            "random_page_cost": "1.1",
        },
    }

    async def connect() -> Any:
        try:
            return await asyncpg.connect(dsn, **options)
        except (OSError, TimeoutError) as exc:
            raise DatabaseUnavailable(type(exc).__name__) from exc

    return connect


def create_engine(
    url: str, pool_size: int = 10, max_overflow: int = 20, timeouts: Timeouts | None = None, **kwargs: Any
) -> AsyncEngine:
    limits = timeouts or Timeouts()
    return create_async_engine(
        async_url(url),
        async_creator=_connector(async_url(url), limits),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=limits.pool_seconds,
        # No ping before each checkout: it is a round trip on every request, a fifth of the booking
        # path's. A connection found broken is dropped and the request answered 503 + Retry-After
        # (service.problems); a connection older than an hour is replaced.
        pool_pre_ping=False,
        pool_recycle=3600,
        # Statement parameters can hold patient data; keep them out of error messages and logs.
        hide_parameters=True,
        **kwargs,
    )


def count_round_trips(engine: AsyncEngine) -> None:
    """Count every exchange with PostgreSQL in `snp_db_round_trips_total`. The asyncpg adapter sends
    BEGIN only before a transaction's first statement, and COMMIT or ROLLBACK only after one, so
    they are counted the same way; a statement prepared once is then executed in one exchange."""
    statements = DB_ROUND_TRIPS.labels("statement")
    begins, ends = DB_ROUND_TRIPS.labels("begin"), DB_ROUND_TRIPS.labels("end")

    def statement(conn: Any, *_: Any) -> None:
        statements.inc()
        info = connection_info(conn)
        if info is not None and conn.in_transaction() and not info.get(_BEGUN) and not _autocommit(conn):
            info[_BEGUN] = True
            begins.inc()

    def end(conn: Any, *_: Any) -> None:
        info = connection_info(conn)
        if info is not None and info.pop(_BEGUN, False):
            ends.inc()

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", statement)
    event.listen(sync, "commit", end)
    event.listen(sync, "rollback", end)


_BEGUN = "snp_transaction_begun"


def _autocommit(conn: Any) -> bool:
    """An autocommit connection (`autocommit`): the driver sends no BEGIN or COMMIT for it."""
    return bool(getattr(conn.connection.dbapi_connection, "autocommit", False))


def connection_info(conn: Any) -> dict[Any, Any] | None:
    """A connection's `info`, or None for one lost in the middle of a transaction (reading it then
    would raise, inside the rollback that follows the loss)."""
    if conn.invalidated:
        return None
    try:
        info: dict[Any, Any] = conn.info
    except SQLAlchemyError:
        return None
    return info


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


_ROW_LOCK = re.compile(r"\bFOR\s+(NO\s+KEY\s+)?(UPDATE|SHARE)\b|\bFOR\s+KEY\s+SHARE\b", re.IGNORECASE)


def refuse_row_locks_outside_transactions(engine: AsyncEngine) -> None:
    """A row lock taken by a statement that commits itself is gone when the statement ends: a read
    request that would lock rows is a bug (it must be a POST). A statement that is a whole use case,
    whose locks cover all it does, is a `DriverStatement` declaring them (`locks_rows`)."""

    def check(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if _autocommit(conn) and _ROW_LOCK.search(statement):
            raise RuntimeError("a row lock in a statement outside any transaction (a read request?)")

    event.listen(engine.sync_engine, "before_cursor_execute", check)


_DRIVER_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]

# The error of `snp_decline(reason)` (migrations 0014, 0017): a single statement whose guard stops
# it undoes all it did and says why in the DETAIL; its caller takes the general path.
DECLINED = "SNP01"


class DriverStatement:
    """A statement compiled once and run by the driver (asyncpg) itself, prepared and cached per
    connection: none of SQLAlchemy's work per execution (execution context, result and row objects,
    ORM entities), which was most of a hot read's CPU. For the hot paths only: its parameters reach
    the driver as they are and its rows are the driver's records, so a statement whose types need
    SQLAlchemy's conversion either way is refused here, when it is built."""

    def __init__(self, statement: ClauseElement, *, locks_rows: bool = False) -> None:
        compiled: Any = statement.compile(dialect=_DRIVER_DIALECT)
        self.sql = str(compiled)
        self._names: tuple[str, ...] = tuple(compiled.positiontup or ())
        # The values the statement itself holds (literals SQLAlchemy made parameters); any other
        # parameter must be given: a missing one is an error, not a NULL.
        self._literals = {name: value for name, value in compiled.params.items() if value is not None}
        converted = [column.keyname for column in getattr(compiled, "_result_columns", []) if _converts(column.type)]
        if getattr(compiled, "_bind_processors", None) or converted:
            raise ValueError(f"values of this statement need SQLAlchemy's conversion: {converted or 'parameters'}")
        if _ROW_LOCK.search(self.sql) and not locks_rows:
            raise ValueError("a row lock in a statement the driver runs: say so with locks_rows=True")

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = {**self._literals, **params}
        return [values[name] for name in self._names]


def _converts(kind: Any) -> bool:
    """Whether SQLAlchemy changes what the driver returns for a column of this type (an array of
    plain items comes back from the driver as the list SQLAlchemy would make)."""
    if isinstance(kind, ARRAY) and not kind.as_tuple and not getattr(kind, "_against_native_enum", False):
        kind = kind.item_type
    return kind._cached_result_processor(_DRIVER_DIALECT, None) is not None


def merged(*values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a statement made of several modules' fragments."""
    out: dict[str, Any] = {}
    for part in values:
        for key, value in part.items():
            # A shared parameter must mean the same in every fragment.
            if key in out and out[key] != value:
                raise ValueError(f"parameter {key!r} differs between fragments")
            out[key] = value
    return out


class DriverConnection:
    """A connection of the pool that only the driver uses, for `DriverStatement`s that each commit
    themselves: checked out and returned without SQLAlchemy's `Connection` around it, whose creation
    and closing cost 60 us a request (a tenth of a one-query GET's worker CPU, issue 16)."""

    __slots__ = ("_pooled", "driver")

    def __init__(self, pooled: PoolProxiedConnection) -> None:
        self._pooled = pooled
        self.driver: Any = pooled.driver_connection

    async def invalidate(self) -> None:
        """Drop it from the pool: it broke."""
        await greenlet_spawn(self._pooled.invalidate)

    async def release(self) -> None:
        # In SQLAlchemy's greenlet: the pool may close it on return (overflow, recycling), which awaits.
        await greenlet_spawn(self._pooled.close)


# Where driver statements run: a connection of the driver's own, or a session's (its transaction).
StatementConnection = AsyncConnection | DriverConnection


async def checkout(engine: AsyncEngine) -> DriverConnection:
    """A connection of `engine`'s pool for driver statements alone; `release` it when done."""
    return DriverConnection(await engine.raw_connection())


async def fetchrow(conn: StatementConnection, statement: DriverStatement, **params: Any) -> asyncpg.Record | None:
    """One row of `statement` run by the driver on `conn` (one round trip, counted like the others).
    A connection lost meanwhile is dropped from the pool and the request answered 503 + Retry-After,
    as SQLAlchemy does for its own statements."""
    row: asyncpg.Record | None = await _run(conn, "fetchrow", statement, params)
    return row


async def fetch(conn: StatementConnection, statement: DriverStatement, **params: Any) -> list[asyncpg.Record]:
    """Every row of `statement` run by the driver on `conn`, as `fetchrow`."""
    rows: list[asyncpg.Record] = await _run(conn, "fetch", statement, params)
    return rows


async def _run(conn: StatementConnection, method: str, statement: DriverStatement, params: Mapping[str, Any]) -> Any:
    driver: Any = (
        conn.driver if isinstance(conn, DriverConnection) else (await conn.get_raw_connection()).driver_connection
    )
    DB_ROUND_TRIPS.labels("statement").inc()
    try:
        return await getattr(driver, method)(statement.sql, *statement.arguments(params))
    except Exception as exc:
        if driver.is_closed():
            await conn.invalidate()
            raise DatabaseUnavailable(type(exc).__name__) from exc
        raise


async def begin_on_server(session: AsyncSession) -> AsyncConnection:
    """The session's connection with its transaction begun on the server. SQLAlchemy's asyncpg adapter
    sends BEGIN (with the isolation level asked for) only before its own first statement: driver
    statements (`fetch`) run before that would each take their own snapshot, outside it."""
    conn = await session.connection()
    await conn.exec_driver_sql("SELECT 1")
    return conn


@asynccontextmanager
async def autocommit(session: AsyncSession) -> AsyncIterator[DriverConnection]:
    """A connection of the session's engine outside any transaction, for a use case that is one
    statement (atomic by itself) run by the driver (`DriverStatement`): no BEGIN and no COMMIT, one
    round trip."""
    engine = session.bind
    if not isinstance(engine, AsyncEngine):  # pragma: no cover - sessions are bound to the engine
        raise RuntimeError("the session is not bound to an engine")
    conn = await checkout(engine)
    try:
        yield conn
    finally:
        await conn.release()


@asynccontextmanager
async def session_scope(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction outside HTTP (CLI, relay): committed on success, rolled back on error."""
    async with sessionmaker() as session, session.begin():
        yield session


class ReadingDatabase:
    """The database of a read marked `routing.statements_alone`: connections outside any
    transaction, checked out on first use, and a session only if the route asks for one
    (`SessionDep`). A read that runs driver statements (`ReadConnection`) pays for no session (its
    creation, its begin and commit were a fifth of a one-query GET's CPU) and gets a connection of
    the driver's own; once a session is open (the principal's lookup, which comes first), its
    statements run on the session's connection instead, so that a read holds one connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine  # with isolation_level AUTOCOMMIT (`reading_engine`)
        self._connection: AsyncConnection | None = None  # the session's
        self._driver: DriverConnection | None = None
        self.session: AsyncSession | None = None

    async def connection(self) -> StatementConnection:
        """Where the read's driver statements run: its session's connection if it opened one (the
        principal's lookup, before the route's own dependencies), else one of the driver's own."""
        if self._connection is not None:
            return self._connection
        if self._driver is None:
            self._driver = await checkout(self._engine)
        return self._driver

    async def open_session(self) -> AsyncSession:
        if self.session is None:
            if self._connection is None:
                self._connection = await self._engine.connect()
            self.session = AsyncSession(bind=self._connection, expire_on_commit=False, autoflush=False)
        return self.session

    async def close(self) -> None:
        try:
            if self.session is not None:
                await self.session.close()
        finally:
            try:
                if self._connection is not None:
                    await self._connection.close()
            finally:
                if self._driver is not None:
                    await self._driver.release()


def reading_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine's connections outside any transaction: each statement commits itself. In READ
    COMMITTED a transaction gives a read nothing more (each statement takes its own snapshot), and
    BEGIN and COMMIT are two round trips of three for a one-query GET. What such a request writes
    (the audit of a read) is kept even if its answer then fails."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def untouched(session: AsyncSession) -> bool:
    """A session that began no transaction and holds nothing: its commit, rollback and close would do
    nothing but cost a hop through SQLAlchemy's greenlet each (45 us a request, a twentieth of a
    booking's CPU, whose single statement runs beside the session)."""
    return not (session.in_transaction() or session.identity_map or session.new or session.deleted)


async def get_session(request: Request) -> AsyncSession:  # async: no thread-pool hop
    session = getattr(request.state, "db_session", None)
    if session is None:
        reads = getattr(request.state, "reads", None)
        if reads is None:  # pragma: no cover - a route outside TransactionalRoute
            raise RuntimeError("this route has no database session; use TransactionalRoute")
        session = await reads.open_session()
    assert isinstance(session, AsyncSession)
    return session


async def read_connection(request: Request) -> StatementConnection:
    """The connection a read's driver statements run on: the read's own, or its session's."""
    reads = getattr(request.state, "reads", None)
    if isinstance(reads, ReadingDatabase):
        return await reads.connection()
    return await (await get_session(request)).connection()


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadConnection = Annotated[StatementConnection, Depends(read_connection)]
