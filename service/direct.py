"""The hot endpoints served without FastAPI's per-request machinery.

Between the server and a one-query GET, FastAPI and Starlette spent a quarter of the worker's CPU
on their own layers: the exception and exit-stack middleware, matching the path against every
included router, wrapping the request twice, and solving the dependency tree generically (the
scopes, the generator checks and the four parameter kinds of every node, on every request). For
the handlers' and the SAS's most frequent requests, marked `@direct`, `DirectRoutes` matches the
path against those few routes only and runs the route's own handler (`TransactionalRoute`: its
transaction, its idempotency) over a dependency tree compiled once (`compiled_endpoint`).

What is not compiled is still FastAPI's: the validation of parameters and bodies
(`request_params_to_args`, `request_body_to_args`), the 422 it raises, the exception handlers of
the app, the route's declaration (OpenAPI). A route marked `@direct` whose tree holds anything else
(a generator dependency, a `Response` parameter, security scopes, a form) is refused when the app
is built; a body that is not plain JSON goes the general way, where FastAPI answers it as before.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fastapi import HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant, request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_DIRECT = "_snp_direct"
# Handled by Starlette's ServerErrorMiddleware, outside every middleware of the app's (a 500).
_LAST_RESORT = (500, Exception)
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
Handler = Callable[[Request], Awaitable[Response]]


def direct(endpoint: Endpoint) -> Endpoint:
    """Serve this endpoint through `DirectRoutes` (a hot path; its answer must be a `Response`)."""
    setattr(endpoint, _DIRECT, True)
    return endpoint


def is_direct(endpoint: Callable[..., Any]) -> bool:
    return bool(getattr(endpoint, _DIRECT, False))


class NotCompilable(TypeError):
    """A dependency tree with something `compiled_endpoint` does not do."""


@dataclass(frozen=True, slots=True)
class _Node:
    """A dependency (or the endpoint), with what FastAPI would find out about it on every request."""

    call: Callable[..., Any]
    name: str | None
    is_coroutine: bool
    use_cache: bool
    children: tuple[_Node, ...]
    request_param: str | None
    path_params: Sequence[Any]
    query_params: Sequence[Any]
    header_params: Sequence[Any]
    body_params: Sequence[Any]


def _compile(dependant: Dependant) -> _Node:
    call = dependant.call
    if call is None:  # pragma: no cover - FastAPI gives every dependant its callable
        raise NotCompilable("a dependency without a callable")
    unsupported = [
        what
        for what, present in (
            ("a cookie parameter", dependant.cookie_params),
            ("a WebSocket or HTTPConnection parameter", dependant.websocket_param_name),
            ("an HTTPConnection parameter", dependant.http_connection_param_name),
            ("a Response parameter", dependant.response_param_name),
            ("a BackgroundTasks parameter", dependant.background_tasks_param_name),
            ("security scopes", dependant.security_scopes_param_name or dependant.own_oauth_scopes),
            ("a concurrency limit", dependant.concurrency),
            ("a generator (a dependency with yield)", inspect.isgeneratorfunction(call)),
            ("an async generator (a dependency with yield)", inspect.isasyncgenfunction(call)),
        )
        if present
    ]
    if unsupported:
        raise NotCompilable(f"{getattr(call, '__qualname__', call)}: {', '.join(unsupported)}")
    return _Node(
        call=call,
        name=dependant.name,
        is_coroutine=inspect.iscoroutinefunction(call),
        use_cache=dependant.use_cache,
        children=tuple(_compile(sub) for sub in dependant.dependencies),
        request_param=dependant.request_param_name,
        path_params=tuple(dependant.path_params),
        query_params=tuple(dependant.query_params),
        header_params=tuple(dependant.header_params),
        body_params=tuple(dependant.body_params),
    )


@dataclass(slots=True)
class _Solving:
    """One request's solving: its values cache and the errors found (FastAPI's order and rules)."""

    request: Request
    body: Any
    embed_body_fields: bool
    overrides: Mapping[Callable[..., Any], Callable[..., Any]]
    path: str
    cache: dict[Callable[..., Any], Any]
    errors: list[Any]

    async def values(self, node: _Node) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for child in node.children:
            if child.use_cache and child.call in self.cache:
                solved = self.cache[child.call]
            else:
                used = child
                override = self.overrides.get(child.call) if self.overrides else None
                if override is not None:  # as FastAPI: the override's own parameters, solved
                    used = _compile(get_dependant(path=self.path, call=override, name=child.name))
                errors_before = len(self.errors)
                arguments = await self.values(used)
                if len(self.errors) > errors_before:
                    continue
                solved = await used.call(**arguments) if used.is_coroutine else await _in_thread(used.call, arguments)
                self.cache.setdefault(child.call, solved)
            if child.name is not None:
                values[child.name] = solved
        request = self.request
        for fields, received in (
            (node.path_params, request.path_params),
            (node.query_params, request.query_params),
            (node.header_params, request.headers),
        ):
            if fields:
                found, errors = request_params_to_args(fields, received)
                values.update(found)
                self.errors.extend(errors)
        if node.body_params:
            found, errors = await request_body_to_args(list(node.body_params), self.body, self.embed_body_fields)
            values.update(found)
            self.errors.extend(errors)
        if node.request_param:
            values[node.request_param] = request
        return values


async def _in_thread(call: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    # A plain function dependency runs in the thread pool, as FastAPI runs it.
    return await run_in_threadpool(call, **arguments)


class _Route(Protocol):
    """What `compiled_endpoint` and `DirectRoutes` read of a route (a `routing.TransactionalRoute`)."""

    path: str
    endpoint: Callable[..., Any]
    dependant: Dependant
    _embed_body_fields: bool

    def matches(self, scope: Scope) -> tuple[Match, Scope]: ...


class NotPlainJson(Exception):
    """A body FastAPI reads its own way (empty, another media type, invalid JSON): go the general way."""


def compiled_endpoint(route: _Route) -> Handler:
    """The endpoint of `route` with its dependencies solved as FastAPI would, from a tree compiled
    once: `Request -> Response`. Raises `NotCompilable` for a tree it cannot serve."""
    tree = _compile(route.dependant)
    answers = inspect.signature(route.endpoint).return_annotation
    if answers not in (Response, "Response"):  # FastAPI would validate and serialise anything else
        raise NotCompilable(f"{route.path}: a direct endpoint answers a Response, not {answers}")
    needs_body = _any_body(tree)
    embed = bool(getattr(route, "_embed_body_fields", False))
    endpoint = tree.call
    path = route.path

    async def handle(request: Request) -> Response:
        body = await _json_body(request) if needs_body else None
        solving = _Solving(request, body, embed, request.app.dependency_overrides, path, {}, [])
        arguments = await solving.values(tree)
        if solving.errors:
            raise RequestValidationError(solving.errors, body=body)
        response: Response = await endpoint(**arguments)
        return response

    return handle


def _any_body(node: _Node) -> bool:
    return bool(node.body_params) or any(_any_body(child) for child in node.children)


async def _json_body(request: Request) -> Any:
    """The JSON of a body FastAPI would parse as JSON; anything else is left to FastAPI."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise NotPlainJson
    try:
        raw = await request.body()
    except Exception as exc:  # the caller went, or the body limit cut it (413 sent): FastAPI's answer
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
    if not raw:
        raise NotPlainJson
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # invalid, not UTF-8, nested too deep: FastAPI answers it (422, 400)
        raise NotPlainJson from None


class DirectRoutes:
    """Pure ASGI middleware, innermost of the app's: a request for a `@direct` route is served here,
    within the app's exception handlers; any other goes on to FastAPI's router."""

    def __init__(self, app: ASGIApp, routes: Iterable[tuple[_Route, Handler]]) -> None:
        self.app = app
        self._routes = list(routes)
        self._handled: ExceptionMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route, handler in self._routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope["route"] = route
                    scope.update(child)
                    scope.setdefault("router", scope["app"].router)
                    scope["snp.direct_handler"] = handler
                    await self._exception_handled(scope["app"])(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _exception_handled(self, application: Any) -> ExceptionMiddleware:
        if self._handled is None:  # the app's handlers, as its own ExceptionMiddleware has them
            handlers = {key: value for key, value in application.exception_handlers.items() if key not in _LAST_RESORT}
            self._handled = ExceptionMiddleware(self._serve, handlers=handlers)
        return self._handled

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        handler: Handler = scope["snp.direct_handler"]
        try:
            response = await handler(request)
        except NotPlainJson:
            # FastAPI reads this body its own way; it was read here, so it is given again.
            await self.app(scope, _replaying(await request.body(), receive), send)
            return
        await response(scope, receive, send)


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
