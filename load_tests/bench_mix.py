"""The benchmark's `mix` phase: the locust scenarios (`locustfile.py`: call handlers, practice
software, coordinators, each acting at Poisson arrival times, an open model) against the bench's
service at about 100 requests a second, and the latency of the handlers' actions.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from load_tests.generator import GeneratedCpts, credentials_document
from service.reporting.periods import Month

# About 0.8 request a second per person of the scenarios' mix (10 handlers, 3 software, 1
# coordinator in 14): 130 people make about 100 requests a second.
USERS = int(os.environ.get("SNP_MIX_USERS", "130"))
# The handlers' actions and what each is called in locust's figures.
HANDLER_ACTIONS = {
    "suggestions": "GET /v1/requests/[id]/suggestions",
    "hold": "POST /v1/requests/[id]/hold",
    "book (confirm)": "POST /v1/bookings/[id]/confirm",
    "queue": "GET /v1/requests (queue)",
    "new request": "POST /v1/requests",
}
TARGET_P95_MS = 50
# Locust starts everyone within five seconds: 130 logins and everyone's first activities at once,
# a burst a shift meets once, at its start. The figures count from when everyone has started, over
# a window of their own, at least this long.
MEASURED_SECONDS = 30


async def mix(base: str, cpts: GeneratedCpts, month: Month, seconds: int, users: int = USERS) -> dict[str, Any]:
    return await asyncio.to_thread(_run, base, cpts, month, seconds, users)


def _run(base: str, cpts: GeneratedCpts, month: Month, seconds: int, users: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        credentials = Path(folder) / "credentials.json"
        credentials.write_text(json.dumps(credentials_document(cpts, month)))
        prefix = Path(folder) / "mix"
        rate = max(1, users // 5)
        starting = -(-users // rate)  # seconds until everyone has started (and logged in)
        measured = max(seconds, MEASURED_SECONDS)
        command = [
            str(Path(sys.executable).parent / "locust"),
            "-f", str(Path(__file__).parent / "locustfile.py"),
            "--headless", "-u", str(users), "-r", str(rate), "--reset-stats",
            "-t", f"{starting + measured}s",
            "--host", base, "--only-summary", "--csv", str(prefix), "--loglevel", "WARNING",
        ]  # fmt: skip
        environment = {**os.environ, "SNP_LOAD_CREDENTIALS": str(credentials)}
        subprocess.run(command, env=environment, check=False, capture_output=True, timeout=starting + measured + 120)  # noqa: S603
        with (prefix.parent / "mix_stats.csv").open() as handle:
            stats = {row["Name"]: row for row in csv.DictReader(handle)}
    total = stats["Aggregated"]
    figures: dict[str, Any] = {
        "users": users,
        "requests_per_s": round(float(total["Requests/s"]), 1),
        "failures": int(total["Failure Count"]),
        "actions": {},
        # Every row of locust's summary (requests and the DUE activities), for the JSON.
        "all": {
            f"{row['Type']} {name}": [int(row["Request Count"]), float(row["50%"]), float(row["95%"])]
            for name, row in stats.items()
            if name != "Aggregated"
        },
    }
    for action, name in HANDLER_ACTIONS.items():
        row = stats.get(name)
        if row is None:
            continue
        figures["actions"][action] = {
            "count": int(row["Request Count"]),
            "p50_ms": float(row["50%"]),
            "p95_ms": float(row["95%"]),
            "p99_ms": float(row["99%"]),
        }
    return figures


def rows(figures: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    out: list[tuple[str, str, str, bool | None]] = [
        (
            f"locust mix, {figures['users']} people (open model)",
            f"{figures['requests_per_s']} req/s, {figures['failures']} failures",
            "~100 req/s",
            None,
        )
    ]
    for action, values in figures["actions"].items():
        out.append(
            (
                f"  {action} p50/p95/p99",
                f"{values['p50_ms']:.0f} / {values['p95_ms']:.0f} / {values['p99_ms']:.0f} ms",
                f"p95 <= {TARGET_P95_MS} ms",
                values["p95_ms"] <= TARGET_P95_MS if action != "new request" else None,
            )
        )
    return out
