"""The hot reads the driver runs itself (`db.DriverStatement`): the same answer as the ORM's, and
the same behaviour when the database connection is lost (503 + Retry-After, then recovery)."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.config import Settings
from service.db import DriverStatement, begin_on_server, fetchrow
from service.main import create_app
from tests import dbserver
from tests.builders import new_tenant, open_request
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
            assert app.state.engine.sync_engine.pool.checkedout() == 0  # the broken one dropped, not held


async def test_driver_reads_in_a_repeatable_read_session_are_one_snapshot_once_begun_on_the_server(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The export's batches (read by the driver) see the month as it was when the export began,
    whatever is written meanwhile: its transaction is begun on the server before the first one."""
    tenant = await new_tenant(client, sessionmaker)
    counted = DriverStatement(text("SELECT count(*) FROM care_request WHERE cpts_id = :cpts_id"))
    async with sessionmaker() as session, session.begin():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        conn = await begin_on_server(session)
        before = await fetchrow(conn, counted, cpts_id=tenant.cpts_id)
        await open_request(tenant)  # committed by the API meanwhile
        after = await fetchrow(conn, counted, cpts_id=tenant.cpts_id)
    assert before is not None
    assert after is not None
    assert after[0] == before[0]
    async with sessionmaker() as session:
        now = await fetchrow(await session.connection(), counted, cpts_id=tenant.cpts_id)
    assert now is not None
    assert now[0] == before[0] + 1
