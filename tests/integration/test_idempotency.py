from __future__ import annotations

import asyncio

import httpx

from tests.builders import Tenant, unique_rpps


def practitioner_body(rpps: str) -> dict[str, object]:
    return {"rpps": rpps, "family_name": "Idem", "given_name": "Potent", "profession": "60"}


async def count(client: httpx.AsyncClient, tenant: Tenant) -> int:
    return len((await client.get("/v1/practitioners", headers=tenant.coordinator)).json()["items"])


async def test_same_key_same_body_replays_the_first_answer_and_creates_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = {**tenant.coordinator, "Idempotency-Key": "k-1"}
    body = practitioner_body(unique_rpps())
    first = await client.post("/v1/practitioners", json=body, headers=headers)
    second = await client.post("/v1/practitioners", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await count(client, tenant) == 1


async def test_key_order_and_spacing_do_not_make_another_body(client: httpx.AsyncClient, tenant: Tenant) -> None:
    headers = {**tenant.coordinator, "Idempotency-Key": "k-spacing", "content-type": "application/json"}
    rpps = unique_rpps()
    first = await client.post(
        "/v1/practitioners",
        content=f'{{"rpps":"{rpps}","family_name":"Idem","given_name":"Potent","profession":"60"}}',
        headers=headers,
    )
    second = await client.post(
        "/v1/practitioners",
        content=f'{{ "profession": "60", "given_name": "Potent", "family_name": "Idem", "rpps": "{rpps}" }}',
        headers=headers,
    )
    assert second.status_code == 201
    assert second.json()["id"] == first.json()["id"]


async def test_same_key_with_another_body_is_422_and_changes_nothing(client: httpx.AsyncClient, tenant: Tenant) -> None:
    headers = {**tenant.coordinator, "Idempotency-Key": "k-2"}
    await client.post("/v1/practitioners", json=practitioner_body(unique_rpps()), headers=headers)
    reused = await client.post("/v1/practitioners", json=practitioner_body(unique_rpps()), headers=headers)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert await count(client, tenant) == 1


async def test_keys_are_scoped_to_the_caller(client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant) -> None:
    body = practitioner_body(unique_rpps())
    mine = await client.post("/v1/practitioners", json=body, headers={**tenant.coordinator, "Idempotency-Key": "k-3"})
    theirs = await client.post(
        "/v1/practitioners", json=body, headers={**other_tenant.coordinator, "Idempotency-Key": "k-3"}
    )
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_concurrent_retries_with_one_key_create_one_thing(client: httpx.AsyncClient, tenant: Tenant) -> None:
    headers = {**tenant.coordinator, "Idempotency-Key": "k-race"}
    body = practitioner_body(unique_rpps())
    responses = await asyncio.gather(*(client.post("/v1/practitioners", json=body, headers=headers) for _ in range(8)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await count(client, tenant) == 1


async def test_a_failed_attempt_is_not_stored_and_may_be_retried(client: httpx.AsyncClient, tenant: Tenant) -> None:
    headers = {**tenant.coordinator, "Idempotency-Key": "k-retry"}
    body = practitioner_body(unique_rpps())
    existing = await client.post("/v1/practitioners", json=body, headers=tenant.coordinator)
    assert existing.status_code == 201
    conflict = await client.post("/v1/practitioners", json=body, headers=headers)
    assert conflict.status_code == 409
    # The member leaves; the same retry now succeeds instead of replaying the 409.
    await client.patch(f"/v1/practitioners/{existing.json()['id']}", json={"active": False}, headers=tenant.coordinator)
    body["rpps"] = unique_rpps()
    other = await client.post("/v1/practitioners", json=body, headers=headers)
    assert other.status_code == 201


async def test_every_post_route_takes_an_idempotency_key(app: object) -> None:
    from fastapi import FastAPI
    from fastapi.routing import APIRoute

    from service.idempotency import idempotency_guard

    assert isinstance(app, FastAPI)
    exempt = {"/v1/auth/token"}
    missing = [
        route.path
        for route in app.routes
        if isinstance(route, APIRoute)
        and "POST" in (route.methods or set())
        and route.path not in exempt
        and idempotency_guard not in [d.call for d in route.dependant.dependencies]
    ]
    assert missing == []
