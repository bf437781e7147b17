from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from tests.builders import Tenant, new_agenda, next_day_at, open_request, publish, slot_item, unique_rpps


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


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, through the included routers (FastAPI keeps those as branches)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


async def test_every_post_route_takes_an_idempotency_key(app: object) -> None:
    from service.idempotency import idempotency_guard, pending_idempotency

    assert isinstance(app, FastAPI)
    posts = [route for route in api_routes(app.routes) if "POST" in (route.methods or set())]
    assert len(posts) > 40  # the walk reaches the included routers
    # Sign-in and the second factor's steps (a retry starts them again), a POST that only reads,
    # and FHIR, whose clients make their creates conditional (If-None-Exist) instead.
    exempt = {"/v1/auth/token", "/v1/auth/mfa/enroll", "/v1/auth/mfa/activate", "/v1/requests/duplicate-check"}
    # The console claims the key itself, with the form it parsed (`console.router`).
    guarded = {idempotency_guard, pending_idempotency}
    missing = [
        route.path
        for route in posts
        if route.path not in exempt
        and not route.path.startswith(("/console/", "/fhir/"))
        and not guarded & {d.call for d in route.dependant.dependencies}
    ]
    assert missing == []


# The hold and the booking claim their key inside their single statement (issue 16); the same
# promises hold for them.


async def booking_setup(tenant: Tenant, slots: int = 2) -> list[str]:
    agenda = await new_agenda(tenant, practitioners=1)
    items = [slot_item(f"idem-{i}", agenda.practitioners[0], next_day_at(9 + i)) for i in range(slots)]
    return await publish(agenda, items)


async def test_a_booking_retried_with_its_key_replays_the_same_answer_and_books_once(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    slot_ids = await booking_setup(tenant)
    request = await open_request(tenant)
    headers = {**tenant.handler, "Idempotency-Key": "book-1"}
    path = f"/v1/requests/{request['id']}/book"
    first = await client.post(path, json={"slot_id": slot_ids[0]}, headers=headers)
    again = await client.post(path, json={"slot_id": slot_ids[0]}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    other_slot = await client.post(path, json={"slot_id": slot_ids[1]}, headers=headers)
    assert (other_slot.status_code, other_slot.json()["code"]) == (422, "idempotency_key_reused")
    detail = (await client.get(f"/v1/requests/{request['id']}", headers=tenant.handler)).json()
    assert [b["booking_id"] for b in detail["bookings"]] == [first.json()["booking_id"]]
    events = [e["kind"] for e in detail["events"]]
    assert events.count("booked") == 1


async def test_a_hold_replayed_says_held_with_its_expiry(client: httpx.AsyncClient, tenant: Tenant) -> None:
    slot_ids = await booking_setup(tenant, slots=1)
    request = await open_request(tenant)
    headers = {**tenant.handler, "Idempotency-Key": "hold-1"}
    path = f"/v1/requests/{request['id']}/hold"
    first = await client.post(path, json={"slot_id": slot_ids[0]}, headers=headers)
    again = await client.post(path, json={"slot_id": slot_ids[0]}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["status"] == "held"
    assert first.json()["hold_expires_at"] is not None
    assert again.json() == first.json()


async def test_concurrent_retries_of_a_booking_with_one_key_book_once(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    slot_ids = await booking_setup(tenant, slots=1)
    request = await open_request(tenant)
    headers = {**tenant.handler, "Idempotency-Key": "book-race"}
    answers = await asyncio.gather(
        *(
            client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": slot_ids[0]}, headers=headers)
            for _ in range(8)
        )
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["booking_id"] for a in answers}) == 1
    assert sum(1 for a in answers if "idempotent-replayed" in a.headers) == 7


async def test_a_refused_booking_keeps_no_claim_and_its_retry_books(client: httpx.AsyncClient, tenant: Tenant) -> None:
    slot_ids = await booking_setup(tenant, slots=1)
    first_patient, second_patient = await open_request(tenant), await open_request(tenant)
    taken = await client.post(
        f"/v1/requests/{first_patient['id']}/book", json={"slot_id": slot_ids[0]}, headers=tenant.handler
    )
    headers = {**tenant.handler, "Idempotency-Key": "book-after-409"}
    path = f"/v1/requests/{second_patient['id']}/book"
    refused = await client.post(path, json={"slot_id": slot_ids[0]}, headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (409, "slot_unavailable")
    await client.post(
        f"/v1/bookings/{taken.json()['booking_id']}/cancel",
        json={"reason": "va mieux", "cancelled_by": "patient"},
        headers=tenant.handler,
    )
    retried = await client.post(path, json={"slot_id": slot_ids[0]}, headers=headers)
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
