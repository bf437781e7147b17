"""`make bench`: the service against what PostgreSQL itself can do, in one run.

On the embedded server (or DATABASE_URL): generates a large CPTS, then measures
- the raw limit: pgbench running the service's own hold-then-release SQL on the same database;
- the ceiling of the HTTP stack: an authenticated one-query GET at full speed;
- confirmed bookings per second through the HTTP API, under contention (two patients per slot);
- suggestions and search latency at a fixed arrival rate (open loop: latency counts from when
  each request was due, so a slow answer cannot hide the ones queued behind it);
- batch publication in slots per second, and the monthly report time;
then checks the invariants in SQL and prints a table (JSON in load_tests/results/).

    .venv/bin/python -m load_tests.bench [--workers 2] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import httpx

from load_tests import bench_mix, bench_pull, bench_scale, scenarios
from load_tests.bench_publish import batch_items, publish_all, raw_insert
from load_tests.generator import PASSWORD, GeneratedCpts, credentials_document, generate
from load_tests.harness import (
    BenchTenant,
    bench_database,
    connections_per_process,
    live_granian,
    live_service,
    percentile,
)
from service import embedded_db, migrate
from service.accounts.domain import SAS_KEY_PREFIX, new_api_key
from service.reporting.periods import Month
from service.slots.predicates import OFFERABLE_SQL

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {
    "bookings_per_s": 300,
    "suggestions_p95_ms": 50,
    "publication_slots_per_s": 5000,
    "booking_to_raw_ratio": 0.20,
    "fhir_p95_ms": 100,
    "ceiling_to_healthz_ratio": 0.40,
    "booking_round_trips": 2,
    "one_worker_booking_to_raw_ratio": 0.10,
}


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    booked: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        """5xx answers, and requests that got no answer at all."""
        return sum(n for status, n in self.statuses.items() if status >= 500 or status == 0)


# --- the raw limit ---------------------------------------------------------------------------------

# The service's own rule of an offerable slot (pgbench reads `:name` as its variables: the clock
# is the server's).
PGBENCH_SCRIPT = """
\\set n random(1, {slots})
BEGIN;
UPDATE slot AS s SET status = 'held', hold_token = {token}, hold_expires_at = now() + interval '180 seconds'
WHERE s.id = (SELECT id FROM bench_slot WHERE n = :n) AND s.cpts_id = '{cpts}' AND {offerable}
RETURNING id;
UPDATE slot SET status = 'free', hold_token = NULL, hold_expires_at = NULL
WHERE id = (SELECT id FROM bench_slot WHERE n = :n) AND status = 'held' AND hold_token = {token};
END;
"""
# One token per pgbench client, so that a client releases only its own hold.
TOKEN = "('00000000-0000-4000-8000-' || lpad(:client_id::text, 12, '0'))::uuid"  # noqa: S105 - SQL, not a secret


def pgbench_binary() -> str:
    found = shutil.which("pgbench")
    if not os.environ.get("DATABASE_URL"):
        return str(embedded_db.bin_dir() / "pgbench")  # the server's own version
    if found is None:
        raise RuntimeError("pgbench not found: install the PostgreSQL client tools")
    return found


def libpq_args(url: str) -> tuple[list[str], str, dict[str, str]]:
    """pgbench's connection arguments, database and environment (the password goes in PGPASSWORD,
    never on the command line)."""
    parsed = urlparse(url)
    args = ["-U", parsed.username or "postgres"]
    host = parse_qs(parsed.query).get("host", [parsed.hostname or "127.0.0.1"])[0]
    args += ["-h", host, "-p", str(parsed.port or 5432)]
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    return args, parsed.path.lstrip("/"), env


async def raw_hold_release(url: str, cpts: GeneratedCpts, seconds: int, clients: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE bench_slot AS SELECT row_number() OVER (ORDER BY id) AS n, id FROM slot "
            "WHERE cpts_id = $1 AND status = 'free' AND start_at > now() + interval '1 day'",
            cpts.cpts_id,
        )
        await conn.execute("ALTER TABLE bench_slot ADD PRIMARY KEY (n)")
        count = await conn.fetchval("SELECT count(*) FROM bench_slot")
    finally:
        await conn.close()
    offerable = OFFERABLE_SQL.replace(":now", "now()")
    script = PGBENCH_SCRIPT.format(slots=count, token=TOKEN, cpts=cpts.cpts_id, offerable=offerable)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
    args, database, env = libpq_args(url)
    command = [
        pgbench_binary(),
        "-n",
        "-M",
        "prepared",
        "-c",
        str(clients),
        "-j",
        "2",
        "-T",
        str(seconds),
        "-f",
        handle.name,
        *args,
        database,
    ]
    out = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, check=False, env=env)
    os.unlink(handle.name)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE bench_slot")
    finally:
        await conn.close()
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout)
    if not match:
        raise RuntimeError(f"pgbench failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    latency = re.search(r"latency average = ([\d.]+) ms", out.stdout)
    return {
        "transactions_per_s": round(float(match.group(1))),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "clients": clients,
        "slots": count,
    }


# --- the service -------------------------------------------------------------------------------------


async def open_requests(url: str, cpts: GeneratedCpts, count: int) -> list[uuid.UUID]:
    """Open requests waiting in the queue, as handlers would have created them."""
    now = datetime.now(UTC)
    rows = [
        (
            uuid.uuid4(),
            cpts.cpts_id,
            now - timedelta(minutes=5),
            now + timedelta(hours=24) - timedelta(minutes=5),
            "phone",
            "44109",
            "M19.05.00",
            "assess",
            "10",
            "SM54",
            ["AMB", "HH", "VR"],
            "open",
            "user",
            cpts.handler_ids[0],
            now,
            now,
        )
        for _ in range(count)
    ]
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "care_request",
            records=rows,
            columns=[
                "id",
                "cpts_id",
                "received_at",
                "deadline_at",
                "channel",
                "patient_commune_insee",
                "motif",
                "motif_classification",
                "needs_profession",
                "needs_specialty",
                "needs_modalities",
                "status",
                "created_by_kind",
                "created_by_id",
                "created_at",
                "updated_at",
            ],
        )
        slots = await conn.fetch(
            "SELECT id FROM slot WHERE cpts_id = $1 AND status = 'free' AND start_at > now() + interval '1 hour' "
            "AND start_at < now() + interval '14 days' ORDER BY start_at",
            cpts.cpts_id,
        )
    finally:
        await conn.close()
    return [r[0] for r in rows] + [s[0] for s in slots]  # requests, then candidate slots


async def tokens(base: str, cpts: GeneratedCpts) -> dict[str, list[str]]:
    async with httpx.AsyncClient(base_url=base) as http:
        result: dict[str, list[str]] = {}
        for role, emails in cpts.credentials.items():
            if role in ("handler", "coordinator"):
                result[role] = [
                    (await http.post("/v1/auth/token", data={"username": e, "password": PASSWORD})).json()[
                        "access_token"
                    ]
                    for e in emails
                ]
        return result


def contended_pairs(
    requests: list[uuid.UUID], slots: list[uuid.UUID], share: float
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """A request for each slot, and a second one racing for `share` of them (every 1/share-th)."""
    pairs: list[tuple[uuid.UUID, uuid.UUID]] = []
    every = max(1, round(1 / share)) if share else 0
    wanted = iter(requests)
    for index, slot in enumerate(slots):
        for _ in range(2 if every and index % every == 0 else 1):
            request = next(wanted, None)
            if request is None:
                return pairs
            pairs.append((request, slot))
    return pairs


CONTENDED_SHARE = 0.25  # of the slots, wanted by two patients at once


async def bookings_under_contention(
    base: str,
    handler_tokens: list[str],
    requests: list[uuid.UUID],
    slots: list[uuid.UUID],
    seconds: float,
    concurrency: int,
    contention: float = CONTENDED_SHARE,
    warmup: float = 2.0,
    pairs: Iterator[tuple[uuid.UUID, uuid.UUID]] | None = None,
) -> tuple[dict[str, Any], Tally]:
    """Handlers booking at full speed; a quarter of the slots are wanted by two patients at once
    (one gets it, the other a 409). The first `warmup` seconds (connections opening, statements
    being prepared) are not counted; every booking answered counts for the invariants. `pairs`:
    the (request, slot) pairs to go on with, left by an earlier round."""
    if pairs is None:
        pairs = iter(contended_pairs(requests, slots, contention))
    tally = Tally()
    warm = Tally()  # answers during the warm-up
    measured_from = time.perf_counter() + warmup
    deadline = measured_from + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        base_url=base, connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as http:

        async def worker(index: int) -> None:
            headers = {"Authorization": f"Bearer {handler_tokens[index % len(handler_tokens)]}"}
            for request_id, slot_id in pairs:
                if time.perf_counter() > deadline:
                    return
                started = time.perf_counter()
                counted = tally if started >= measured_from else warm
                try:
                    async with http.post(
                        f"/v1/requests/{request_id}/book", json={"slot_id": str(slot_id)}, headers=headers
                    ) as answer:
                        body = await answer.read()
                        status = answer.status
                except aiohttp.ClientError:
                    counted.statuses[0] += 1  # no answer at all
                    continue
                counted.latencies.append(time.perf_counter() - started)
                counted.statuses[status] += 1
                if status == 201:
                    counted.booked.append(json.loads(body)["booking_id"])

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - measured_from
        spread = connections_per_process(int(base.rsplit(":", 1)[1]))  # the clients' connections still open
    if elapsed < seconds * 0.99:
        raise RuntimeError("the bookings ran out of free slots before the end of the phase: generate more")
    answered = Tally(tally.statuses + warm.statuses, [], tally.booked + warm.booked)  # for the invariants
    return (
        {
            "confirmed_per_s": round(len(tally.booked) / elapsed),
            "attempts_per_s": round(sum(tally.statuses.values()) / elapsed),
            "refused_409": tally.statuses.get(409, 0),
            "statuses": dict(tally.statuses),
            "p50_ms": round(percentile(tally.latencies, 50) * 1000, 1),
            "p95_ms": round(percentile(tally.latencies, 95) * 1000, 1),
            "concurrency": concurrency,
            "contended_share": contention,
            "connections_per_worker": spread,
        },
        answered,
    )


BOOKING_ROUNDS = 3


async def bookings_in_rounds(
    url: str,
    base: str,
    cpts: GeneratedCpts,
    handler_tokens: list[str],
    requests: list[uuid.UUID],
    slots: list[uuid.UUID],
    seconds: float,
    *,
    raw_around: bool,
) -> tuple[dict[str, Any], Tally, list[dict[str, Any]]]:
    """The bookings phase in `BOOKING_ROUNDS` rounds of `seconds / rounds`, each between two runs of
    pgbench's raw rate as long (`raw_around`): the VM's drift (pgbench alone moved by a quarter
    between runs a minute apart) falls on both sides of their ratio. Every run starts settled, the
    previous one's dead rows vacuumed, as phases do."""
    pairs = iter(contended_pairs(requests, slots, CONTENDED_SHARE))
    rounds: list[dict[str, Any]] = []
    raws: list[dict[str, Any]] = []
    answered = Tally()
    each = seconds / BOOKING_ROUNDS

    async def raw() -> None:
        if raw_around:
            raws.append(await raw_hold_release(url, cpts, round(each), clients=8))
            await settle(url)

    for index in range(BOOKING_ROUNDS):
        await raw()
        figures, tally = await bookings_under_contention(
            base, handler_tokens, requests=[], slots=[], seconds=each, concurrency=24, pairs=pairs,
            warmup=2.0 if index == 0 else 1.0,
        )  # fmt: skip
        await settle(url)
        rounds.append(figures)
        answered = Tally(answered.statuses + tally.statuses, [], answered.booked + tally.booked)
    await raw()
    statuses: Counter[int] = Counter()
    for r in rounds:
        statuses.update(r["statuses"])
    return (
        {
            **rounds[0],  # the load's settings
            # Counted over the rounds' measured seconds (`seconds / rounds` each).
            "confirmed_per_s": round(statuses[201] / seconds),
            "attempts_per_s": round(sum(statuses.values()) / seconds),
            "refused_409": statuses[409],
            "statuses": dict(statuses),
            "p50_ms": max(r["p50_ms"] for r in rounds),  # the slowest round's
            "p95_ms": max(r["p95_ms"] for r in rounds),
            "connections_per_worker": [r["connections_per_worker"] for r in rounds],
            "rounds": [r["confirmed_per_s"] for r in rounds],
        },
        answered,
        raws,
    )


