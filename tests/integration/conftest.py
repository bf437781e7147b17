from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.accounts import service as accounts
from service.db import session_scope
from service.notifications.models import OutboxMessage
from tests.builders import Tenant, new_tenant
from tests.receiver import Receiver


@pytest.fixture
async def tenant(client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> Tenant:
    return await new_tenant(client, sessionmaker)


@pytest.fixture
async def other_tenant(client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> Tenant:
    return await new_tenant(client, sessionmaker)


@pytest.fixture
async def sas_key(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    """The SAS platform's API key (the FHIR interface's principal)."""
    async with session_scope(sessionmaker) as session:
        _, key = await accounts.create_sas_client(session, "SAS (tests)", datetime.now(UTC))
    return key


@pytest.fixture
async def sas_receiver(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Receiver]:
    """A receiver on 127.0.0.1 standing for the SAS, with no message of another test pending for it."""
    running = Receiver()
    await running.start()
    # Messages other tests left for the SAS are not this test's to send.
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.destination == "sas", OutboxMessage.status == "pending")
            .values(status="dead")
        )
    yield running
    await running.stop()


@pytest.fixture
async def browser_like(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client on https (the console's session cookie is Secure), keeping cookies like a browser."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://snp.test") as http:
        yield http
