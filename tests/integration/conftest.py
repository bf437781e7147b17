from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.accounts import service as accounts
from service.db import session_scope
from tests.builders import Tenant, new_tenant


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
