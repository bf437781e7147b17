from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from service import migrate
from service.config import Settings
from service.main import create_app
from tests import dbserver
from tests.conftest import METRICS_TOKEN, make_settings


async def get(app: FastAPI, path: str) -> httpx.Response:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://snp.test") as http:
            return await http.get(path)


async def test_live_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_not_ready_when_the_database_is_down(settings: Settings) -> None:
    app = create_app(make_settings("postgresql://postgres@127.0.0.1:1/nowhere"))
    response = await get(app, "/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"


async def test_not_ready_when_the_schema_is_behind(server_url: str) -> None:
    behind = await dbserver.create_database(server_url, "snp_behind")
    try:
        await asyncio.to_thread(migrate.upgrade, behind, "0001")  # the first migration only
        response = await get(create_app(make_settings(behind)), "/readyz")
        assert (response.status_code, response.json()["code"]) == (503, "schema_behind")
        assert "0001" in response.json()["detail"]
    finally:
        await dbserver.drop_database(server_url, behind)


async def test_a_lost_database_connection_is_a_503_to_retry_then_the_service_recovers(
    settings: Settings, server_url: str
) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://snp.test") as http:
            credentials = {"username": "nobody@snp.test", "password": "wrong password"}
            assert (await http.post("/v1/auth/token", data=credentials)).status_code == 401
            await dbserver.cut_pooled_connection(app.state.engine, server_url)
            lost = await http.post("/v1/auth/token", data=credentials)
            assert (lost.status_code, lost.json()["code"], lost.headers["retry-after"]) == (
                503,
                "database_unavailable",
                "1",
            )
            assert (await http.post("/v1/auth/token", data=credentials)).status_code == 401


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient, app: FastAPI) -> None:
    request_id = "0b5c0b5c-0000-4000-8000-00000000abcd"
    await client.get(f"/v1/requests/{request_id}")  # 401: no credentials
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
    metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert metrics.status_code == 200
    assert 'snp_http_requests_total{method="GET",route="/v1/requests/{request_id}",status="401"}' in metrics.text
    assert request_id not in metrics.text  # the template, never the raw path


async def test_every_answer_carries_a_request_id(client: httpx.AsyncClient) -> None:
    mine = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["x-request-id"]) == 32


async def test_metrics_need_a_token_outside_development(database_url: str) -> None:
    production = create_app(make_settings(database_url, SNP_METRICS_TOKEN=None))
    refused = await get(production, "/metrics")
    assert (refused.status_code, refused.json()["code"]) == (403, "metrics_token_required")
