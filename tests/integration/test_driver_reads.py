"""The hot reads the driver runs itself (`db.DriverStatement`): the same answer as the ORM's, and
the same behaviour when the database connection is lost (503 + Retry-After, then recovery)."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.config import Settings
from service.main import create_app
from tests import dbserver
from tests.builders import new_tenant
from tests.integration.test_principal_cache import listening, wait_for


async def test_the_settings_read_by_the_driver_are_those_the_orm_builds(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await new_tenant(client, sessionmaker)
    # PATCH answers from the ORM's entity (`cpts.service.to_out`), GET from the driver's row.
    patched = await client.patch("/v1/cpts/current", json={"min_lead_minutes": 45}, headers=tenant.coordinator)
    assert patched.status_code == 200, patched.text
    read = await client.get("/v1/cpts/current", headers=tenant.handler)
    assert read.status_code == 200
    assert read.json() == patched.json()
    assert read.json()["min_lead_minutes"] == 45
    assert read.json()["compensation"]


async def test_a_connection_lost_under_a_driver_read_is_a_503_to_retry_then_the_service_recovers(
    settings: Settings, server_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://snp.test") as http:
            tenant = await new_tenant(http, sessionmaker)
            await wait_for(lambda: listening(app), within=6.0)  # principals are cached while it listens
            for _ in range(2):  # the second read finds its principal cached: the driver's statement alone
                assert (await http.get("/v1/cpts/current", headers=tenant.handler)).status_code == 200
            await dbserver.cut_pooled_connection(app.state.engine, server_url)
            lost = await http.get("/v1/cpts/current", headers=tenant.handler)
            assert (lost.status_code, lost.json()["code"], lost.headers["retry-after"]) == (
                503,
                "database_unavailable",
                "1",
            )
            assert (await http.get("/v1/cpts/current", headers=tenant.handler)).status_code == 200
