from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.accounts.models import SoftwareClient
from tests.builders import PASSWORD, Clock, Tenant, bearer


async def test_token_is_issued_for_good_credentials_and_opens_the_api(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.post(
        "/v1/auth/token", data={"username": tenant.emails["handler"].upper(), "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    me = await client.get("/v1/cpts/current", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == str(tenant.cpts_id)


async def test_wrong_password_and_unknown_user_are_401_problems(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for username, password in ((tenant.emails["handler"], "wrong password!"), ("nobody@nowhere.test", PASSWORD)):
        response = await client.post("/v1/auth/token", data={"username": username, "password": password})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_credentials"


async def test_missing_or_garbage_credentials_are_401(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/cpts/current")
    assert missing.status_code == 401
    assert missing.json()["code"] == "unauthenticated"
    assert missing.headers["www-authenticate"] == "Bearer"
    for token in ("not-a-jwt", "snpk_not-a-real-key", "eyJhbGciOiJIUzI1NiJ9.e30.bad"):
        response = await client.get("/v1/cpts/current", headers=bearer(token))
        assert response.status_code == 401, token
        assert response.json()["code"] == "invalid_credentials"


async def test_token_signed_with_another_secret_is_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    import jwt

    claims = jwt.decode(tenant.tokens["coordinator"], options={"verify_signature": False})
    forged = jwt.encode(claims, "another-secret-another-secret-another-secret", algorithm="HS256")
    response = await client.get("/v1/cpts/current", headers=bearer(forged))
    assert response.status_code == 401


async def test_token_expires_after_its_lifetime(client: httpx.AsyncClient, tenant: Tenant, clock: Clock) -> None:
    assert (await client.get("/v1/cpts/current", headers=tenant.handler)).status_code == 200
    clock.advance(seconds=3601)
    response = await client.get("/v1/cpts/current", headers=tenant.handler)
    assert response.status_code == 401


async def test_deactivated_user_loses_access_at_once(client: httpx.AsyncClient, tenant: Tenant) -> None:
    users = (await client.get("/v1/users", headers=tenant.coordinator)).json()["items"]
    handler = next(u for u in users if u["role"] == "handler")
    patched = await client.patch(f"/v1/users/{handler['id']}", json={"active": False}, headers=tenant.coordinator)
    assert patched.status_code == 200
    assert (await client.get("/v1/cpts/current", headers=tenant.handler)).status_code == 401
    login = await client.post("/v1/auth/token", data={"username": tenant.emails["handler"], "password": PASSWORD})
    assert login.status_code == 401


async def test_a_role_that_may_not_gets_403_and_changes_nothing(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = {"email": "intruder@x.test", "display_name": "X", "role": "coordinator", "password": "p" * 12}
    response = await client.post("/v1/users", json=body, headers=tenant.handler)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_role"
    patch = await client.patch("/v1/cpts/current", json={"population": 1}, headers=tenant.handler)
    assert patch.status_code == 403
    users = (await client.get("/v1/users", headers=tenant.coordinator)).json()["items"]
    assert "intruder@x.test" not in {u["email"] for u in users}
    assert (await client.get("/v1/cpts/current", headers=tenant.handler)).json()["population"] == 60_000


async def test_api_key_authenticates_software_and_rotation_revokes_the_old_key(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    created = await tenant.add_client([])
    old_key = created["api_key"]
    assert old_key.startswith("snpk_")
    assert created["webhook_secret"].startswith("whsec_")
    assert (await client.get("/v1/practitioners", headers=bearer(old_key))).status_code == 200

    # Only a digest is stored, never the key.
    async with sessionmaker() as session:
        row = await session.scalar(select(SoftwareClient).where(SoftwareClient.id == created["id"]))
        assert row is not None
        assert old_key not in (row.key_digest, row.key_prefix)
        assert len(row.key_digest) == 64

    rotated = await client.post(f"/v1/clients/{created['id']}/rotate-key", headers=tenant.coordinator)
    assert rotated.status_code == 200
    new_key = rotated.json()["api_key"]
    assert new_key != old_key
    assert (await client.get("/v1/practitioners", headers=bearer(old_key))).status_code == 401
    assert (await client.get("/v1/practitioners", headers=bearer(new_key))).status_code == 200


async def test_software_may_not_use_staff_endpoints(client: httpx.AsyncClient, tenant: Tenant) -> None:
    key = (await tenant.add_client([]))["api_key"]
    assert (await client.get("/v1/users", headers=bearer(key))).status_code == 403
    assert (await client.post("/v1/clients", json={"name": "x"}, headers=bearer(key))).status_code == 403
    assert (await client.patch("/v1/cpts/current", json={"population": 2}, headers=bearer(key))).status_code == 403