async def open_loop(
    base: str,
    rate: float,
    seconds: float,
    call: Callable[[aiohttp.ClientSession, int], Awaitable[int]],
    warmup: float = 2.0,
) -> tuple[dict[str, Any], Tally]:
    """Send at a fixed rate whatever the answers do; latency counts from when each was due. The
    first `warmup` seconds run at the same rate but are not counted (connections opening)."""
    tally = Tally()
    warm = Tally()
    total = int(rate * (seconds + warmup))
    connector = aiohttp.TCPConnector(limit=400)
    async with aiohttp.ClientSession(
        base_url=base, connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as http:
        start = time.perf_counter() + 0.2

        async def one(i: int) -> None:
            due = start + i / rate
            counted = tally if i / rate >= warmup else warm
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                status = await call(http, i)
            except aiohttp.ClientError:
                counted.statuses[0] += 1  # no answer at all
                return
            counted.latencies.append(time.perf_counter() - due)
            counted.statuses[status] += 1

        await asyncio.gather(*(one(i) for i in range(total)))
    return (
        {
            "rate_per_s": rate,
            "requests": sum(tally.statuses.values()),
            "p50_ms": round(percentile(tally.latencies, 50) * 1000, 1),
            "p95_ms": round(percentile(tally.latencies, 95) * 1000, 1),
            "p99_ms": round(percentile(tally.latencies, 99) * 1000, 1),
            "errors": sum(n for s, n in (tally.statuses + warm.statuses).items() if s != 200),
            "statuses": dict(tally.statuses),
        },
        Tally(tally.statuses + warm.statuses),
    )


CEILING_ROUNDS = 4


async def ceiling(base: str, token: str, seconds: float) -> dict[str, Any]:
    """The most this stack answers on this machine for an authenticated request doing one small
    query (GET /v1/cpts/current): token check, principal lookup, transaction, JSON answer. No
    endpoint that writes can go faster. Beside it, the bare /healthz (no token, no database): the
    HTTP server's own limit. The two alternate in rounds (each a quarter of `seconds`, on connections
    opened anew), so that the machine's drift during the phase, and how the kernel spreads the
    connections over the workers, fall on both alike: measured one after the other, the ratio of the
    same code moved by a third between runs."""
    authenticated: list[int] = []
    bare: list[int] = []
    for _ in range(CEILING_ROUNDS):
        headers = {"Authorization": f"Bearer {token}"}
        authenticated.append(await full_speed(base, "/v1/cpts/current", headers, seconds / CEILING_ROUNDS))
        bare.append(await full_speed(base, "/healthz", {}, seconds / CEILING_ROUNDS))
    return {
        "requests_per_s": round(sum(authenticated) / CEILING_ROUNDS),
        "healthz_per_s": round(sum(bare) / CEILING_ROUNDS),
        "ratio_to_healthz": round(sum(authenticated) / sum(bare), 3),
        "rounds": [[a, b] for a, b in zip(authenticated, bare, strict=True)],
        "concurrency": 24,
    }


async def full_speed(
    base: str, path: str, headers: dict[str, str], seconds: float, concurrency: int = 24, warmup: float = 1.0
) -> int:
    """Requests per second answered 200 for `path` with `concurrency` clients at full speed."""
    answered = 0
    async with aiohttp.ClientSession(base_url=base, connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        measured_from = time.perf_counter() + warmup
        deadline = measured_from + seconds

        async def worker() -> None:
            nonlocal answered
            while time.perf_counter() < deadline:
                status = await _get(http, path, headers)
                if status == 200 and time.perf_counter() >= measured_from:
                    answered += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - measured_from
    return round(answered / elapsed)


async def _get(http: aiohttp.ClientSession, path: str, headers: dict[str, str], params: Any = None) -> int:
    async with http.get(path, headers=headers, params=params) as answer:
        await answer.read()
        return answer.status


async def invariants(url: str, cpts: GeneratedCpts, booked: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        doubles = await conn.fetchval(
            "SELECT count(*) FROM (SELECT slot_id FROM booking WHERE status IN ('held', 'booked') "
            "GROUP BY slot_id HAVING count(*) > 1) twice"
        )
        orphans = await conn.fetchval(
            "SELECT count(*) FROM slot s WHERE s.cpts_id = $1 AND s.status = 'booked' AND NOT EXISTS "
            "(SELECT 1 FROM booking b WHERE b.slot_id = s.id AND b.status = 'booked')",
            cpts.cpts_id,
        )
        lost = await conn.fetchval(
            "SELECT count(*) FROM unnest($1::uuid[]) AS answered(id) WHERE NOT EXISTS "
            "(SELECT 1 FROM orientation_event e WHERE e.booking_id = answered.id AND e.kind = 'booked')",
            [uuid.UUID(b) for b in booked],
        )
        outbox = await conn.fetchval(
            "SELECT count(*) FROM unnest($1::uuid[]) AS answered(id) WHERE NOT EXISTS "
            "(SELECT 1 FROM outbox_message m WHERE m.booking_id = answered.id)",
            [uuid.UUID(b) for b in booked],
        )
    finally:
        await conn.close()
    return {
        "slots_with_two_active_bookings": doubles,
        "booked_slots_without_booking": orphans,
        "answered_bookings_missing_from_the_log": lost,
        "answered_bookings_missing_from_the_outbox": outbox,
    }


PHASES = (
    "raw", "ceiling", "bookings", "suggestions", "search", "fhir", "publication", "report", "costs", "mix", "servers",
    "pull", "scale",
)  # fmt: skip
METRICS_TOKEN = "bench-metrics-token"  # noqa: S105 - the bench's own service, on 127.0.0.1
# The SAS's search: 25 practitioners over 72 h, 40 free slots each (the guide's test kit fails at 1 s).
FHIR_PRACTITIONERS, FHIR_SLOTS_EACH = 25, 40
WRITTEN = ("slot", "booking", "care_request", "orientation_event", "outbox_message", "audit_event")


async def settle(url: str) -> None:
    """Vacuum what the previous phase wrote and flush it to disk, so that each phase starts from the
    same state rather than meeting its predecessor's dead rows, the autovacuum they trigger or a
    checkpoint writing them out."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"VACUUM (ANALYZE) {', '.join(WRITTEN)}")
        # On a server where the bench's user may not checkpoint, the phases still run.
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


BOOKING_REQUESTS = 20_000  # more than the bookings phase books, even on a fast day


async def measure(
    url: str, base: str, cpts: GeneratedCpts, seconds: int, month: Month, phases: frozenset[str] = frozenset(PHASES)
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    if "raw" in phases:
        figures["raw_hold_release"] = await raw_hold_release(url, cpts, seconds, clients=8)
        progress("raw", figures["raw_hold_release"])
    keys = await tokens(base, cpts)
    pool = await open_requests(url, cpts, BOOKING_REQUESTS)
    await settle(url)
    requests, slots = pool[:BOOKING_REQUESTS], pool[BOOKING_REQUESTS:]
    booked, suggested, searched = Tally(), Tally(), Tally()
    if "ceiling" in phases:
        figures["ceiling"] = await ceiling(base, keys["handler"][0], seconds=min(seconds, 10))
        progress("ceiling", figures["ceiling"])
    if "bookings" in phases:
        figures["bookings"], booked, around = await bookings_in_rounds(
            url, base, cpts, keys["handler"], requests, slots, seconds, raw_around="raw" in phases
        )
        if around:
            figures["raw_around_bookings"] = around
            progress(
                "raw around the bookings' rounds", {"transactions_per_s": [r["transactions_per_s"] for r in around]}
            )
        progress("bookings", figures["bookings"])
    handler = {"Authorization": f"Bearer {keys['handler'][0]}"}
    waiting = requests[-2000:]  # still open: they were not reached by the booking phase

    async def suggest(http: aiohttp.ClientSession, i: int) -> int:
        return await _get(http, f"/v1/requests/{waiting[i % len(waiting)]}/suggestions", handler)

    async def search(http: aiohttp.ClientSession, i: int) -> int:
        params = {"profession": "10", "commune_insee": "44109" if i % 2 else "44143", "limit": "20"}
        return await _get(http, "/v1/slots/search", handler, params)

    if "suggestions" in phases:
        figures["suggestions"], suggested = await open_loop(base, 100, seconds, suggest)
        progress("suggestions", figures["suggestions"])
    if "search" in phases:
        figures["search"], searched = await open_loop(base, 100, seconds, search)
        progress("search", figures["search"])
    fhir: Tally = Tally()
    if "fhir" in phases:
        figures["fhir"], fhir = await sas_search(url, base, cpts, seconds)
        progress("fhir", figures["fhir"])
    if "publication" in phases:
        tenant = BenchTenant(str(cpts.cpts_id), keys["coordinator"][0], keys["handler"][0])
        tenant.practitioners = [{"id": str(m.id), "sites": [{"id": str(m.site_id)}]} for m in cpts.members]
        first_day = (datetime.now(UTC) + timedelta(days=20)).replace(hour=5, minute=0, second=0, microsecond=0)
        key = cpts.credentials["api_key"]
        publication: dict[str, Any] = {}
        for label, streams, numbers in (("one_publisher", 1, range(10)), ("two_publishers", 2, range(10, 20))):
            batches = [batch_items(tenant, b, 1000, first_day) for b in numbers]
            elapsed, latencies, outcomes = await publish_all(base, key, batches, streams)
            publication[label] = {
                "slots_per_s": round(10_000 / elapsed),
                "batch_p50_ms": round(percentile(latencies, 50) * 1000, 1),
                "outcomes": outcomes,
            }
        # The same 10 000 rows (30 days later) with the service's own bulk INSERT, straight over asyncpg.
        raw_elapsed = await raw_insert(url, tenant, [batch_items(tenant, b, 1000, first_day) for b in range(10)])
        publication["raw_sql_slots_per_s"] = round(10_000 / raw_elapsed)
        publication["one_publisher_to_raw_ratio"] = round(
            publication["one_publisher"]["slots_per_s"] / publication["raw_sql_slots_per_s"], 2
        )
        figures["publication"] = publication
        progress("publication", publication)
    if "report" in phases:
        coordinator = {"Authorization": f"Bearer {keys['coordinator'][0]}"}
        durations = []
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            for _ in range(3):
                started = time.perf_counter()
                answer = await http.get("/v1/reports/monthly", params={"month": str(month)}, headers=coordinator)
                answer.raise_for_status()
                durations.append(time.perf_counter() - started)
        figures["monthly_report_ms"] = round(sorted(durations)[1] * 1000)
    if "raw_hold_release" in figures and "bookings" in figures:
        figures["ratio_bookings_to_raw"] = round(figures["bookings"]["confirmed_per_s"] / raw_rate(figures), 3)
    # Before the phases that book most of the generated slots.
    if "costs" in phases:
        figures["costs"] = await costs(url, cpts)
        progress("costs", figures["costs"])
    if "mix" in phases:
        figures["mix"] = await bench_mix.mix(base, cpts, month, seconds)
        progress("mix", figures["mix"])
    servers_booked: list[str] = []
    if "servers" in phases:
        figures["servers"], servers_booked = await servers(url, cpts, seconds)
        progress("servers", figures["servers"])
    if "pull" in phases:
        figures["pull"] = await bench_pull.pull(url, base, cpts)
        progress("pull", figures["pull"])
    figures["invariants"] = await invariants(url, cpts, booked.booked + servers_booked)
    if "scale" in phases:  # last: it adds CPTS of 10^4 to 10^6 requests to the database
        figures["scale"] = await bench_scale.scale(url, base, month)
    conn = await asyncpg.connect(url)
    try:
        figures["postgresql"] = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    figures["server_errors"] = (
        booked.server_errors + suggested.server_errors + searched.server_errors + fhir.server_errors
    )
    return figures


def raw_rate(figures: dict[str, Any]) -> float:
    """What PostgreSQL does with the service's own hold SQL: the mean of the runs around the
    bookings' rounds (as long as each round; the machine drifts, pgbench alone moved by a fifth
    within minutes), else the run alone at the start."""
    runs = figures.get("raw_around_bookings") or [figures["raw_hold_release"]]
    rates: list[float] = [run["transactions_per_s"] for run in runs]
    return sum(rates) / len(rates)


def progress(phase: str, figures: dict[str, Any]) -> None:
    print(f"[bench] {phase}: {json.dumps(figures)}", file=sys.stderr, flush=True)


def table(figures: dict[str, Any]) -> str:
    bookings, publication = figures["bookings"], figures["publication"]
    rows: list[tuple[str, str, str, bool | None]] = [
        (
            f"raw hold+release (pgbench, 8 clients), {figures['seconds_per_phase']} s alone",
            f"{figures['raw_hold_release']['transactions_per_s']} tx/s",
            "",
            None,
        ),
        (
            "  around the bookings' rounds (the ratio's)",
            " / ".join(str(run["transactions_per_s"]) for run in figures["raw_around_bookings"]) + " tx/s",
            "",
            None,
        ),
        (
            "ceiling: authenticated one-query GET",
            f"{figures['ceiling']['requests_per_s']} req/s",
            "",
            None,
        ),
        (
            "  / bare /healthz (" + f"{figures['ceiling']['healthz_per_s']} req/s)",
            f"{figures['ceiling']['ratio_to_healthz']:.1%}",
            f">= {TARGETS['ceiling_to_healthz_ratio']:.0%}",
            figures["ceiling"]["ratio_to_healthz"] >= TARGETS["ceiling_to_healthz_ratio"],
        ),
        (
            "confirmed bookings, HTTP, 2 patients per slot",
            f"{bookings['confirmed_per_s']} /s",
            f">= {TARGETS['bookings_per_s']}",
            bookings["confirmed_per_s"] >= TARGETS["bookings_per_s"],
        ),
        ("  answers (201 + 409) / latency p50, p95", _booking_answers(bookings), "", None),
        ("  confirmed per round", " / ".join(f"{r} /s" for r in bookings["rounds"]), "", None),
        (
            "  the handlers' connections per worker, per round",
            ", ".join(" / ".join(map(str, spread)) for spread in bookings["connections_per_worker"]),
            "",
            None,
        ),
        (
            "confirmed bookings / raw",
            f"{figures['ratio_bookings_to_raw']:.1%}",
            f">= {TARGETS['booking_to_raw_ratio']:.0%}",
            figures["ratio_bookings_to_raw"] >= TARGETS["booking_to_raw_ratio"],
        ),
        (
            "suggestions at 100/s p50/p95/p99",
            _spread(figures["suggestions"]),
            f"p95 < {TARGETS['suggestions_p95_ms']} ms",
            figures["suggestions"]["p95_ms"] < TARGETS["suggestions_p95_ms"],
        ),
        ("search at 100/s p50/p95/p99", _spread(figures["search"]), "", None),
        (
            f"SAS FHIR search ({FHIR_PRACTITIONERS} x {FHIR_SLOTS_EACH} slots, 72 h) p50/p95/p99",
            _spread(figures["fhir"]),
            f"p95 <= {TARGETS['fhir_p95_ms']} ms",
            figures["fhir"]["p95_ms"] <= TARGETS["fhir_p95_ms"],
        ),
        ("  FHIR answer: slots / resources / kB", _fhir_size(figures["fhir"]), "", None),
        (
            "batch publication, 2 publishers at once",
            f"{publication['two_publishers']['slots_per_s']} slots/s",
            f">= {TARGETS['publication_slots_per_s']}",
            publication["two_publishers"]["slots_per_s"] >= TARGETS["publication_slots_per_s"],
        ),
        (
            "  1 publisher / raw SQL bulk insert",
            f"{publication['one_publisher']['slots_per_s']} / {publication['raw_sql_slots_per_s']} slots/s",
            "",
            None,
        ),
        ("monthly report (generated month)", f"{figures['monthly_report_ms']} ms", "", None),
        *bench_mix.rows(figures["mix"]),
        *_server_rows(figures["servers"], raw_rate(figures)),
        *_cost_rows(figures["costs"]),
        *bench_pull.rows(figures["pull"]),
        *bench_scale.rows(figures["scale"]),
        ("server errors (5xx)", str(figures["server_errors"]), "0", figures["server_errors"] == 0),
        *((f"invariant: {k.replace('_', ' ')}", str(v), "0", v == 0) for k, v in figures["invariants"].items()),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure'.ljust(width)}  {'figure':>30}  {'target':<16}", "-" * (width + 56)]
    for name, value, target, met in rows:
        verdict = "" if met is None else ("ok" if met else "MISSED")
        lines.append(f"{name.ljust(width)}  {value:>30}  {target:<16}  {verdict}")
    return "\n".join(lines)


def _server_rows(servers: dict[str, Any], raw: float) -> list[tuple[str, str, str, bool | None]]:
    """Each server side by side: its ceiling beside its /healthz, its bookings beside the raw rate."""
    rows: list[tuple[str, str, str, bool | None]] = []
    for label, measured in servers.items():
        if "error" in measured:
            rows.append((f"{label}", measured["error"], "", False))
            continue
        ceiling, bookings = measured["ceiling"], measured["bookings"]
        ratio = bookings["confirmed_per_s"] / raw
        one_worker = label == "uvicorn x1"
        limit = TARGETS["one_worker_booking_to_raw_ratio"]
        rows += [
            (
                f"{label}: one-query GET / bare /healthz",
                f"{ceiling['requests_per_s']} / {ceiling['healthz_per_s']} req/s ({ceiling['ratio_to_healthz']:.1%})",
                "",
                None,
            ),
            (
                f"{label}: bookings (16 handlers) / raw",
                f"{bookings['confirmed_per_s']} /s ({ratio:.1%}), p95 {bookings['p95_ms']} ms",
                f">= {limit:.0%}" if one_worker else "",
                ratio >= limit if one_worker else None,
            ),
        ]
    return rows


def _cost_rows(costs: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """Round trips and worker CPU per request, one worker answering one request at a time."""
    rows: list[tuple[str, str, str, bool | None]] = []
    for kind, cost in costs.items():
        figure = f"{cost['round_trips']:g} rt, {cost['cpu_ms']:.1f} ms CPU"
        if kind == "booking":
            limit = TARGETS["booking_round_trips"]
            rows.append((f"per request: {kind}", figure, f"<= {limit} rt", cost["round_trips"] <= limit))
        else:
            rows.append((f"per request: {kind}", figure, "", None))
    return rows


def _fhir_size(figures: dict[str, Any]) -> str:
    return f"{figures['slots']} / {figures['resources']} / {figures['kilobytes']}"


@dataclass(frozen=True)
class SasSearch:
    path: str  # /fhir/Slot?... as the aggregator sends it
    headers: dict[str, str]


async def prepare_sas(url: str, cpts: GeneratedCpts) -> SasSearch:
    """The CPTS joins the SAS; 25 practitioners get 40 free SNP slots each over three days past the
    generated ones (once); a SAS key (each time)."""
    key = new_api_key(SAS_KEY_PREFIX)
    members = [m for m in cpts.members if m.profession == "10"][:FHIR_PRACTITIONERS]
    first = (datetime.now(UTC) + timedelta(days=16)).replace(hour=7, minute=0, second=0, microsecond=0)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE cpts SET sas_enabled = true, finess = '440000001' WHERE id = $1", cpts.cpts_id)
        await conn.execute(
            "INSERT INTO sas_client (id, name, key_prefix, key_digest, created_at) VALUES ($1, 'bench', $2, $3, now())",
            uuid.uuid4(),
            key.prefix,
            key.digest,
        )
        published = await conn.fetchval(
            "SELECT count(*) FROM slot WHERE cpts_id = $1 AND external_id LIKE 'sas-%'", cpts.cpts_id
        )
        for member in members if not published else []:
            starts = [first + timedelta(days=i // 14, minutes=30 * (i % 14)) for i in range(FHIR_SLOTS_EACH)]
            await conn.executemany(
                """INSERT INTO slot (id, cpts_id, publisher_id, client_id, external_id, practitioner_id, site_id,
                       start_at, end_at, modality, visibility, specialty, home_visit_communes, status, version,
                       published_at, updated_at)
                   VALUES ($1, $2, $3, $3, $4, $5, $6, $7::timestamptz, $7::timestamptz + interval '20 minutes',
                           'AMB', '{CPTS,SNP}', $8, '{}',
                           'free', 1, now(), now())""",
                [
                    (
                        uuid.uuid4(),
                        cpts.cpts_id,
                        cpts.client_id,
                        f"sas-{member.id}-{i}",
                        member.id,
                        member.site_id,
                        start,
                        member.specialty,
                    )
                    for i, start in enumerate(starts)
                ],
            )
        ids = ",".join(
            await conn.fetchval("SELECT array_agg(idnps) FROM practitioner WHERE id = ANY($1)", [m.id for m in members])
        )
    finally:
        await conn.close()
    paris = ZoneInfo("Europe/Paris")
    low, high = first.astimezone(paris) - timedelta(hours=1), first.astimezone(paris) + timedelta(hours=71)
    query = (
        "_include=Slot:schedule&_include:iterate=Schedule:actor&_include=Slot:service-type-reference"
        f"&_include:iterate=HealthcareService:organization&start=ge{low:%Y-%m-%dT%H:%M:%S}"
        f"&start=le{high:%Y-%m-%dT%H:%M:%S}&status=free"
        f"&schedule.actor:Practitioner.identifier=urn:oid:1.2.250.1.71.4.2.1|{ids}"
    )
    return SasSearch(f"/fhir/Slot?{query}", {"Authorization": f"Bearer {key.key}"})


async def sas_search(url: str, base: str, cpts: GeneratedCpts, seconds: int) -> tuple[dict[str, Any], Tally]:
    """The SAS searches the 25 practitioners with every include, at 10 calls a second (the guide
    expects about 3 000 an hour)."""
    sas = await prepare_sas(url, cpts)
    await settle(url)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        sample = (await http.get(sas.path, headers=sas.headers)).raise_for_status()
    bundle = sample.json()

    async def call(http: aiohttp.ClientSession, i: int) -> int:
        return await _get(http, sas.path, sas.headers)

    figures, tally = await open_loop(base, 10, seconds, call)
    figures |= {
        "slots": bundle["total"],
        "resources": len(bundle.get("entry", [])),
        "kilobytes": round(len(sample.content) / 1024),
    }
    return figures, tally


async def round_trips(http: httpx.AsyncClient) -> float:
    """The single worker's `snp_db_round_trips_total`, all kinds."""
    answer = (await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).raise_for_status()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in answer.text.splitlines()
        if line.startswith("snp_db_round_trips_total{")
    )


def cpu_seconds(port: int) -> float:
    """User + system CPU of the process serving `port` and of its children (from /proc), but for the
    reports' process: its start-up (imports) fell into the first phase measured."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu seconds)
    serving: set[int] = set()
    reports: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
        if b"serve" in command and str(port).encode() in command:
            serving.add(int(entry.name))
        if b"serve-reports" in command:
            reports.add(int(entry.name))
    return sum(
        cpu for pid, (parent, cpu) in stats.items() if (pid in serving or parent in serving) and pid not in reports
    )


async def costs(url: str, cpts: GeneratedCpts, count: int = 200) -> dict[str, Any]:
    """What one request of each kind costs, measured on a service of one worker answering one
    request at a time: round trips to PostgreSQL (counted in the driver, `/metrics`) and the
    worker's CPU milliseconds (from /proc), each averaged over `count` requests after a warm-up."""
    pool = await open_requests(url, cpts, count * 3)
    requests, slots = pool[: count * 3], pool[count * 3 :]
    sas = await prepare_sas(url, cpts)
    await settle(url)
    results: dict[str, Any] = {}
    with live_service(url, workers=1, SNP_RELAY_ENABLED="false", SNP_METRICS_TOKEN=METRICS_TOKEN) as base:
        port = int(base.rsplit(":", 1)[1])
        handler = {"Authorization": f"Bearer {(await tokens(base, cpts))['handler'][0]}"}
        rng, communes = random.Random(16), credentials_document(cpts, None)["communes"]
        software = {"Authorization": f"Bearer {cpts.credentials['api_key']}"}
        booking_pairs = iter(zip(requests[: count + 20], slots, strict=False))
        waiting = requests[count + 20 :]
        # After the suggestions (which read `waiting`): hold then confirm, as a handler does.
        confirming_pairs = iter(zip(waiting, slots[count + 20 :], strict=False))
        kinds: dict[str, tuple[int, Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]]] = {
            "healthz": (count, lambda http, i: http.get("/healthz")),
            "ceiling": (count, lambda http, i: http.get("/v1/cpts/current", headers=handler)),
            "booking": (count, lambda http, i: _book_next(http, booking_pairs, handler)),
            "suggestions": (
                count,
                lambda http, i: http.get(f"/v1/requests/{waiting[i % len(waiting)]}/suggestions", headers=handler),
            ),
            "search": (
                count,
                lambda http, i: http.get(
                    "/v1/slots/search", params={"profession": "10", "commune_insee": "44109", "limit": "20"},
                    headers=handler,
                ),
            ),
            "queue": (count, lambda http, i: http.get("/v1/requests", params={"limit": "20"}, headers=handler)),
            "new request": (count, lambda http, i: _new_request(http, rng, communes, handler)),
            "hold + confirm": (count, lambda http, i: _hold_and_confirm(http, confirming_pairs, handler)),
            "fhir": (count // 4, lambda http, i: http.get(sas.path, headers=sas.headers)),
            # The practice software's feed, a page of the hundred events the bookings above made.
            "feed": (count // 4, lambda http, i: http.get("/v1/bookings/feed", params=FEED_PAGE, headers=software)),
        }  # fmt: skip
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for kind, (times, call) in kinds.items():
                for i in range(10):  # warm: statements prepared, caches filled
                    (await call(http, i)).raise_for_status()
                trips, cpu = await round_trips(http), cpu_seconds(port)
                statuses: Counter[int] = Counter()
                for i in range(times):
                    answer = await call(http, 10 + i)
                    if answer.status_code >= 500 or answer.status_code in (401, 403, 404, 422):
                        raise RuntimeError(f"{kind}: {answer.status_code} {answer.text[:200]}")
                    statuses[answer.status_code] += 1  # a booking may meet a slot taken (409)
                # The /metrics read itself does no round trip; its CPU is one small request in `times`.
                results[kind] = {
                    "round_trips": round((await round_trips(http) - trips) / times, 2),
                    "cpu_ms": round((cpu_seconds(port) - cpu) * 1000 / times, 2),
                    "requests": times,
                    "statuses": dict(statuses),
                }
    return results


FEED_PAGE = {"limit": "100"}
SERVERS = (("uvicorn", 1), ("granian", 1), ("granian", 2))
SERVER_REQUESTS = 8000  # each server's bookings: more than 8 s at full speed use


async def servers(url: str, cpts: GeneratedCpts, seconds: int) -> tuple[dict[str, Any], list[str]]:
    """The same app under other servers and worker counts, side by side: uvicorn with one worker
    (the configuration of the issue's probe: 16 handlers booking), granian with one and two. The
    ceiling and bookings phases measure uvicorn with the bench's workers."""
    results: dict[str, Any] = {}
    booked: list[str] = []
    for server, workers in SERVERS:
        pool = await open_requests(url, cpts, SERVER_REQUESTS)
        if len(pool) <= SERVER_REQUESTS:  # a figure of 0 bookings would say nothing of the server
            results[f"{server} x{workers}"] = {"error": "no free slot left to book"}
            continue
        await settle(url)
        start = live_service if server == "uvicorn" else live_granian
        try:
            with start(url, workers=workers, SNP_RELAY_ENABLED="false", SNP_LOG_LEVEL="WARNING") as base:
                keys = await tokens(base, cpts)
                run = min(seconds, 6)  # short: each server books from the same generated slots
                bookings, tally = await bookings_under_contention(
                    base, keys["handler"], pool[:SERVER_REQUESTS], pool[SERVER_REQUESTS:], run, concurrency=16
                )
                ceiling_figures = await ceiling(base, keys["handler"][0], run)
        except RuntimeError as exc:  # a server that did not start is a figure, not the end of the run
            results[f"{server} x{workers}"] = {"error": str(exc)}
            continue
        results[f"{server} x{workers}"] = {"ceiling": ceiling_figures, "bookings": bookings}
        booked += tally.booked
    return results, booked


async def _hold_and_confirm(
    http: httpx.AsyncClient, pairs: Iterator[tuple[uuid.UUID, uuid.UUID]], headers: dict[str, str]
) -> httpx.Response:
    """A hold and its confirmation, each with its own key: the answer of the confirmation (or of a
    hold refused because the slot went to someone else, a 409)."""
    request_id, slot_id = next(pairs)
    keyed = {**headers, "Idempotency-Key": f"bench-hold-{request_id}"}
    held = await http.post(f"/v1/requests/{request_id}/hold", json={"slot_id": str(slot_id)}, headers=keyed)
    if held.status_code != 201:
        return held
    keyed = {**headers, "Idempotency-Key": f"bench-confirm-{request_id}"}
    return await http.post(f"/v1/bookings/{held.json()['booking_id']}/confirm", headers=keyed)


async def _new_request(
    http: httpx.AsyncClient, rng: random.Random, communes: list[str], headers: dict[str, str]
) -> httpx.Response:
    """A call taken as the handlers' scenario takes it (`scenarios.request_body`), with a key."""
    keyed = {**headers, **scenarios.idempotency_key()}
    return await http.post("/v1/requests", json=scenarios.request_body(rng, communes), headers=keyed)


async def _book_next(
    http: httpx.AsyncClient, pairs: Iterator[tuple[uuid.UUID, uuid.UUID]], headers: dict[str, str]
) -> httpx.Response:
    # As a call-centre client books: with an idempotency key, so that a retry cannot book twice.
    request_id, slot_id = next(pairs)
    keyed = {**headers, "Idempotency-Key": f"bench-{request_id}"}
    return await http.post(f"/v1/requests/{request_id}/book", json={"slot_id": str(slot_id)}, headers=keyed)


def _booking_answers(bookings: dict[str, Any]) -> str:
    return f"{bookings['attempts_per_s']} /s, {bookings['p50_ms']} / {bookings['p95_ms']} ms"


def _spread(figures: dict[str, Any]) -> str:
    return f"{figures['p50_ms']} / {figures['p95_ms']} / {figures['p99_ms']} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("SNP_WORKERS", "2")))
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated phases among {', '.join(PHASES)}")
    args = parser.parse_args()
    phases = frozenset(args.only.split(","))
    started = time.perf_counter()
    month = Month.of(datetime.now(UTC).date()).plus(-1)
    with bench_database() as (_, url):
        migrate.upgrade(url)
        # Enough free slots for every phase that books (the bookings at full speed, then three
        # servers side by side): 1 200 a day ran out before the servers phase's last server.
        cpts = asyncio.run(generate(url, seed=7, history=month, future_days=14, future_slots_per_day=4000))
        with live_service(url, workers=args.workers, SNP_RELAY_ENABLED="false", SNP_LOG_LEVEL="WARNING") as base:
            figures = asyncio.run(measure(url, base, cpts, args.seconds, month, phases))
    figures.update(
        cores=os.cpu_count(),
        server_workers=args.workers,
        seconds_per_phase=args.seconds,
        total_seconds=round(time.perf_counter() - started),
        at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if phases != frozenset(PHASES):
        print(json.dumps(figures, indent=2))
        return
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    target.write_text(json.dumps(figures, indent=2))
    print(table(figures))
    print(
        f"\n{os.cpu_count()} cores shared by PostgreSQL {figures['postgresql']}, {args.workers} server workers and "
        f"the load; {figures['total_seconds']} s; figures in {target}"
    )


if __name__ == "__main__":
    main()
