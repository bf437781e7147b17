"""Input that once gave a 500 (and closed the connection): each is now a clear 4xx that changes
nothing, and one bad item of a batch is rejected alone."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.builders import Agenda, Tenant, new_agenda, next_day_at, slot_item

EXTREMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1999-12-31T23:00:00+00:00"]


def deep(depth: int) -> str:
    """JSON text nested `depth` arrays deep (the client's own encoder would give up first)."""
    return "[" * depth + '"x"' + "]" * depth


def post_json(client: httpx.AsyncClient, path: str, text: str, headers: dict[str, str]) -> Any:
    return client.post(path, content=text, headers={**headers, "Content-Type": "application/json"})


@pytest.fixture
async def agenda(tenant: Tenant) -> Agenda:
    return await new_agenda(tenant, practitioners=1)


def good(agenda: Agenda, external_id: str, hour: int = 10) -> dict[str, Any]:
    return slot_item(external_id, agenda.practitioners[0], next_day_at(hour, days=2))


@pytest.mark.parametrize("moment", EXTREMES)
async def test_a_slot_in_year_1_or_9999_is_a_422_alone_or_in_a_batch_or_a_sync(
    client: httpx.AsyncClient, agenda: Agenda, moment: str
) -> None:
    bad = {**good(agenda, "bad"), "start": moment, "end": moment}
    put = await client.put(
        "/v1/slots/bad", json={k: v for k, v in bad.items() if k != "external_id"}, headers=agenda.headers
    )
    assert (put.status_code, put.json()["code"]) == (422, "validation_error")
    batch = await client.post("/v1/slots/batch", json={"slots": [bad, good(agenda, "ok")]}, headers=agenda.headers)
    assert batch.status_code == 200
    assert [r["outcome"] for r in batch.json()["results"]] == ["rejected", "created"]
    window = {"window_start": next_day_at(0, days=2).isoformat(), "window_end": next_day_at(23, days=2).isoformat()}
    sync = await client.post(
        "/v1/slots/sync", json={**window, "slots": [bad, good(agenda, "ok")]}, headers=agenda.headers
    )
    assert sync.status_code == 200
    assert [r["outcome"] for r in sync.json()["results"]] == ["rejected", "unchanged"]
    far = await client.post(
        "/v1/slots/sync", json={**window, "window_end": moment, "slots": []}, headers=agenda.headers
    )
    assert far.status_code == 422


async def test_deeply_nested_items_are_rejected_one_by_one(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda
) -> None:
    for hour, depth in ((11, 319), (12, 600)):
        nested = json.dumps({**good(agenda, f"n{depth}"), "visibility": "DEEP"}).replace('"DEEP"', deep(depth))
        batch = await post_json(
            client,
            "/v1/slots/batch",
            f'{{"slots": [{nested}, {json.dumps(good(agenda, f"g{depth}", hour))}]}}',
            agenda.headers,
        )
        assert batch.status_code == 200, batch.text
        assert [r["outcome"] for r in batch.json()["results"]] == ["rejected", "created"]
        record = f'{{"external_ref": "r{depth}", "received_at": "2026-10-01T10:00:00+02:00", "motif": {deep(depth)}}}'
        imported = await post_json(client, "/v1/imports/activity", f'{{"records": [{record}]}}', tenant.coordinator)
        assert imported.status_code == 200, imported.text
        assert imported.json()["results"][0]["outcome"] == "rejected"
    # As deep as the JSON parser goes, and deeper: the whole body is a 400 problem, not a 500.
    for depth in (990, 50_000):
        body = f'{{"slots": [{deep(depth)}]}}'
        too_deep = await post_json(client, "/v1/slots/batch", body, agenda.headers)
        assert too_deep.status_code in (200, 400), too_deep.text
        if too_deep.status_code == 400:
            assert too_deep.headers["content-type"].startswith("application/problem+json")
        else:
            assert too_deep.json()["results"][0]["outcome"] == "rejected"


async def test_lone_surrogates_are_refused_wherever_they_come(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda
) -> None:
    surrogate = "\\ud800"  # as JSON writes it: not Unicode once decoded
    patch = await client.patch(
        "/v1/cpts/current",
        content='{"motif_overrides": {"M19.05.00' + surrogate + '": "snp"}}',
        headers={**tenant.coordinator, "Content-Type": "application/json"},
    )
    assert patch.status_code == 422
    item = json.dumps(good(agenda, "PLACEHOLDER")).replace("PLACEHOLDER", "s" + surrogate)
    batch = await client.post(
        "/v1/slots/batch",
        content='{"slots": [' + item + "]}",
        headers={**agenda.headers, "Content-Type": "application/json"},
    )
    assert batch.status_code == 200, batch.text
    [result] = batch.json()["results"]
    assert (result["outcome"], result["external_id"]) == ("rejected", None)  # never echoed back
    record = '{"external_ref": "r' + surrogate + '", "received_at": "2026-10-01T10:00:00+02:00", "motif": "M19.05.00"}'
    imported = await client.post(
        "/v1/imports/activity",
        content='{"records": [' + record + "]}",
        headers={**tenant.coordinator, "Content-Type": "application/json"},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["results"][0]["outcome"] == "rejected"
    note = await client.post(
        "/v1/requests",
        content='{"motif": "M19.05.00", "note": "a' + surrogate + '"}',
        headers={**tenant.handler, "Content-Type": "application/json"},
    )
    assert note.status_code == 422


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-14:00", "2026-12-01T10:00:00"])
async def test_search_and_queue_bounds_are_checked(client: httpx.AsyncClient, tenant: Tenant, moment: str) -> None:
    for path, name in (("/v1/slots/search", "start_from"), ("/v1/slots", "start_to"), ("/v1/requests", "due_before")):
        answer = await client.get(path, params={name: moment}, headers=tenant.coordinator)
        assert (answer.status_code, answer.json()["code"]) == (422, "validation_error"), (path, answer.text)


async def test_a_contract_start_or_a_rate_in_an_impossible_year_is_refused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    before = (await client.get("/v1/cpts/current", headers=tenant.coordinator)).json()
    for day in ("0001-01-01", "9999-12-31", (datetime.now(UTC).date() + timedelta(days=800)).isoformat()):
        answer = await client.patch("/v1/cpts/current", json={"contract_start_date": day}, headers=tenant.coordinator)
        assert answer.status_code == 422, (day, answer.text)
        rate = await client.patch(
            "/v1/cpts/current", json={"compensation": {"effective_from": day}}, headers=tenant.coordinator
        )
        assert rate.status_code == 422, (day, rate.text)
    after = (await client.get("/v1/cpts/current", headers=tenant.coordinator)).json()
    assert after == before


async def test_an_import_with_an_appointment_decades_away_is_rejected(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    record = {
        "external_ref": "far",
        "received_at": "2026-10-01T10:00:00+02:00",
        "motif": "M19.05.00",
        "outcome": "booked",
        "oriented_at": "2026-10-01T10:10:00+02:00",
        "appointment": {"start": "2099-10-01T10:00:00+02:00", "end": "2099-10-01T10:20:00+02:00"},
    }
    answer = await client.post("/v1/imports/activity", json={"records": [record]}, headers=tenant.coordinator)
    assert answer.json()["results"][0]["outcome"] == "rejected"


async def test_dot_segments_are_not_external_ids(client: httpx.AsyncClient, agenda: Agenda) -> None:
    body = {k: v for k, v in good(agenda, "x").items() if k != "external_id"}
    for segment in ("%2E", "%2E%2E"):
        answer = await client.put(f"/v1/slots/{segment}", json=body, headers=agenda.headers)
        assert answer.status_code == 422, answer.text
    batch = await client.post(
        "/v1/slots/batch", json={"slots": [{**body, "external_id": ".."}]}, headers=agenda.headers
    )
    assert batch.json()["results"][0]["outcome"] == "rejected"
    assert (await client.put("/v1/slots/...", json=body, headers=agenda.headers)).status_code == 201


async def test_a_put_body_may_repeat_its_external_id_but_not_contradict_it(
    client: httpx.AsyncClient, agenda: Agenda
) -> None:
    same = await client.put("/v1/slots/repeat", json=good(agenda, "repeat"), headers=agenda.headers)
    assert same.status_code == 201
    other = await client.put("/v1/slots/repeat", json=good(agenda, "another"), headers=agenda.headers)
    assert (other.status_code, other.json()["code"]) == (422, "external_id_mismatch")


async def test_a_large_body_is_refused_before_it_is_read(client: httpx.AsyncClient, agenda: Agenda) -> None:
    ten_megabytes = "[" + ",".join(["{}"] * 3_500_000) + "]"
    refused = await client.post("/v1/slots/batch", content=ten_megabytes, headers={"Content-Type": "application/json"})
    assert (refused.status_code, refused.json()["code"]) == (413, "payload_too_large")
    # Even with credentials: the limit holds for everyone.
    authenticated = await client.post(
        "/v1/slots/batch", content=ten_megabytes, headers={**agenda.headers, "Content-Type": "application/json"}
    )
    assert authenticated.status_code == 413


async def test_a_body_above_the_small_bound_needs_credentials_that_check_out(
    client: httpx.AsyncClient, agenda: Agenda
) -> None:
    body = json.dumps({"slots": [good(agenda, f"b{i}") for i in range(400)]})  # about 100 kB
    assert len(body) > 64 * 1024
    plain = {"Content-Type": "application/json"}
    anonymous = await client.post("/v1/slots/batch", content=body, headers=plain)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    forged = await client.post("/v1/slots/batch", content=body, headers={**plain, "Authorization": "Bearer snpk_x"})
    assert forged.status_code == 401
    fine = await client.post("/v1/slots/batch", content=body, headers={**plain, **agenda.headers})
    assert fine.status_code == 200
    assert (
        await client.post("/v1/slots/batch", json={"slots": []}, headers=plain)
    ).status_code == 401  # small: the route


async def test_a_body_of_unknown_length_is_counted(client: httpx.AsyncClient, agenda: Agenda) -> None:
    async def chunks(total: int) -> AsyncIterator[bytes]:
        yield b'{"slots": ['
        sent = 0
        while sent < total:
            yield b"{}," * 1000
            sent += 3000
        yield b"{}]}"

    anonymous = await client.post(
        "/v1/slots/batch", content=chunks(10_000), headers={"Content-Type": "application/json"}
    )
    assert anonymous.status_code == 401
    huge = await client.post(
        "/v1/slots/batch",
        content=chunks(6 * 1024 * 1024),
        headers={**agenda.headers, "Content-Type": "application/json"},
    )
    assert (huge.status_code, huge.json()["code"]) == (413, "payload_too_large")
