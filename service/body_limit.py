"""Request bodies are bounded before anything parses them (pure ASGI middleware).

- A body larger than `SNP_MAX_BODY_BYTES` is refused with a 413 problem, from its Content-Length
  before a byte is read, or as soon as a body without one goes past the limit.
- A body larger than `SNP_UNAUTHENTICATED_BODY_BYTES` (or one of unknown length) is read only for a
  caller whose credentials check out: a staff token with a valid signature, or an active API key.
  Without them the answer is a 401 problem, and a stranger cannot make a worker parse megabytes.
  (The route authenticates again, fully: this is only the gate in front of the parser.)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.accounts.domain import API_KEY_PREFIX, SAS_KEY_PREFIX, api_key_digest, token_signature_valid
from service.problems import refusal

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_ACTIVE_KEY = text("SELECT 1 FROM software_client WHERE key_digest = :digest AND active")
_ACTIVE_SAS_KEY = text("SELECT 1 FROM sas_client WHERE key_digest = :digest AND active")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings = state.settings
        headers = dict(scope["headers"])
        declared = _content_length(headers)
        if declared is not None and declared > settings.max_body_bytes:
            await _too_large(scope, receive, send, settings.max_body_bytes)
            return
        if (declared is None or declared > settings.unauthenticated_body_bytes) and not await _credentials_check_out(
            state, headers.get(b"authorization", b"")
        ):
            detail = "A body this large is read only for an authenticated caller."
            await refusal(scope["path"], 401, "unauthenticated", detail)(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send, settings.max_body_bytes)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """A body of unknown length (chunked): counted as it comes, refused once past the limit."""
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not refused:
                    refused = True
                    await refusal(scope["path"], 413, "payload_too_large", _detail(limit))(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the 413 already went out: the application's answer is dropped
                await send(message)

        await self.app(scope, counting_receive, guarded_send)


def _content_length(headers: dict[bytes, bytes]) -> int | None:
    value = headers.get(b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _detail(limit: int) -> str:
    return f"The request body is larger than {limit} bytes."


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    await refusal(scope["path"], 413, "payload_too_large", _detail(limit))(scope, receive, send)


async def _credentials_check_out(state: Any, authorization: bytes) -> bool:
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    if token.startswith(API_KEY_PREFIX):
        async with state.sessionmaker() as session:
            return (await session.scalar(_ACTIVE_KEY, {"digest": api_key_digest(token)})) is not None
    if token.startswith(SAS_KEY_PREFIX):
        async with state.sessionmaker() as session:
            return (await session.scalar(_ACTIVE_SAS_KEY, {"digest": api_key_digest(token)})) is not None
    return token_signature_valid(state.settings.secret_key.get_secret_value(), token)
