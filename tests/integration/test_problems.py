from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from service.config import Settings
from service.db import SessionDep
from service.main import create_app
from service.routing import api_router
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


@pytest.mark.parametrize("errcode", ["deadlock_detected", "serialization_failure"])
async def test_a_deadlock_or_serialization_failure_is_a_503_to_retry(settings: Settings, errcode: str) -> None:
    """PostgreSQL rolls such a transaction back whole: the client is told to retry, not that the
    service failed. The error is raised by the real server, through the real session."""
    app = create_app(settings)
    router = api_router()

    @router.get("/test/collide")
    async def collide(session: SessionDep) -> dict[str, str]:
        await session.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'collision' USING ERRCODE = '{errcode}'; END $$"))
        return {}

    app.include_router(router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://snp.test") as http:
            answer = await http.get("/test/collide")
    assert (answer.status_code, answer.json()["code"], answer.headers["retry-after"]) == (
        503,
        "concurrency_conflict",
        "1",
    )
    assert answer.headers["content-type"] == "application/problem+json"
