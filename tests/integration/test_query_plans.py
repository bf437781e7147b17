"""The paths whose cost would grow with the data (suggestions, the slot search, the SAS's search, the
monthly report, the activity export, the queue) read the large tables through an index: each statement they
send is captured in the driver and EXPLAINed, with its own parameters, on a generated data set
where the CPTS measured holds a tenth of the rows. A change that turns one into a sequential scan
of a large table fails here before it shows in `make bench`'s scale phase."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from load_tests.bench import open_requests, prepare_sas
from load_tests.generator import PASSWORD, GeneratedCpts, generate
from service.bookings.repository import _CONFIRM_IN_ONE, _TAKE_IN_ONE
from service.db import DriverStatement, connector
from service.orientation.repository import _queue_statement
from service.reporting.periods import Month

LARGE = frozenset({"slot", "care_request", "booking", "orientation_event"})
MONTH = Month.of(datetime.now(UTC).date()).plus(-1)


@pytest.fixture(scope="module")
async def measured(database_url: str) -> GeneratedCpts:
    """A CPTS among others nine times its size (the others are one large CPTS)."""
    await generate(
        database_url, seed=31, name="CPTS plans (others)", practitioners=60, history=MONTH,
        history_requests=27_000, history_slots=27_000, future_days=14, future_slots_per_day=2_000,
    )  # fmt: skip
    return await generate(
        database_url, seed=32, name="CPTS plans (measured)", practitioners=60, history=MONTH,
        history_requests=3_000, history_slots=3_000, future_days=14, future_slots_per_day=220,
    )  # fmt: skip


@contextmanager
def statements(app: FastAPI) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the service sends meanwhile, with its parameters as the driver gets them."""
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def sequential_scans(plan: dict[str, Any], among: frozenset[str] | None = LARGE) -> list[str]:
    """The tables a plan reads whole: the large ones, or any (`among=None`)."""
    found = []
    if plan.get("Node Type") == "Seq Scan" and (among is None or plan.get("Relation Name") in among):
        found.append(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found += sequential_scans(child, among)
    return found


async def scans_of(database_url: str, sent: list[tuple[str, Any]]) -> dict[str, list[str]]:
    """For each read of a large table: the large tables its plan scans sequentially (explained with
    the service's own session settings, which weigh the planner's choices)."""
    conn = await connector(database_url)()
    try:
        out = {}
        for statement, parameters in sent:
            head = statement.lstrip().split(None, 1)[0].upper()
            if head not in ("SELECT", "WITH") or not any(t in statement for t in LARGE):
                continue
            plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *(parameters or ())))
            out[" ".join(statement.split())[:160]] = sequential_scans(plan[0]["Plan"])
        return out
    finally:
        await conn.close()


async def staff_token(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    answer = await client.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.raise_for_status().json()['access_token']}"}


async def test_the_growing_paths_read_the_large_tables_through_indexes(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, measured: GeneratedCpts
) -> None:
    waiting = (await open_requests(database_url, measured, 1))[0]
    sas = await prepare_sas(database_url, measured)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    handler = await staff_token(client, measured.credentials["handler"][0])
    coordinator = await staff_token(client, measured.credentials["coordinator"][0])
    search = {"profession": "10", "commune_insee": "44109", "limit": "20"}
    month = {"month": str(MONTH)}
    paths: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
        "suggestions": lambda: client.get(f"/v1/requests/{waiting}/suggestions", headers=handler),
        "search": lambda: client.get("/v1/slots/search", params=search, headers=handler),
        "sas search": lambda: client.get(sas.path, headers=sas.headers),
        "monthly report": lambda: client.get("/v1/reports/monthly", params=month, headers=coordinator),
        "activity export": lambda: client.get("/v1/reports/activity", params=month, headers=coordinator),
    }  # fmt: skip
    for name, call in paths.items():
        with statements(app) as sent:
            answer = await call()
        assert answer.status_code == 200, (name, answer.text[:200])
        scans = await scans_of(database_url, sent)
        assert scans, f"{name}: no read of a large table was captured"
        assert {s: t for s, t in scans.items() if t} == {}, name


@pytest.mark.parametrize(
    "statement",
    [_TAKE_IN_ONE[False], _TAKE_IN_ONE[True], _CONFIRM_IN_ONE],
    ids=["hold", "book", "confirm"],
)
async def test_the_booking_statements_cached_plans_read_one_row_of_each_table_by_key(
    database_url: str, measured: GeneratedCpts, statement: DriverStatement
) -> None:
    """The plan a booking runs with after its first executions (the generic one, prepared once per
    connection) finds the slot's practitioner, site and software clients by key. With the default
    cost of a random page it read every practitioner and client link of the CPTS at each booking."""
    conn = await connector(database_url)()  # the service's own session settings
    try:
        await conn.execute("ANALYZE")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        types = [t.name for t in (await conn.prepare(statement.sql)).get_parameters()]
        await conn.execute(f"PREPARE booking_statement ({', '.join(types)}) AS {statement.sql}")
        nulls = ", ".join("NULL" for _ in types)
        explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE booking_statement ({nulls})")
    finally:
        await conn.close()
    whole = sequential_scans(json.loads(explained)[0]["Plan"], among=None)
    assert [t for t in whole if t != "cpts"] == []  # the CPTS itself: one row in a page


def rows_read(plan: dict[str, Any], table: str) -> int:
    """The rows a plan (run with ANALYZE) read from a table, over all its loops."""
    own = plan["Actual Rows"] * plan["Actual Loops"] if plan.get("Relation Name") == table else 0
    return own + sum(rows_read(child, table) for child in plan.get("Plans", []))


async def test_a_page_of_the_queue_reads_a_page_of_each_status_not_every_open_request(
    database_url: str, measured: GeneratedCpts
) -> None:
    """Five hundred requests waiting, all received at once (the same deadline, ahead of any other):
    the first page and the next one read about a page of rows per status from the index, whatever
    the queue's length."""
    await open_requests(database_url, measured, 500)
    conn = await asyncpg.connect(database_url)
    undone = conn.transaction()  # the history's own open requests closed for the test, then restored
    await undone.start()
    try:
        await conn.execute(
            "UPDATE care_request SET status = 'closed' WHERE cpts_id = $1 AND status = 'open' AND deadline_at < now()",
            measured.cpts_id,
        )
        await conn.execute("ANALYZE care_request")
        statuses = ["open", "transfer_required"]
        audited = {"now": datetime.now(UTC), "actor_kind": "user", "actor_id": measured.handler_ids[0]}
        audited |= {"audit_action": "request.list", "audit_object_type": "request", "audit_detail": "{}"}
        audited |= {"audit_ip": None, "audit_request_id": None}
        params = {**audited, "cpts_id": measured.cpts_id, "statuses": statuses, "shown": 20}
        first_page = _queue_statement(False, False)
        first = await conn.fetch(first_page.sql, *first_page.arguments(params))
        last = first[19]
        assert last["status"] == "open"
        after = {"after_rank": 1, "after_deadline": last["deadline_at"], "after_id": last["id"]}
        pages = {"first": (first_page, params), "next": (_queue_statement(False, True), {**params, **after})}
        for name, (statement, values) in pages.items():
            explained = await conn.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {statement.sql}", *statement.arguments(values)
            )
            plan = json.loads(explained)[0]["Plan"]
            assert rows_read(plan, "care_request") <= len(statuses) * 21, (name, rows_read(plan, "care_request"))
            assert sequential_scans(plan) == [], name
    finally:
        await undone.rollback()
        await conn.close()
