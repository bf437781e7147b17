"""Reporting benchmark: the monthly report of a large CPTS (10 000 requests and about 20 000
slots in the month) and the activity export of a month of 1 000 000 requests, through a live
server, with the server's peak memory.

    .venv/bin/python -m load_tests.bench_reports [--big 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import time
from pathlib import Path
from statistics import median
from typing import Any

import httpx

from load_tests.generator import PASSWORD, generate
from load_tests.harness import bench_database, live_service
from service import migrate
from service.reporting.periods import Month

MONTH = Month(2026, 10)


def peak_rss_mib(pid: int) -> float:
    """The process's (and its children's) peak resident memory so far."""
    total = 0
    for candidate in [pid, *_children(pid)]:
        status = Path(f"/proc/{candidate}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
    return round(total / 1024, 1)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)  # noqa: S603, S607
    return [int(p) for p in out.stdout.split()]


def token(base: str, email: str) -> str:
    answer = httpx.post(f"{base}/v1/auth/token", data={"username": email, "password": PASSWORD})
    answer.raise_for_status()
    value: str = answer.json()["access_token"]
    return value


def timed_get(http: httpx.Client, path: str, params: dict[str, str], runs: int) -> tuple[float, bytes]:
    durations, body = [], b""
    for _ in range(runs):
        started = time.perf_counter()
        answer = http.get(path, params=params)
        answer.raise_for_status()
        body = answer.content
        durations.append(time.perf_counter() - started)
    return round(median(durations) * 1000, 1), body


def stream_export(http: httpx.Client, params: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    size = lines = 0
    first_byte = None
    with http.stream("GET", "/v1/reports/activity", params=params) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_bytes():
            if first_byte is None:
                first_byte = time.perf_counter() - started
            size += len(chunk)
            lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    return {
        "rows": lines - 1,
        "megabytes": round(size / 1e6, 1),
        "seconds": round(elapsed, 1),
        "rows_per_s": round((lines - 1) / elapsed),
        "first_byte_ms": round((first_byte or 0) * 1000),
    }


def run(big: int, runs: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with bench_database() as (_, url):
        migrate.upgrade(url)
        started = time.perf_counter()
        large = asyncio.run(generate(url, seed=11, name="CPTS large", history=MONTH, future_days=0))
        huge = asyncio.run(
            generate(
                url,
                seed=12,
                name="CPTS huge",
                practitioners=200,
                history=MONTH,
                history_requests=big,
                history_slots=100_000,
                future_days=0,
            )
        )
        figures["generation_seconds"] = round(time.perf_counter() - started, 1)
        with live_service(url, workers=1) as base:
            pid = _server_pid(base)
            params = {"month": str(MONTH)}
            for label, cpts in (("large", large), ("huge", huge)):
                headers = {"Authorization": f"Bearer {token(base, cpts.credentials['coordinator'][0])}"}
                with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
                    if label == "large":
                        ms, body = timed_get(http, "/v1/reports/monthly", params, runs)
                        report = json.loads(body)
                        figures["monthly_report"] = {
                            "requests": report["requests_total"],
                            "slots": report["slots_published"]["count"],
                            "median_ms": ms,
                            "xlsx_median_ms": timed_get(
                                http, "/v1/reports/monthly", {**params, "format": "xlsx"}, runs
                            )[0],
                        }
                        figures["compensation_ms"] = timed_get(http, "/v1/reports/compensation", params, runs)[0]
                        figures["contract_year_ms"] = timed_get(
                            http, "/v1/reports/contract-year", {"start": "2026-01-01"}, 1
                        )[0]
                        figures["activity_export_large"] = stream_export(http, {**params, "format": "csv"})
                        figures["server_peak_rss_mib_before_big_export"] = peak_rss_mib(pid)
                    else:
                        figures["activity_export_huge"] = stream_export(http, {**params, "format": "csv"})
                        figures["server_peak_rss_mib_after_big_export"] = peak_rss_mib(pid)
    return figures


def _server_pid(base: str) -> int:
    port = base.rsplit(":", 1)[1]
    out = subprocess.run(["pgrep", "-f", f"snp serve --port {port}"], capture_output=True, text=True, check=True)  # noqa: S603, S607
    return int(out.stdout.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--big", type=int, default=1_000_000, help="requests in the month of the big export")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.big, args.runs), indent=2))


if __name__ == "__main__":
    main()
