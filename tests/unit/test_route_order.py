"""The order of the routers in `main.create_app` is chosen for speed (the handlers' routes first, as
a request is compared with the routes one by one). That is safe only because no two routers'
paths overlap: whatever their order, a request reaches the same route. Checked here on every route
of the app, with a path made from its template."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import BaseRoute

from service.config import Environment, Settings
from service.main import create_app

# Overlaps between routers that the order settles on purpose: (matched first, would catch it too).
INTENDED = {("/v1/bookings/feed", "/v1/bookings/{booking_id}")}
_PARAM = re.compile(r"{([^}:]+)(?::([^}]+))?}")


def _leaf_routes(routes: list[BaseRoute]) -> Iterator[Any]:
    """The app's routes in the order a request meets them (FastAPI 0.16x wraps each included router)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                yield context.starlette_route or context.original_route
        else:
            yield route


def _sample_path(template: str) -> str:
    def value(match: re.Match[str]) -> str:
        return "static/app.css" if match.group(2) == "path" else "00000000-0000-4000-8000-000000000001"

    return _PARAM.sub(value, template)


@pytest.fixture(scope="module")
def routes() -> list[Any]:
    settings = Settings(SNP_ENV=Environment.development, SNP_SECRET_KEY="route-order", DATABASE_URL="postgresql://u/u")
    found = [r for r in _leaf_routes(create_app(settings).router.routes) if hasattr(r, "path_regex")]
    assert len(found) > 100, "the walk did not find the app's routes"
    return found


def _methods(route: Any) -> set[str]:
    return set(route.methods) if getattr(route, "methods", None) else {"GET", "POST"}


def _module(route: Any) -> str:
    endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
    return str(getattr(endpoint, "__module__", type(endpoint).__module__))


def _template(route: Any) -> str:
    return str(getattr(route, "path_format", None) or route.path)


def test_every_route_is_reached_by_its_own_paths(routes: list[Any]) -> None:
    for route in routes:
        path = _sample_path(_template(route))
        for method in _methods(route):
            first = next(r for r in routes if r.path_regex.match(path) and (method in _methods(r) or r is route))
            assert first is route, f"{method} {path} reaches {_template(first)} before {_template(route)}"


def test_no_two_routers_paths_overlap(routes: list[Any]) -> None:
    """Routes of different modules never answer the same path and method, so the routers' order
    changes nothing (but the intended overlaps above)."""
    for route in routes:
        path = _sample_path(_template(route))
        for other in routes:
            if other is route or _module(other) == _module(route):
                continue
            if (_template(route), _template(other)) in INTENDED:
                continue
            if other.path_regex.match(path) and _methods(route) & _methods(other):
                pytest.fail(f"{_template(other)} ({_module(other)}) also answers {path}")
