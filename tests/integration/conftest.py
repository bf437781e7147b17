from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.builders import Tenant, new_tenant


@pytest.fixture
async def tenant(client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> Tenant:
    return await new_tenant(client, sessionmaker)


@pytest.fixture
async def other_tenant(client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]) -> Tenant:
    return await new_tenant(client, sessionmaker)
