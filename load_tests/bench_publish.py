"""Batch publication benchmark: 1000-slot batches through the HTTP API, against a raw SQL bulk
insert of the same rows on the same database.

    .venv/bin/python -m load_tests.bench_publish [--batches 20] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from load_tests.harness import BenchTenant, bench_database, bench_tenant, live_service, percentile


def practitioners_body(n: int) -> list[dict[str, Any]]:
    import random

    from service.demo import rpps_with_key

    rng = random.Random(3)
    return [
        {
            "rpps": rpps_with_key(rng),
            "family_name": f"Bench{i}",
            "given_name": "Test",
            "profession": "10",
            "specialty": "SM54",
            "sites": [{"name": "Cabinet", "commune_insee": "44109", "latitude": 47.2, "longitude": -1.55}],
        }
        for i in range(n)
    ]


def batch_items(tenant: BenchTenant, batch: int, size: int, first_day: datetime) -> list[dict[str, Any]]:
    """`size` slots of 15 minutes, spread over the practitioners, never overlapping."""
    items = []
    per_practitioner = size // len(tenant.practitioners) + 1
    for i in range(size):
        practitioner = tenant.practitioners[i % len(tenant.practitioners)]
        rank = batch * per_practitioner + i // len(tenant.practitioners)
        start = first_day + timedelta(minutes=15 * rank)
        items.append(
            {
                "external_id": f"b{batch}-{i}",
                "practitioner_id": practitioner["id"],
                "site_id": practitioner["sites"][0]["id"],
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=15)).isoformat(),
            }
        )
    return items


async def publish_all(
    base: str, api_key: str, batches: list[list[dict[str, Any]]], concurrency: int
) -> tuple[float, list[float], dict[str, int]]:
    """Send the batches with `concurrency` publishers. Bodies are encoded before and answers parsed
    after the clock, so that the (Python) client's own work does not count as the service's."""
    latencies: list[float] = []
    answers: list[bytes] = []
    queue = [json.dumps({"slots": items}).encode() for items in batches]
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as http:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                response = await http.post("/v1/slots/batch", content=body)
                latencies.append(time.perf_counter() - started)
                if os.environ.get("BENCH_DEBUG"):
                    print(round(latencies[-1] * 1000), flush=True)
                response.raise_for_status()
                answers.append(response.content)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    outcomes: dict[str, int] = {}
    for answer in answers:
        for result in json.loads(answer)["results"]:
            outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
    return elapsed, latencies, outcomes


async def raw_insert(database_url: str, tenant: BenchTenant, batches: list[list[dict[str, Any]]]) -> float:
    """The same rows with the service's own INSERT ... SELECT FROM unnest, straight over asyncpg."""
    conn = await asyncpg.connect(database_url)
    sql = """
        INSERT INTO slot (id, cpts_id, publisher_id, client_id, external_id, practitioner_id, site_id, start_at,
                          end_at, modality, visibility, specialty, status, version, published_at, updated_at)
        SELECT u.id, $1, $2, NULL, u.e, u.p, u.s, u.a, u.b, 'AMB', '{CPTS,SNP}', 'SM54', 'free', 1, now(), now()
        FROM unnest($3::uuid[], $4::text[], $5::uuid[], $6::uuid[], $7::timestamptz[], $8::timestamptz[])
             AS u(id, e, p, s, a, b)
        ON CONFLICT DO NOTHING"""
    publisher = uuid.uuid4()
    started = time.perf_counter()
    for items in batches:
        async with conn.transaction():
            await conn.execute(
                sql,
                uuid.UUID(tenant.cpts_id),
                publisher,
                [uuid.uuid4() for _ in items],
                [f"raw-{i['external_id']}" for i in items],
                [uuid.UUID(i["practitioner_id"]) for i in items],
                [uuid.UUID(i["site_id"]) for i in items],
                [datetime.fromisoformat(i["start"]) + timedelta(days=30) for i in items],
                [datetime.fromisoformat(i["end"]) + timedelta(days=30) for i in items],
            )
    elapsed = time.perf_counter() - started
    await conn.close()
    return elapsed


def run(batches: int, size: int, workers: int, practitioners: int) -> dict[str, Any]:
    with bench_database() as (_, database_url), live_service(database_url, workers=workers) as base:
        tenant = bench_tenant(database_url, base)
        staff = {"Authorization": f"Bearer {tenant.coordinator_token}"}
        with httpx.Client(base_url=base, headers=staff, timeout=60) as http:
            for body in practitioners_body(practitioners):
                tenant.practitioners.append(http.post("/v1/practitioners", json=body).raise_for_status().json())
            created = (
                http.post(
                    "/v1/clients", json={"name": "bench", "practitioner_ids": [p["id"] for p in tenant.practitioners]}
                )
                .raise_for_status()
                .json()
            )
        tenant.api_key = created["api_key"]
        first_day = (datetime.now(UTC) + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
        work = [batch_items(tenant, b, size, first_day) for b in range(batches)]
        figures: dict[str, Any] = {"batch_size": size, "batches": batches, "server_workers": workers}
        for label, concurrency in (("create_1_publisher", 1), ("unchanged_1_publisher", 1)):
            elapsed, latencies, outcomes = asyncio.run(publish_all(base, tenant.api_key, work, concurrency))
            figures[label] = {
                "slots_per_s": round(batches * size / elapsed),
                "batch_p50_ms": round(percentile(latencies, 50) * 1000, 1),
                "batch_p95_ms": round(percentile(latencies, 95) * 1000, 1),
                "outcomes": outcomes,
            }
        second = [batch_items(tenant, batches + b, size, first_day) for b in range(batches)]
        elapsed, latencies, outcomes = asyncio.run(publish_all(base, tenant.api_key, second, 2))
        figures["create_2_concurrent_batches"] = {
            "slots_per_s": round(batches * size / elapsed),
            "batch_p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "outcomes": outcomes,
        }
        raw_elapsed = asyncio.run(raw_insert(database_url, tenant, work))
        figures["raw_sql_slots_per_s"] = round(batches * size / raw_elapsed)
        figures["service_to_raw_ratio"] = round(
            figures["create_1_publisher"]["slots_per_s"] / figures["raw_sql_slots_per_s"], 2
        )
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--practitioners", type=int, default=200)
    args = parser.parse_args()
    figures = run(args.batches, args.size, args.workers, args.practitioners)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
