"""A real HTTP receiver on 127.0.0.1 for webhook tests: records what it gets and answers the
status codes a test plans."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
from collections import deque
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def serve_locally(app: Starlette, **tls: object) -> tuple[int, uvicorn.Server, asyncio.Task[None]]:
    """Serve `app` on a free port of 127.0.0.1 until told to exit; answers once it listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        **tls,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    return port, server, task


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a webhook receiver does, written from the README's description (not from the
    service's signing code): HMAC-SHA256 of "t.body", and a timestamp no older than `tolerance`."""
    try:
        pairs = [item.split("=", 1) for item in header.split(",")]
        timestamp = int(next(v for k, v in pairs if k == "t"))
    except (StopIteration, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    signed = any(hmac.compare_digest(expected, v) for k, v in pairs if k == "v1")  # two after a rotation
    return abs(now - timestamp) <= tolerance and signed


@dataclass
class Call:
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    path: str = ""
    query: str = ""


@dataclass
class Receiver:
    answers: deque[int] = field(default_factory=deque)  # planned status codes; 200 once exhausted
    delay: float = 0.0
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/snp"

    async def _endpoint(self, request: Request) -> Response:
        self.calls.append(
            Call(dict(request.headers), await request.body(), request.method, request.url.path, request.url.query)
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        return Response(status_code=self.answers.popleft() if self.answers else 200)

    async def start(self, **tls: object) -> None:
        """Listen on 127.0.0.1; `tls`: uvicorn's ssl_* options (a certificate, client certificates)."""
        # The webhooks' path, and any other (the SAS's FHIR base, for the appointments sent to it).
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["POST", "PUT"])])
        self.port, self._server, self._task = await serve_locally(app, **tls)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
