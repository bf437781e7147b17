"""One transaction per HTTP request, committed before the response is sent.

`TransactionalRoute` opens the session, runs the endpoint (dependencies, work, serialisation),
stores the answer for an `Idempotency-Key` in the same transaction, commits, and only then hands
the response to the server. Any error rolls everything back.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from service import idempotency


class TransactionalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def transactional_handler(request: Request) -> Response:
            async with request.app.state.sessionmaker() as session:
                request.state.db_session = session
                try:
                    response = await handler(request)
                except idempotency.IdempotentReplay as replay:
                    await session.rollback()
                    return replay.response()
                except BaseException:
                    await session.rollback()
                    raise
                if response.status_code >= 400:
                    await session.rollback()
                    return response
                claim = getattr(request.state, "idempotency_claim", None)
                if claim is not None:
                    await idempotency.store_response(session, request.app.state.response_cipher, claim, response)
                await session.commit()
                return response

        return transactional_handler


def api_router(**kwargs: object) -> APIRouter:
    return APIRouter(route_class=TransactionalRoute, **kwargs)  # type: ignore[arg-type]
