"""The hot routes (`@direct`) are served by `service.direct.DirectRoutes` over a dependency tree
compiled once. They must answer exactly what FastAPI's general path answers: every request below
is sent both ways (the direct routes switched off for the second) and the answers compared."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response

from service.direct import DirectRoutes, NotCompilable, compiled_endpoint, direct
from service.routing import TransactionalRoute
from tests.builders import Agenda, Clock, Tenant, new_agenda, next_day_at, open_request, publish, slot_item

DIRECT_OPERATIONS = {
    "cpts-get_current",
    "requests-suggestions",
    "requests-hold",
    "requests-book",
    "bookings-confirm",
    "slots-search",
}


def operation(route: Any) -> str:
    return str(route.operation_id)


def direct_routes(app: FastAPI) -> DirectRoutes:
    layer: Any = app.middleware_stack
    while not isinstance(layer, DirectRoutes):
        layer = layer.app  # every middleware of the stack keeps the next one as `app`
    return layer


@contextmanager
def general_path(app: FastAPI) -> Iterator[None]:
    """Every request goes through FastAPI's router, as before the direct routes."""
    middleware = direct_routes(app)
    kept = middleware._routes
    middleware._routes = []
    try:
        yield
    finally:
        middleware._routes = kept


@contextmanager
def served_directly(app: FastAPI) -> Iterator[list[str]]:
    """The operations the direct routes served meanwhile."""
    middleware = direct_routes(app)
    kept = middleware._routes
    served: list[str] = []

    def recording(operation: str, handler: Callable[[Request], Awaitable[Response]]) -> Any:
        async def record(request: Request) -> Response:
            served.append(operation)
            return await handler(request)

        return record

    middleware._routes = [(route, recording(operation(route), handler)) for route, handler in kept]
    try:
        yield served
    finally:
        middleware._routes = kept


def answer(response: httpx.Response) -> tuple[int, Any, str | None]:
    body = response.json() if response.content else None
    return response.status_code, body, response.headers.get("content-type")


@pytest.fixture
async def agenda(tenant: Tenant) -> Agenda:
    return await new_agenda(tenant, practitioners=2)


async def test_the_handlers_hot_routes_are_the_direct_ones(app: FastAPI, tenant: Tenant) -> None:
    assert {operation(route) for route, _ in direct_routes(app)._routes} == DIRECT_OPERATIONS


async def test_each_hot_route_is_served_directly_and_the_others_are_not(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda
) -> None:
    ids = await publish(
        agenda, [slot_item(f"d{i}", agenda.practitioners[0], next_day_at(9 + i, days=1)) for i in (0, 1)]
    )
    first, second = await open_request(tenant), await open_request(tenant)
    with served_directly(app) as served:
        assert (await client.get("/v1/cpts/current", headers=tenant.handler)).status_code == 200
        assert (await client.get(f"/v1/requests/{first['id']}/suggestions", headers=tenant.handler)).status_code == 200
        assert (await client.get("/v1/slots/search", headers=tenant.handler)).status_code == 200
        held = await client.post(f"/v1/requests/{first['id']}/hold", json={"slot_id": ids[0]}, headers=tenant.handler)
        assert held.status_code == 201, held.text
        confirmed = await client.post(f"/v1/bookings/{held.json()['booking_id']}/confirm", headers=tenant.handler)
        assert confirmed.status_code == 200, confirmed.text
        booked = await client.post(
            f"/v1/requests/{second['id']}/book", json={"slot_id": ids[1]}, headers=tenant.handler
        )
        assert booked.status_code == 201, booked.text
        assert len(served) == 6
        # Not a direct route: FastAPI's router answers it.
        assert (await client.get(f"/v1/requests/{first['id']}", headers=tenant.handler)).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
    assert sorted(served) == sorted(DIRECT_OPERATIONS)


async def test_bad_requests_get_the_same_answer_both_ways_and_change_nothing(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda
) -> None:
    [slot_id] = await publish(agenda, [slot_item("bad", agenda.practitioners[0], next_day_at(10, days=1))])
    request = await open_request(tenant)
    book = f"/v1/requests/{request['id']}/book"
    software = agenda.headers
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/cpts/current", {}),
        ("GET", "/v1/cpts/current", {"headers": {"Authorization": "Bearer not-a-token"}}),
        ("GET", "/v1/requests/not-a-uuid/suggestions", {"headers": tenant.handler}),
        ("GET", f"/v1/requests/{uuid.uuid4()}/suggestions", {"headers": tenant.handler}),
        ("GET", f"/v1/requests/{request['id']}/suggestions", {"headers": tenant.handler, "params": {"limit": 0}}),
        ("GET", f"/v1/requests/{request['id']}/suggestions", {"headers": tenant.handler, "params": {"modality": "X"}}),
        ("GET", f"/v1/requests/{request['id']}/suggestions", {"headers": software}),
        ("GET", "/v1/slots/search", {"headers": tenant.handler, "params": {"profession": "abc", "limit": 1000}}),
        ("POST", book, {"headers": tenant.handler}),  # no body
        ("POST", book, {"headers": {**tenant.handler, **json_type}, "content": b"{not json"}),
        ("POST", book, {"headers": {**tenant.handler, "Content-Type": "text/plain"}, "content": b"slot"}),
        ("POST", book, {"headers": {**tenant.handler, **json_type}, "content": b"[" * 100_000}),  # too deep
        ("POST", book, {"headers": {**tenant.handler, **json_type}, "content": b'{"slot_id": "\xff"}'}),
        ("POST", book, {"headers": tenant.handler, "json": {"slot_id": "not-a-uuid"}}),
        ("POST", book, {"headers": tenant.handler, "json": {}}),
        ("POST", book, {"headers": tenant.handler, "json": [slot_id]}),
        ("POST", book, {"headers": software, "json": {"slot_id": slot_id}}),  # a role that does not book
        ("POST", book, {"headers": {**tenant.handler, "Idempotency-Key": "x" * 300}, "json": {"slot_id": slot_id}}),
        ("POST", f"/v1/requests/{uuid.uuid4()}/book", {"headers": tenant.handler, "json": {"slot_id": slot_id}}),
        ("POST", book, {"headers": tenant.handler, "json": {"slot_id": str(uuid.uuid4())}}),
        ("POST", f"/v1/bookings/{uuid.uuid4()}/confirm", {"headers": tenant.handler}),
        ("POST", "/v1/bookings/not-a-uuid/confirm", {"headers": tenant.handler}),
        ("PUT", book, {"headers": tenant.handler, "json": {"slot_id": slot_id}}),  # not a method of the route
    ]
    for method, path, options in cases:
        directly = await client.request(method, path, **options)
        with general_path(app):
            generally = await client.request(method, path, **options)
        assert 400 <= directly.status_code < 500, (method, path, directly.text)
        assert answer(directly) == answer(generally), (method, path)
        assert directly.headers.get("www-authenticate") == generally.headers.get("www-authenticate")
    [slot] = [s for s in await agenda.slots() if s["id"] == slot_id]
    assert slot["status"] == "free"
    still = await client.get(f"/v1/requests/{request['id']}", headers=tenant.handler)
    assert still.json()["status"] == "open"


