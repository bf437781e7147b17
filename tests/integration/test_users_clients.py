from __future__ import annotations

import httpx

from tests.builders import Tenant, bearer, login

STRONG = "plume ardoise violon citadelle"


async def test_coordinator_creates_a_handler_who_can_log_in(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = {"email": "New.Handler@cpts.test", "display_name": "Nouvel OSNP", "role": "handler", "password": STRONG}
    created = await client.post("/v1/users", json=body, headers=tenant.coordinator)
    assert created.status_code == 201, created.text
    out = created.json()
    assert out["email"] == "new.handler@cpts.test"
    assert "password" not in out
    assert "password_hash" not in out
    token = await login(client, "new.handler@cpts.test", STRONG)
    assert (await client.get("/v1/cpts/current", headers=bearer(token))).status_code == 200


async def test_an_email_is_unique_within_a_cpts_and_says_nothing_of_another(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    body = {"email": tenant.emails["handler"], "display_name": "Dup", "role": "handler", "password": STRONG}
    again = await client.post("/v1/users", json=body, headers=tenant.coordinator)
    assert (again.status_code, again.json()["code"]) == (409, "user_exists")
    # Another CPTS may have a staff member of the same e-mail: nothing tells it the first one exists.
    elsewhere = await client.post("/v1/users", json=body, headers=other_tenant.coordinator)
    assert elsewhere.status_code == 201


async def test_only_an_admin_grants_admin(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = {"email": "boss@cpts.test", "display_name": "Boss", "role": "admin", "password": STRONG}
    assert (await client.post("/v1/users", json=body, headers=tenant.coordinator)).status_code == 403
    assert (await client.post("/v1/users", json=body, headers=tenant.admin)).status_code == 201


async def test_weak_password_and_unknown_role_are_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    short = {"email": "a@b.test", "display_name": "A", "role": "handler", "password": "short"}
    role = {"email": "a@b.test", "display_name": "A", "role": "superuser", "password": STRONG}
    for body, field in ((short, "password"), (role, "role")):
        response = await client.post("/v1/users", json=body, headers=tenant.coordinator)
        assert response.status_code == 422
        assert ["body", field] in [e["loc"] for e in response.json()["errors"]]


async def test_client_lists_and_updates(client: httpx.AsyncClient, tenant: Tenant) -> None:
    first = await tenant.add_practitioner()
    second = await tenant.add_practitioner()
    created = await tenant.add_client([first["id"]], webhook_url="https://agenda.example/hooks")
    listed = (await client.get("/v1/clients", headers=tenant.coordinator)).json()["items"]
    assert [c["id"] for c in listed] == [created["id"]]
    assert "api_key" not in listed[0]
    assert "webhook_secret" not in listed[0]
    assert listed[0]["api_key_prefix"] == created["api_key"][:11]
    patched = await client.patch(
        f"/v1/clients/{created['id']}",
        json={"practitioner_ids": [first["id"], second["id"]], "webhook_url": None},
        headers=tenant.coordinator,
    )
    assert patched.status_code == 200
    assert sorted(patched.json()["practitioner_ids"]) == sorted([first["id"], second["id"]])
    assert patched.json()["webhook_url"] is None
    listed_by_software = await client.get("/v1/practitioners", headers=bearer(created["api_key"]))
    assert len(listed_by_software.json()["items"]) == 2


async def test_deactivated_client_key_stops_working(client: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await tenant.add_client([])
    await client.patch(f"/v1/clients/{created['id']}", json={"active": False}, headers=tenant.coordinator)
    assert (await client.get("/v1/practitioners", headers=bearer(created["api_key"]))).status_code == 401


async def test_webhook_url_must_be_http(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/clients", json={"name": "x", "webhook_url": "ftp://x.example/"}, headers=tenant.coordinator
    )
    assert response.status_code == 422


async def test_cpts_settings_patch(client: httpx.AsyncClient, tenant: Tenant) -> None:
    current = (await client.get("/v1/cpts/current", headers=tenant.handler)).json()
    assert current["size"] == 2
    assert current["response_window_hours"] == 24
    assert current["hold_ttl_seconds"] == 180
    patched = await client.patch(
        "/v1/cpts/current",
        json={"population": 200_000, "hold_ttl_seconds": 120, "territory": ["44109", "2A004", "44109"]},
        headers=tenant.coordinator,
    )
    assert patched.status_code == 200
    assert patched.json()["size"] == 4
    assert patched.json()["territory"] == ["2A004", "44109"]
    override = await client.patch("/v1/cpts/current", json={"size": 3}, headers=tenant.coordinator)
    assert override.json()["size"] == 3
    derived = await client.patch("/v1/cpts/current", json={"size": None}, headers=tenant.coordinator)
    assert derived.json()["size"] == 4
    for bad in ({"timezone": "Mars/Olympus"}, {"hold_ttl_seconds": 1}, {"response_window_hours": 0}, {"x": 1}):
        response = await client.patch("/v1/cpts/current", json=bad, headers=tenant.coordinator)
        assert response.status_code == 422, bad
    assert (await client.get("/v1/cpts/current", headers=tenant.handler)).json()["hold_ttl_seconds"] == 120
