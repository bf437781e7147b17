from __future__ import annotations

import httpx

from tests.builders import Tenant, bearer


async def test_another_tenants_practitioner_is_404_for_every_verb(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await other_tenant.add_practitioner()
    path = f"/v1/practitioners/{theirs['id']}"
    assert (await client.get(path, headers=tenant.coordinator)).status_code == 404
    patch = await client.patch(path, json={"family_name": "Hijack"}, headers=tenant.coordinator)
    assert patch.status_code == 404
    assert patch.json()["code"] == "practitioner_not_found"
    site = {"name": "Annexe", "commune_insee": "44109"}
    assert (await client.post(f"{path}/sites", json=site, headers=tenant.coordinator)).status_code == 404
    # Nothing changed on their side.
    unchanged = (await client.get(path, headers=other_tenant.coordinator)).json()
    assert unchanged["family_name"] == theirs["family_name"]
    assert len(unchanged["sites"]) == 1


async def test_lists_show_only_the_callers_tenant(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await tenant.add_practitioner()
    theirs = await other_tenant.add_practitioner()
    listed = (await client.get("/v1/practitioners", headers=tenant.handler)).json()["items"]
    ids = {p["id"] for p in listed}
    assert mine["id"] in ids
    assert theirs["id"] not in ids
    users = (await client.get("/v1/users", headers=tenant.coordinator)).json()["items"]
    assert {u["email"] for u in users} == set(tenant.emails.values())


async def test_another_tenants_user_and_client_are_404(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    their_users = (await client.get("/v1/users", headers=other_tenant.coordinator)).json()["items"]
    their_client = await other_tenant.add_client([])
    assert (await client.get(f"/v1/users/{their_users[0]['id']}", headers=tenant.coordinator)).status_code == 404
    assert (
        await client.patch(f"/v1/users/{their_users[0]['id']}", json={"active": False}, headers=tenant.coordinator)
    ).status_code == 404
    assert (await client.get(f"/v1/clients/{their_client['id']}", headers=tenant.coordinator)).status_code == 404
    rotate = await client.post(f"/v1/clients/{their_client['id']}/rotate-key", headers=tenant.coordinator)
    assert rotate.status_code == 404
    # Their key still works.
    assert (await client.get("/v1/practitioners", headers=bearer(their_client["api_key"]))).status_code == 200


async def test_a_client_cannot_link_another_tenants_practitioner(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await other_tenant.add_practitioner()
    response = await client.post(
        "/v1/clients", json={"name": "Sneaky", "practitioner_ids": [theirs["id"]]}, headers=tenant.coordinator
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_practitioner"
    clients = (await client.get("/v1/clients", headers=tenant.coordinator)).json()["items"]
    assert clients == []


async def test_software_sees_only_its_own_practitioners(client: httpx.AsyncClient, tenant: Tenant) -> None:
    linked = await tenant.add_practitioner()
    unlinked = await tenant.add_practitioner()
    key = (await tenant.add_client([linked["id"]]))["api_key"]
    listed = (await client.get("/v1/practitioners", headers=bearer(key))).json()["items"]
    assert [p["id"] for p in listed] == [linked["id"]]
    assert (await client.get(f"/v1/practitioners/{unlinked['id']}", headers=bearer(key))).status_code == 404
    assert (await client.get(f"/v1/practitioners/{linked['id']}", headers=bearer(key))).status_code == 200
