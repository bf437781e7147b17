"""One transaction per HTTP request, committed before the response is sent.

`TransactionalRoute` opens the session, runs the endpoint (dependencies, work, serialisation),
stores the answer for an `Idempotency-Key` in the same transaction, commits, and only then hands
the response to the server. Any error rolls everything back. The hot reads marked
`statements_alone` run without an explicit transaction, each statement on its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from service import auth, direct, idempotency
from service.db import ReadingDatabase, untouched

READS = frozenset({"GET", "HEAD"})
_ALONE = "_snp_statements_alone"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def statements_alone(endpoint: Endpoint) -> Endpoint:
    """Mark a read whose statements may each commit on their own (`db.ReadingDatabase`):
    the hot reads of the handlers and of the SAS, which then save BEGIN and COMMIT. Not for a read
    that streams (a server-side cursor needs a transaction) or wants one snapshot for several
    statements (REPEATABLE READ); a row lock there is refused (`db.refuse_row_locks_outside_transactions`)."""
    setattr(endpoint, _ALONE, True)
    return endpoint


def serialized(answer: BaseModel, status_code: int = 200) -> Response:
    """An answer already validated (the service built it), serialised once by pydantic's core: FastAPI
    would dump it, validate the dump against the response model and serialise it again (a hot
    read spends a third of its CPU there). The route declares `response_model` for the docs."""
    return Response(answer_bytes(answer), status_code=status_code, media_type="application/json")


def answer_bytes(answer: BaseModel) -> bytes:
    """The body `serialized` sends (an idempotent replay renders the same)."""
    return answer.model_dump_json(by_alias=True).encode()


class TransactionalRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if auth.is_secured(self.dependant):  # the principal dependencies read the header themselves
            self.openapi_extra = {**(self.openapi_extra or {}), "security": auth.SECURITY_REQUIREMENT}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self._in_transaction(super().get_route_handler())

    def direct_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The same handler over the dependency tree compiled once (`direct.DirectRoutes`)."""
        return self._in_transaction(direct.compiled_endpoint(self))

    def _in_transaction(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        alone = bool(getattr(self.endpoint, _ALONE, False)) and (self.methods or set()) <= READS

        async def reading_handler(request: Request) -> Response:
            reads = request.state.reads = ReadingDatabase(request.app.state.reading_engine)
            try:
                response = await handler(request)
                if reads.session is not None:  # what the read wrote through its session (an audit row)
                    await (reads.session.commit() if response.status_code < 400 else reads.session.rollback())
                return response
            finally:
                await reads.close()

        async def transactional_handler(request: Request) -> Response:
            session = request.state.db_session = request.app.state.sessionmaker()
            try:
                try:
                    response = await handler(request)
                except idempotency.IdempotentReplay as replay:
                    await _rollback(session)
                    return replay.response()
                except BaseException:
                    await _rollback(session)
                    raise
                if response.status_code >= 400:
                    await _rollback(session)
                    return response
                claim = getattr(request.state, "idempotency_claim", None)
                if claim is not None:
                    await idempotency.store_response(session, request.app.state.response_cipher, claim, response)
                if not untouched(session):
                    await session.commit()
                return response
            finally:
                if not untouched(session):
                    await session.close()

        return reading_handler if alone else transactional_handler


async def _rollback(session: AsyncSession) -> None:
    if not untouched(session):
        await session.rollback()


def api_router(**kwargs: object) -> APIRouter:
    return APIRouter(route_class=TransactionalRoute, **kwargs)  # type: ignore[arg-type]


def direct_routes(routers: Iterable[APIRouter]) -> list[tuple[TransactionalRoute, direct.Handler]]:
    """The routes marked `@direct` among `routers`, each with its compiled handler (a tree that cannot
    be compiled fails here, when the app is built)."""
    return [
        (route, route.direct_handler())
        for router in routers
        for route in router.routes
        if isinstance(route, TransactionalRoute) and direct.is_direct(route.endpoint)
    ]
