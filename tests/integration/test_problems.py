from __future__ import annotations

import httpx

from tests.builders import Tenant


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "not_found"
    wrong_method = await client.delete("/v1/cpts/current")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"


async def test_malformed_json_is_a_422_problem(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/practitioners", content=b"{not json", headers={**tenant.coordinator, "content-type": "application/json"}
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert set(problem) >= {"type", "title", "status", "detail", "code", "errors"}


async def test_validation_problems_never_echo_the_input(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/v1/practitioners",
        json={"rpps": "bad", "family_name": "Secret-Name", "given_name": "X", "profession": "10"},
        headers=tenant.coordinator,
    )
    assert response.status_code == 422
    assert "Secret-Name" not in response.text


async def test_malformed_path_id_is_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/v1/practitioners/not-a-uuid", headers=tenant.coordinator)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "practitioner_id"]


async def test_nul_characters_are_refused_with_a_4xx_wherever_they_come(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = {"rpps": "10003456786", "family_name": "Nul\u0000", "given_name": "X", "profession": "60"}
    response = await client.post("/v1/practitioners", json=body, headers=tenant.coordinator)
    assert response.status_code == 422
    assert ["body", "family_name"] in [e["loc"] for e in response.json()["errors"]]
    login = await client.post("/v1/auth/token", data={"username": "a\u0000@b.test", "password": "whatever"})
    assert login.status_code == 422
    assert login.json()["code"] == "invalid_value"
    query = await client.get("/v1/practitioners", params={"profession": "1\u0000"}, headers=tenant.handler)
    assert query.status_code == 422
