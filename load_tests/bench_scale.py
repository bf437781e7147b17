"""How cost grows with the data: the benchmark's `scale` phase.

For each size N (10 000, 100 000, 1 000 000 by default) a CPTS of its own is generated in the same
database (so the database holds ever more CPTS): N requests in its last month with their bookings
and events, about N slots in that month and N free slots over the next 14 days (with N / 400
practitioners, 200 at least). Then, for that CPTS, one
request at a time: suggestions and the slot search (latency), the SAS's FHIR search for 25
practitioners, the monthly report and the activity export (its first byte and its whole).
Growth ratios are each figure over the smallest size's.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from load_tests.generator import generate
from load_tests.harness import percentile
from service.reporting.periods import Month

SIZES = (10_000, 100_000, 1_000_000)
SAMPLES = 40  # sequential calls per latency figure


async def scale(url: str, base: str, month: Month, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    steps = []
    for size in sizes:
        step = await _one_size(url, base, month, size)
        steps.append(step)
        print(f"[bench] scale {size}: {step}", file=sys.stderr, flush=True)
    return {"steps": steps, "growth": _growth(steps)}


async def _one_size(url: str, base: str, month: Month, size: int) -> dict[str, Any]:
    from load_tests.bench import open_requests, prepare_sas, settle, tokens  # bench imports this module

    started = time.perf_counter()
    cpts = await generate(
        url,
        seed=size,
        name=f"CPTS scale {size}",
        # Enough practitioners for N slots a month and N in the coming fortnight (a practitioner's
        # day holds about 35 slots).
        practitioners=max(200, size // 400),
        history=month,
        history_requests=size,
        history_slots=size,
        future_days=14,
        future_slots_per_day=size // 14,
    )
    generated_s = round(time.perf_counter() - started, 1)
    waiting = (await open_requests(url, cpts, SAMPLES))[:SAMPLES]
    sas = await prepare_sas(url, cpts)
    await settle(url)
    keys = await tokens(base, cpts)
    handler = {"Authorization": f"Bearer {keys['handler'][0]}"}
    coordinator = {"Authorization": f"Bearer {keys['coordinator'][0]}"}
    search = {"profession": "10", "commune_insee": "44109", "limit": "20"}
    step: dict[str, Any] = {"size": size, "generated_s": generated_s, **await _totals(url)}
    async with httpx.AsyncClient(base_url=base, timeout=600) as http:

        def suggestions(i: int) -> Awaitable[httpx.Response]:
            return http.get(f"/v1/requests/{waiting[i % SAMPLES]}/suggestions", headers=handler)

        step["suggestions_ms"] = await _latency(suggestions)
        step["search_ms"] = await _latency(lambda i: http.get("/v1/slots/search", params=search, headers=handler))
        step["fhir_ms"] = await _latency(lambda i: http.get(sas.path, headers=sas.headers), samples=10)
        params = {"month": str(month)}
        step["monthly_report_ms"] = await _once_ms(http, "/v1/reports/monthly", params, coordinator)
        step["export"] = await _export(http, params, coordinator)
    return step


async def _totals(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM slot) AS slots, (SELECT count(*) FROM care_request) AS requests, "
            "(SELECT count(*) FROM cpts) AS cpts"
        )
    finally:
        await conn.close()
    return {"database_slots": row["slots"], "database_requests": row["requests"], "database_cpts": row["cpts"]}


async def _latency(call: Callable[[int], Awaitable[httpx.Response]], samples: int = SAMPLES) -> dict[str, float]:
    for i in range(3):  # warm: statements prepared
        (await call(i)).raise_for_status()
    durations = []
    for i in range(samples):
        started = time.perf_counter()
        (await call(i)).raise_for_status()
        durations.append(time.perf_counter() - started)
    return {"p50": round(percentile(durations, 50) * 1000, 1), "p95": round(percentile(durations, 95) * 1000, 1)}


async def _once_ms(http: httpx.AsyncClient, path: str, params: dict[str, str], headers: dict[str, str]) -> float:
    durations = []
    for _ in range(2):
        started = time.perf_counter()
        (await http.get(path, params=params, headers=headers)).raise_for_status()
        durations.append(time.perf_counter() - started)
    return round(min(durations) * 1000)


async def _export(http: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    first_byte: float | None = None
    lines = 0
    async with http.stream(
        "GET", "/v1/reports/activity", params={**params, "format": "csv"}, headers=headers
    ) as answer:
        answer.raise_for_status()
        async for chunk in answer.aiter_bytes():
            if first_byte is None:
                first_byte = time.perf_counter() - started
            lines += chunk.count(b"\n")
    return {
        "first_byte_ms": round((first_byte or 0) * 1000),
        "total_s": round(time.perf_counter() - started, 1),
        "lines": lines,
    }


def _growth(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure of each size over the smallest size's (1.0: flat; the size ratio: linear)."""
    first = steps[0]

    def ratio(value: float, base: float) -> float:
        return round(value / base, 2) if base else 0.0

    return {
        str(step["size"]): {
            "suggestions_p50": ratio(step["suggestions_ms"]["p50"], first["suggestions_ms"]["p50"]),
            "search_p50": ratio(step["search_ms"]["p50"], first["search_ms"]["p50"]),
            "fhir_p50": ratio(step["fhir_ms"]["p50"], first["fhir_ms"]["p50"]),
            "monthly_report": ratio(step["monthly_report_ms"], first["monthly_report_ms"]),
            "export_first_byte": ratio(step["export"]["first_byte_ms"], first["export"]["first_byte_ms"]),
            "export_total": ratio(step["export"]["total_s"], first["export"]["total_s"]),
        }
        for step in steps
    }


def rows(figures: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """The scale phase's lines of the benchmark's table."""
    out: list[tuple[str, str, str, bool | None]] = []
    for step in figures["steps"]:
        size = f"{step['size']:,}".replace(",", " ")
        export = step["export"]
        latency = f"{step['suggestions_ms']['p50']} / {step['search_ms']['p50']} ms"
        fhir = step["fhir_ms"]["p50"]
        out += [
            (f"scale {size}: suggestions / search p50", latency, "", None),
            (f"scale {size}: SAS search (25 practitioners) p50", f"{fhir} ms", "< 1 s", fhir < 1000),
            (f"scale {size}: monthly report", f"{step['monthly_report_ms']} ms", "", None),
            (
                f"scale {size}: activity export first byte / whole",
                f"{export['first_byte_ms']} ms / {export['total_s']} s",
                "first byte < 1 s",
                export["first_byte_ms"] < 1000,
            ),
        ]
    return out


def main() -> None:
    """The scale phase alone: `python -m load_tests.bench_scale [--sizes 10000,100000]`."""
    import argparse
    import json

    from load_tests.harness import bench_database, live_service
    from service import migrate

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    month = Month.of(datetime.now(UTC).date()).plus(-1)
    with bench_database() as (_, url):
        migrate.upgrade(url)
        with live_service(url, workers=args.workers, SNP_RELAY_ENABLED="false", SNP_LOG_LEVEL="WARNING") as base:
            figures = asyncio.run(scale(url, base, month, sizes))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
