"""The `snp` commands, run as real processes against the test database."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.builders import bearer, login
from tests.conftest import snp_environment

SNP = str(Path(sys.executable).with_name("snp"))


async def snp(database_url: str, *args: str) -> tuple[int, str, str]:
    env = snp_environment(database_url)
    process = await asyncio.create_subprocess_exec(
        SNP, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def snp_json(database_url: str, *args: str) -> dict[str, Any]:
    code, out, err = await snp(database_url, *args, "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


async def test_create_cpts_user_and_client_from_the_command_line(client: httpx.AsyncClient, database_url: str) -> None:
    cpts = await snp_json(
        database_url, "cpts", "create", "--name", "CPTS CLI", "--population", "90000", "--contract-start", "2024-07-01"
    )
    assert cpts["size"] == 3
    user = await snp_json(
        database_url,
        "user", "create", "--cpts", cpts["id"], "--email", "coord@cli.test", "--role", "coordinator",
        "--password", "cli password 123",
    )  # fmt: skip
    token = await login(client, "coord@cli.test", "cli password 123")
    current = (await client.get("/v1/cpts/current", headers=bearer(token))).json()
    assert current["id"] == cpts["id"]
    assert current["contract_start_date"] == "2024-07-01"
    assert user["role"] == "coordinator"

    created = await client.post(
        "/v1/practitioners",
        json={"rpps": "10003456786", "family_name": "Cli", "given_name": "Test", "profession": "60"},
        headers=bearer(token),
    )
    software = await snp_json(
        database_url, "client", "create", "--cpts", cpts["id"], "--name", "Agenda", "--practitioner",
        created.json()["id"],
    )  # fmt: skip
    assert software["api_key"].startswith("snpk_")
    listed = (await client.get("/v1/practitioners", headers=bearer(software["api_key"]))).json()["items"]
    assert [p["id"] for p in listed] == [created.json()["id"]]


async def test_bad_arguments_exit_non_zero_with_a_message(database_url: str) -> None:
    code, _, err = await snp(database_url, "cpts", "create", "--name", "X", "--population", "-5")
    assert code != 0
    assert "population" in err
    code, _, err = await snp(
        database_url, "user", "create", "--cpts", "00000000-0000-0000-0000-000000000000", "--email", "a@b.test",
        "--role", "handler", "--password", "long enough password",
    )  # fmt: skip
    assert code != 0
    assert "cpts_not_found" in err


async def test_seed_demo_prints_working_credentials_and_refreshes_them(
    client: httpx.AsyncClient, database_url: str
) -> None:
    first = await snp_json(database_url, "seed-demo")
    assert first["practitioners"] >= 30
    assert set(first["users"]) == {"handler", "regulator", "coordinator", "admin"}
    assert first["requests"] == 4  # a queue to work on: an ordinary call, a red flag, an urgent one, a reopened one
    assert first["slots"]["created"] > 500
    second = await snp_json(database_url, "seed-demo")
    assert second["cpts_id"] == first["cpts_id"]
    assert second["created"] is False
    # The same agenda published again through the same code path changes nothing.
    # (bar the one slot the demo's practitioner cancelled, withdrawn, that the agenda publishes again)
    assert set(second["slots"]) <= {"unchanged", "rejected", "updated"}
    assert second["slots"].get("updated", 0) <= 1
    assert second["slots"]["unchanged"] >= first["slots"]["created"] - 40
    for role, creds in second["users"].items():
        token = await login(client, creds["email"], creds["password"])
        me = await client.get("/v1/cpts/current", headers=bearer(token))
        assert me.json()["id"] == first["cpts_id"], role
    assert me.json()["size"] == 4
    # The first run's key was replaced; the second one works.
    assert (await client.get("/v1/practitioners", headers=bearer(first["client"]["api_key"]))).status_code == 401
    listed = await client.get("/v1/practitioners?limit=500", headers=bearer(second["client"]["api_key"]))
    professions = {p["profession"] for p in listed.json()["items"]}
    assert {"10", "60", "70", "50", "40"} <= professions
    slots = await client.get("/v1/slots?limit=500", headers=bearer(second["client"]["api_key"]))
    assert {s["modality"] for s in slots.json()["items"]} >= {"AMB", "HH"}
    handler = await login(client, second["users"]["handler"]["email"], second["users"]["handler"]["password"])
    found = await client.get("/v1/slots/search", params={"profession": "10"}, headers=bearer(handler))
    assert found.json()["items"]
