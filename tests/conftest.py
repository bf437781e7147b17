from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import migrate
from service.clock import request_now, utc_now
from service.config import Environment, Settings
from service.main import create_app
from tests import dbserver
from tests.builders import Clock

TEST_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with dbserver.admin_url() as url:
        yield url


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    url = await dbserver.create_database(server_url)
    migrate.upgrade(url)
    yield url
    await dbserver.drop_database(server_url, url)


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "SNP_ENV": Environment.test,
        "SNP_SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": database_url,
        "SNP_ARGON2_TIME_COST": 1,
        "SNP_ARGON2_MEMORY_KIB": 64,
        "SNP_DB_POOL_SIZE": 20,
        "SNP_DB_MAX_OVERFLOW": 60,
        "SNP_RELAY_ENABLED": False,
        "SNP_LOG_LEVEL": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def sessionmaker(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    maker = app.state.sessionmaker
    assert isinstance(maker, async_sessionmaker)
    return maker


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://snp.test") as http:
        yield http


@pytest.fixture
def clock(app: FastAPI) -> Iterator[Clock]:
    """The service's clock, settable by the test (the `Now` dependency)."""
    moving = Clock(utc_now())

    def now() -> datetime:
        return moving.now

    app.dependency_overrides[request_now] = now
    yield moving
    app.dependency_overrides.pop(request_now, None)