async def test_a_booking_and_its_idempotent_replay_are_the_same_both_ways(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda
) -> None:
    ids = await publish(agenda, [slot_item(f"r{i}", agenda.practitioners[i], next_day_at(11, days=1)) for i in (0, 1)])
    first, second = await open_request(tenant), await open_request(tenant)
    key = {**tenant.handler, "Idempotency-Key": f"direct-{uuid.uuid4()}"}
    booked = await client.post(f"/v1/requests/{first['id']}/book", json={"slot_id": ids[0]}, headers=key)
    with general_path(app):
        replayed = await client.post(f"/v1/requests/{first['id']}/book", json={"slot_id": ids[0]}, headers=key)
        other = await client.post(f"/v1/requests/{second['id']}/book", json={"slot_id": ids[1]}, headers=tenant.handler)
    assert booked.status_code == 201, booked.text
    assert (replayed.status_code, replayed.json()) == (201, booked.json())
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert other.status_code == 201
    assert set(other.json()) == set(booked.json())
    assert (booked.headers["content-type"], other.headers["content-type"]) == ("application/json",) * 2
    # ...and the other way round: booked through FastAPI's router, replayed directly.
    again = await client.post(f"/v1/requests/{second['id']}/book", json={"slot_id": ids[1]}, headers=tenant.handler)
    assert again.status_code == 409  # the request is booked: no second slot
    with general_path(app):
        refused = await client.post(
            f"/v1/requests/{second['id']}/book", json={"slot_id": ids[1]}, headers=tenant.handler
        )
    assert answer(again) == answer(refused)


async def test_the_direct_routes_keep_the_tests_clock(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda, clock: Clock
) -> None:
    """`app.dependency_overrides` (the tests' clock) holds on the direct path as on FastAPI's."""
    [slot_id] = await publish(agenda, [slot_item("late", agenda.practitioners[0], next_day_at(10, days=1))])
    request = await open_request(tenant)
    clock.now += timedelta(days=2)  # the slot is in the past by then
    await tenant.relogin()
    path = f"/v1/requests/{request['id']}/book"
    directly = await client.post(path, json={"slot_id": slot_id}, headers=tenant.handler)
    with general_path(app):
        generally = await client.post(path, json={"slot_id": slot_id}, headers=tenant.handler)
    assert directly.status_code == 409, directly.text
    assert answer(directly) == answer(generally)


def _route(endpoint: Callable[..., Any]) -> TransactionalRoute:
    router = APIRouter(route_class=TransactionalRoute)
    router.add_api_route("/probe", direct(endpoint), methods=["GET"])
    route = router.routes[0]
    assert isinstance(route, TransactionalRoute)
    return route


async def _yielding() -> Any:
    yield 1


def test_a_tree_the_direct_routes_cannot_serve_is_refused_when_the_app_is_built() -> None:
    async def with_yield(value: Annotated[int, Depends(_yielding)]) -> Response:
        return Response()

    async def with_response(response: Response) -> Response:
        return response

    async def with_model(value: int = 1) -> dict[str, int]:
        return {"value": value}

    cases = ((with_yield, "async generator"), (with_response, "Response parameter"), (with_model, "answers a Response"))
    for endpoint, reason in cases:
        with pytest.raises(NotCompilable, match=reason):
            compiled_endpoint(_route(endpoint))


async def test_a_body_of_unknown_length_past_the_limit_is_refused_alike_both_ways(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    request = await open_request(tenant)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b'{"slot_id": "'
        for _ in range(5 * 1024):
            yield b"0" * 1024
        yield b'"}'

    path = f"/v1/requests/{request['id']}/book"
    headers = {**tenant.handler, "Content-Type": "application/json"}
    with caplog.at_level(logging.ERROR):
        directly = await client.post(path, content=chunks(), headers=headers)
        with general_path(app):
            generally = await client.post(path, content=chunks(), headers=headers)
    assert (directly.status_code, directly.json()["code"]) == (413, "payload_too_large")
    assert answer(directly) == answer(generally)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no unhandled error behind the 413
