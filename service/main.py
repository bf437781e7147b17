"""Application factory: `uvicorn --factory service.main:create_app`, or `snp serve`."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.routing import APIRoute

from service import embedded_db, health, migrate, reports_process
from service.accounts import principals
from service.accounts import router as accounts_router
from service.accounts.domain import password_hasher
from service.auth import security_scheme_definitions
from service.body_limit import BodyLimitMiddleware
from service.bookings import router as bookings_router
from service.config import Settings, db_timeouts, get_settings, webhook_policy
from service.connectors import router as connectors_router
from service.console import router as console
from service.cpts import router as cpts_router
from service.db import (
    connector,
    count_round_trips,
    create_engine,
    create_sessionmaker,
    reading_engine,
    refuse_row_locks_outside_transactions,
)
from service.direct import DirectRoutes
from service.fhir import appointments
from service.fhir import router as fhir_router
from service.flows import slot_pull
from service.idempotency import response_cipher
from service.imports import router as imports_router
from service.logging import configure_logging
from service.notifications import patients, relay
from service.notifications import router as notifications_router
from service.observability import RequestContextMiddleware
from service.openapi import install_openapi
from service.orientation import router as orientation_router
from service.practitioners import router as practitioners_router
from service.problems import install_problem_handlers
from service.reference import communes
from service.reporting import router as reporting_router
from service.reports_process import ReportForwardingMiddleware
from service.routing import direct_routes
from service.slots import router as slots_router

API_DESCRIPTION = """Backend of a CPTS's unscheduled-care (SNP) mission: practice software publishes
slots, call handlers orient patients and book them within 24 hours, coordinators export the
indicators and the compensation owed to professionals.

Errors are RFC 9457 `application/problem+json` documents with a stable `code`."""


async def _stop_worker(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await task


def _operation_id(route: APIRoute) -> str:
    return route.operation_id or route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            url = settings.database_url
            if url is None:  # started without `snp serve` and without DATABASE_URL
                admin_url = stack.enter_context(embedded_db.embedded_server(settings.data_dir))
                await embedded_db.ensure_database(admin_url, embedded_db.EMBEDDED_DATABASE)
                url = embedded_db.database_url(admin_url, embedded_db.EMBEDDED_DATABASE)
            engine = create_engine(url, settings.db_pool_size, settings.db_max_overflow, db_timeouts(settings))
            stack.push_async_callback(engine.dispose)
            count_round_trips(engine)
            refuse_row_locks_outside_transactions(engine)
            # Principals cached between requests while a connection listens for their changes.
            principals.empty_on_own_commits(engine, app.state.principals)
            stop_listening = asyncio.Event()
            listener = asyncio.create_task(
                principals.listen(
                    connector(url, db_timeouts(settings), principals.APPLICATION_NAME),
                    app.state.principals,
                    stop_listening,
                )
            )
            stack.push_async_callback(_stop_worker, stop_listening, listener)
            app.state.engine = engine
            app.state.sessionmaker = create_sessionmaker(engine)
            app.state.reading_engine = reading_engine(engine)
            if settings.reports_socket:
                app.state.reports = await stack.enter_async_context(
                    reports_process.transport_for(settings.reports_socket)
                )
            # The console's commune search indexes 35 000 names once: now, not on a handler's first call.
            await anyio.to_thread.run_sync(communes.warm)
            if settings.relay_enabled:  # webhooks, messages to patients, appointments to the SAS
                # ...and the slots pulled from agenda software's SAS interfaces (FHIR sources).
                for worker in (
                    relay.run_forever,
                    patients.run_forever,
                    appointments.run_forever,
                    slot_pull.run_forever,
                ):
                    stop = asyncio.Event()
                    task = asyncio.create_task(worker(app.state.sessionmaker, settings, stop))
                    stack.push_async_callback(_stop_worker, stop, task)
            # What startup built (routes, models, compiled statements) lives as long as the process:
            # kept out of the collector's scans, a full collection over a month's report stalls
            # the worker for a few tens of milliseconds instead of a hundred.
            gc.freeze()
            yield

    app = FastAPI(
        title="SNP orientation and slot-booking service",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # The service's observability is its Prometheus metrics and structlog lines; FastAPI's own
        # OpenTelemetry check (a provider lookup on every request) is off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.principals = principals.PrincipalCache(settings.principal_cache_seconds)
    app.state.schema_head = migrate.head_revision()
    app.state.password_hasher = password_hasher(settings.argon2_time_cost, settings.argon2_memory_kib)
    app.state.response_cipher = response_cipher(settings.secret_key.get_secret_value())
    app.state.webhook_policy = webhook_policy(settings)
    install_problem_handlers(app)
    install_openapi(app, security_scheme_definitions())
    # A request is matched against the routes in this order, one by one (a booking used to be
    # compared with 45 routes, twice: an eighth of its CPU). The handlers' and the SAS's routes come
    # first (with the CPTS's settings, which every client reads); no two routers' paths overlap,
    # which `tests/unit/test_route_order.py` checks.
    routers = (
        health.router,
        cpts_router.router,
        notifications_router.feed_router,  # before /v1/bookings/{booking_id}
        bookings_router.router,
        orientation_router.router,
        slots_router.router,
        fhir_router.router,
        accounts_router.auth_router,
        accounts_router.router,
        connectors_router.router,
        practitioners_router.router,
        notifications_router.deliveries_router,
        notifications_router.sas_router,
        reporting_router.router,
        imports_router.router,
    )
    # Innermost: the hot routes (`@direct`) served without FastAPI's own layers.
    app.add_middleware(DirectRoutes, routes=direct_routes(routers))
    app.add_middleware(ReportForwardingMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestContextMiddleware)  # outermost: every answer gets its request id
    for router in routers:
        app.include_router(router)
    console.install(app)
    return app
