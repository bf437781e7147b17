from __future__ import annotations

from typing import Any

import httpx

from tests.builders import Tenant, unique_rpps


def member(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "rpps": unique_rpps(),
        "family_name": "Durand",
        "given_name": "Léa",
        "profession": "10",
        "specialty": "SM54",
        "phone": "02 40 12 34 56",
        "email": "Lea.Durand@example.org",
        "sites": [{"name": "Cabinet", "commune_insee": "44109", "latitude": 47.2, "longitude": -1.55}],
    }
    body.update(overrides)
    return body


async def count(client: httpx.AsyncClient, tenant: Tenant) -> int:
    return len((await client.get("/v1/practitioners?limit=500", headers=tenant.coordinator)).json()["items"])


async def test_create_a_practitioner_with_sites_and_read_it_back(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = member()
    created = await client.post("/v1/practitioners", json=body, headers=tenant.coordinator)
    assert created.status_code == 201, created.text
    out = created.json()
    assert out["rpps"] == body["rpps"]
    assert out["idnps"] == "8" + body["rpps"]
    assert out["email"] == "lea.durand@example.org"
    assert out["warnings"] == []
    assert out["sites"][0]["commune_insee"] == "44109"
    fetched = (await client.get(f"/v1/practitioners/{out['id']}", headers=tenant.handler)).json()
    assert fetched == out
    # Datetimes come in the CPTS's offset (Paris: +01:00 or +02:00).
    assert fetched["created_at"].endswith(("+01:00", "+02:00"))


async def test_malformed_rpps_is_a_422_listing_the_field_and_stores_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for bad in ("1234567890", "123456789012", "1234567890A"):
        response = await client.post("/v1/practitioners", json=member(rpps=bad), headers=tenant.coordinator)
        assert response.status_code == 422, bad
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["code"] == "validation_error"
        assert ["body", "rpps"] in [e["loc"] for e in problem["errors"]]
    assert await count(client, tenant) == 0


async def test_rpps_failing_its_luhn_key_is_accepted_with_a_warning(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/v1/practitioners", json=member(rpps=unique_rpps(False)), headers=tenant.coordinator)
    assert response.status_code == 201
    assert [w["code"] for w in response.json()["warnings"]] == ["rpps_check_digit"]


async def test_adeli_member_gets_idnps_with_0(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = member(rpps=None, adeli="2A1234567", profession="80", specialty=None)
    response = await client.post("/v1/practitioners", json=body, headers=tenant.coordinator)
    assert response.status_code == 201, response.text
    assert response.json()["idnps"] == "02A1234567"
    bad = await client.post(
        "/v1/practitioners",
        json=member(rpps=None, adeli="12345", profession="80", specialty=None),
        headers=tenant.coordinator,
    )
    assert bad.status_code == 422


async def test_exactly_one_national_id_is_required(client: httpx.AsyncClient, tenant: Tenant) -> None:
    both = await client.post("/v1/practitioners", json=member(adeli="441234567"), headers=tenant.coordinator)
    neither = await client.post("/v1/practitioners", json=member(rpps=None), headers=tenant.coordinator)
    assert both.status_code == neither.status_code == 422


async def test_national_id_already_in_the_cpts_is_409(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    body = member()
    assert (await client.post("/v1/practitioners", json=body, headers=tenant.coordinator)).status_code == 201
    again = await client.post("/v1/practitioners", json=member(rpps=body["rpps"]), headers=tenant.coordinator)
    assert again.status_code == 409
    assert again.json()["code"] == "practitioner_exists"
    assert await count(client, tenant) == 1
    # The same person may be a member of another CPTS.
    assert (await client.post("/v1/practitioners", json=body, headers=other_tenant.coordinator)).status_code == 201


async def test_codes_are_checked_against_the_official_lists(client: httpx.AsyncClient, tenant: Tenant) -> None:
    cases = [
        (member(profession="99"), ["body", "profession"]),
        (member(specialty="SM99"), ["body", "specialty"]),
        (member(profession="60", specialty="SM54"), ["body"]),  # a specialty is for physicians only
    ]
    for body, loc in cases:
        response = await client.post("/v1/practitioners", json=body, headers=tenant.coordinator)
        assert response.status_code == 422, body
        assert any(e["loc"][: len(loc)] == loc for e in response.json()["errors"])
    assert await count(client, tenant) == 0


async def test_commune_codes_and_coordinates_are_validated(client: httpx.AsyncClient, tenant: Tenant) -> None:
    corsica = member(sites=[{"name": "Cabinet", "commune_insee": "2A004", "home_visit_communes": ["2B033"]}])
    assert (await client.post("/v1/practitioners", json=corsica, headers=tenant.coordinator)).status_code == 201
    bad_sites = [
        {"name": "x", "commune_insee": "4410"},
        {"name": "x", "commune_insee": "2C004"},
        {"name": "x", "commune_insee": "44109", "latitude": 91, "longitude": 0},
        {"name": "x", "commune_insee": "44109", "latitude": 47.0},
        {"name": "x", "commune_insee": "44109", "home_visit_communes": ["ABCDE"]},
    ]
    for site in bad_sites:
        response = await client.post("/v1/practitioners", json=member(sites=[site]), headers=tenant.coordinator)
        assert response.status_code == 422, site
    assert await count(client, tenant) == 1


async def test_unknown_fields_are_refused_not_silently_dropped(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/v1/practitioners", json=member(rpps_key="x"), headers=tenant.coordinator)
    assert response.status_code == 422
    assert ["body", "rpps_key"] in [e["loc"] for e in response.json()["errors"]]


async def test_patch_and_add_site(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await tenant.add_practitioner()
    path = f"/v1/practitioners/{created['id']}"
    patched = await client.patch(path, json={"phone": "0601020304", "active": False}, headers=tenant.coordinator)
    assert patched.status_code == 200
    assert patched.json()["phone"] == "0601020304"
    assert patched.json()["active"] is False
    assert patched.json()["specialty"] == "SM54"
    recoded = await client.patch(path, json={"profession": "60"}, headers=tenant.coordinator)
    assert recoded.json()["specialty"] is None  # nurses have no physician specialty
    wrong = await client.patch(path, json={"specialty": "SM40"}, headers=tenant.coordinator)
    assert wrong.status_code == 422
    site = await client.post(
        f"{path}/sites", json={"name": "Annexe", "commune_insee": "44143"}, headers=tenant.coordinator
    )
    assert site.status_code == 201
    assert len((await client.get(path, headers=tenant.coordinator)).json()["sites"]) == 2


async def test_list_is_paginated_by_cursor_in_name_order(client: httpx.AsyncClient, tenant: Tenant) -> None:
    names = ["Zola", "Aubert", "Martin", "Bernard", "Petit"]
    for name in names:
        await tenant.add_practitioner(family_name=name)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/practitioners", params=params, headers=tenant.handler)).json()
        seen += [p["family_name"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(names)
    bad = await client.get("/v1/practitioners", params={"cursor": "garbage"}, headers=tenant.handler)
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_cursor"
    too_big = await client.get("/v1/practitioners", params={"limit": 501}, headers=tenant.handler)
    assert too_big.status_code == 422


async def test_handlers_read_members_but_only_coordinators_write(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post("/v1/practitioners", json=member(), headers=tenant.handler)
    assert response.status_code == 403
    assert await count(client, tenant) == 0
