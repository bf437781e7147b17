"""Every list pages with a cursor it made itself; a forged or malformed one is a 422
`invalid_cursor`, never a 500, on every list of the API."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.builders import Tenant, new_agenda


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED = {
    "two strings": b64(json.dumps(["a", "b"]).encode()),
    "two integers": b64(json.dumps([1, 2]).encode()),
    "three strings": b64(json.dumps(["a", "b", "c"]).encode()),
    "a huge integer": b64(json.dumps([10**40]).encode()),
    "a huge integer and a string": b64(json.dumps([10**40, "x"]).encode()),
    "an object": b64(json.dumps({"a": 1}).encode()),
    "deep nesting": b64(b"[" * 180 + b"]" * 180),
    "not base64": "%%%%",
    "not json": b64(b"\xff\xfe not json"),
    "a feed cursor elsewhere": b64(b"feed:12"),
}
LISTS = {
    "users": ("/v1/users", "coordinator"),
    "clients": ("/v1/clients", "coordinator"),
    "practitioners": ("/v1/practitioners", "coordinator"),
    "slots": ("/v1/slots", "coordinator"),
    "slot search": ("/v1/slots/search", "handler"),
    "request queue": ("/v1/requests", "handler"),
}


@pytest.mark.parametrize("forged", list(FORGED.values()), ids=list(FORGED))
@pytest.mark.parametrize("listing", list(LISTS.values()), ids=list(LISTS))
async def test_a_forged_cursor_is_a_422_on_every_staff_list(
    client: httpx.AsyncClient, tenant: Tenant, listing: tuple[str, str], forged: str
) -> None:
    path, role = listing
    answer = await client.get(path, params={"cursor": forged}, headers=tenant.as_role(role))
    assert (answer.status_code, answer.json()["code"]) == (422, "invalid_cursor"), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


FEED_FORGED = {**{k: v for k, v in FORGED.items() if k != "a feed cursor elsewhere"}, "overflow": b64(b"feed:9" * 5)}


@pytest.mark.parametrize("forged", list(FEED_FORGED.values()), ids=list(FEED_FORGED))
async def test_a_forged_cursor_is_a_422_on_the_booking_feed(
    client: httpx.AsyncClient, tenant: Tenant, forged: str
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    answer = await client.get("/v1/bookings/feed", params={"cursor": forged}, headers=agenda.headers)
    assert (answer.status_code, answer.json()["code"]) == (422, "invalid_cursor"), answer.text


async def test_a_cursor_longer_than_any_we_make_is_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    answer = await client.get("/v1/practitioners", params={"cursor": "a" * 501}, headers=tenant.coordinator)
    assert (answer.status_code, answer.json()["code"]) == (422, "validation_error")


async def test_a_page_marker_out_of_range_is_a_422_on_the_deliveries(client: httpx.AsyncClient, tenant: Tenant) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    path = f"/v1/clients/{agenda.client_id}/deliveries"
    for before in ("99999999999999999999999", "-1", "abc"):
        answer = await client.get(path, params={"before": before}, headers=tenant.coordinator)
        assert (answer.status_code, answer.json()["code"]) == (422, "validation_error"), answer.text
    too_big = await client.post(f"{path}/99999999999999999999999/redeliver", headers=tenant.coordinator)
    assert too_big.status_code == 422


async def test_cursors_walk_a_list_to_its_end(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for n in range(5):
        await tenant.add_practitioner(family_name=f"Nom{n}")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/practitioners", params=params, headers=tenant.coordinator)).json()
        seen += [p["family_name"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Nom{n}" for n in range(5)]
