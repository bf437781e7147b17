"""The benchmark's `pull` phase: a CPTS pulls, through `snp pull-slots`, the slots of 25
practitioners over 72 h from the bench's own FHIR facade, as it would from an agenda editor's SAS
interface (INT_R04). Timed twice: the first pull creates the slots, the second finds them all
unchanged."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from load_tests.generator import GeneratedCpts, generate
from load_tests.harness import BENCH_SECRET
from service.connectors.domain import source_cipher

TARGET_SECONDS = 2.0
EXTRA_SLOTS_EACH = 40  # on top of the generated ones, in the window: about 1 000 slots in all


async def pull(url: str, base: str, cpts: GeneratedCpts) -> dict[str, Any]:
    from load_tests.bench import FHIR_PRACTITIONERS, prepare_sas  # bench imports this module

    sas = await prepare_sas(url, cpts)  # the CPTS joins the SAS; a SAS key
    key = sas.headers["Authorization"].removeprefix("Bearer ")
    members = [m for m in cpts.members if m.profession == "10"][:FHIR_PRACTITIONERS]
    puller = await generate(url, seed=99, name="CPTS puller", practitioners=len(members), future_days=0)
    conn = await asyncpg.connect(url)
    try:
        await _more_slots_in_window(conn, cpts, members)
        same = await conn.fetch(
            "SELECT idnps, profession, specialty FROM practitioner WHERE id = ANY($1)", [m.id for m in members]
        )
        mine = await conn.fetch("SELECT id FROM practitioner WHERE cpts_id = $1 ORDER BY id", puller.cpts_id)
        # The puller's practitioners are the same people (national ids, professions, specialties).
        for (own,), (national, profession, specialty) in zip(mine, same, strict=True):
            await conn.execute(
                "UPDATE practitioner SET idnps = $2, profession = $3, specialty = $4 WHERE id = $1",
                own, national, profession, specialty,
            )  # fmt: skip
        await conn.execute(
            """INSERT INTO fhir_source (client_id, cpts_id, base_url, flow, window_hours, interval_seconds, slot_types,
                                        bearer_token, enabled, updated_at, next_pull_at, failures)
               VALUES ($1, $2, $3, 'INT_R04', 72, 300, '{CPTS,SNP}', $4, true, now(), now(), 0)""",
            puller.client_id, puller.cpts_id, f"{base}/fhir", source_cipher(BENCH_SECRET).encrypt(key.encode()),
        )  # fmt: skip
    finally:
        await conn.close()
    runs = [await asyncio.to_thread(_pull_once, url, str(puller.client_id)) for _ in range(2)]
    return {"practitioners": len(members), "first": runs[0], "second": runs[1], "target_seconds": TARGET_SECONDS}


async def _more_slots_in_window(conn: asyncpg.Connection, cpts: GeneratedCpts, members: list[Any]) -> None:
    first = (datetime.now(UTC) + timedelta(hours=6)).replace(minute=0, second=0, microsecond=0)
    rows = [
        (uuid.uuid4(), cpts.cpts_id, cpts.client_id, f"pull-{m.id}-{i}", m.id, m.site_id,
         first + timedelta(hours=20 * (i // 10), minutes=21 * (i % 10) + 3), m.specialty)
        for m in members
        for i in range(EXTRA_SLOTS_EACH)
    ]  # fmt: skip
    await conn.executemany(
        """INSERT INTO slot (id, cpts_id, publisher_id, client_id, external_id, practitioner_id, site_id, start_at,
               end_at, modality, visibility, specialty, home_visit_communes, status, version, published_at, updated_at)
           VALUES ($1, $2, $3, $3, $4, $5, $6, $7::timestamptz, $7::timestamptz + interval '15 minutes', 'AMB',
                   '{CPTS,SNP}', $8, '{}', 'free', 1, now(), now())
           ON CONFLICT DO NOTHING""",
        rows,
    )


def _pull_once(url: str, client_id: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SNP_SECRET_KEY": BENCH_SECRET,
        "SNP_ENV": "test",
        "SNP_LOG_LEVEL": "WARNING",
        "SNP_WEBHOOK_ALLOW_HTTP": "true",
        "SNP_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    }
    command = [str(Path(sys.executable).parent / "snp"), "pull-slots", "--source", client_id, "--once", "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=300)  # noqa: S603
    wall = time.perf_counter() - started
    result = json.loads(done.stdout or "{}").get(client_id, {})
    return {
        "exit_code": done.returncode,
        "pull_seconds": round(result.get("duration_ms", 0) / 1000, 2),
        "command_seconds": round(wall, 2),
        **{k: result.get(k) for k in ("created", "unchanged", "withdrawn", "rejected", "skipped", "queries", "kind")},
    }


def rows(figures: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    first, second = figures["first"], figures["second"]
    return [
        (
            f"FHIR pull, {figures['practitioners']} practitioners x 72 h: first pull",
            f"{first['created']} slots in {first['pull_seconds']} s ({first['command_seconds']} s with the command)",
            f"< {TARGET_SECONDS:g} s",
            first["pull_seconds"] < TARGET_SECONDS,
        ),
        ("  the same answer again", f"{second['unchanged']} unchanged in {second['pull_seconds']} s", "", None),
    ]
