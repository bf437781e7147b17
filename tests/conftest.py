from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
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
METRICS_TOKEN = "metrics-token-for-the-tests"


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


def snp_environment(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of an `snp` command run as a process on a test database (the CLI, a live
    `snp serve`): the tests' secret, cheap password hashing."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SNP_SECRET_KEY": TEST_SECRET,
        "SNP_ENV": "test",
        "SNP_ARGON2_TIME_COST": "1",
        "SNP_ARGON2_MEMORY_KIB": "64",
        **extra,
    }


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
        # Webhook tests deliver to a receiver on 127.0.0.1 over plain http.
        "SNP_WEBHOOK_ALLOW_HTTP": True,
        "SNP_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "SNP_METRICS_TOKEN": METRICS_TOKEN,
        # Every test client calls from 127.0.0.1: the per-address limit is tested on an address of its own.
        "SNP_LOGIN_MAX_FAILURES_PER_ADDRESS": 100_000,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


# Webhook URLs the tests register are checked against this table instead of DNS (there is none
# here). The address (example.com's, IANA's host for examples) stands for "a public host": the
# relay never uses this table, so nothing is ever sent there (the relay's own checks are tested in
# tests/integration/test_webhook_destinations.py with resolvers of their own).
TEST_HOSTS = {"agenda.example": ["93.184.215.14"], "hooks.example": ["93.184.215.14"]}


async def test_resolver(host: str, port: int) -> list[str]:
    if host in TEST_HOSTS:
        return TEST_HOSTS[host]
    if host in ("127.0.0.1", "localhost"):
        return ["127.0.0.1"]
    raise OSError(f"{host} does not resolve in the tests")


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    application.state.webhook_policy = replace(application.state.webhook_policy, resolver=test_resolver)
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
