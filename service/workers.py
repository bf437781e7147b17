"""Several worker processes on one port, each accepting on a listening socket of its own (Linux).

uvicorn's supervisor binds one socket and shares it: the worker that wakes first accepts every
connection waiting, so a burst of keep-alive connections (the handlers opening the console at eight,
the practice software's pool, a load test) can all land on one worker while the other idles. The
bench saw splits of 24/0, 21/3 and 17/7 over 24 connections, and the bookings rate fell by up to a
half with them. With SO_REUSEPORT each worker listens on its own socket and the kernel spreads new
connections over them by a hash of their addresses (13/11, 14/10, 15/9 in the same runs). A worker
that dies takes its socket with it: new connections go to the others until uvicorn's supervisor
(kept as is: restarts, health checks, signals) has started its replacement. The price: the few
connections waiting in a stopping worker's own queue (not yet accepted) are reset, where a shared
socket would have handed them to another worker (Linux's `net.ipv4.tcp_migrate_req=1` migrates them).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from typing import Any, cast

import uvicorn
import uvloop
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess


def _bound(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound as uvicorn's `Config.bind_socket` binds (one address, the family told by
    the host; `::` stays dual-stack), with SO_REUSEADDR: the connections of a server just stopped
    (TIME_WAIT) do not hold the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def listening_socket(host: str, port: int) -> socket.socket:
    """A worker's own socket for `host:port`, beside the other workers' (SO_REUSEPORT)."""
    return _bound(host, port, reuse_port=True)


class ReusePortLoop(uvloop.Loop):
    """uvloop, whose servers for a host and port listen on a socket of their own with SO_REUSEPORT
    (uvicorn's worker asks for `host=..., port=...` when given no socket)."""

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        host, port = kwargs.pop("host", None), kwargs.pop("port", None)
        if port is not None and kwargs.get("sock") is None:
            kwargs["sock"] = listening_socket(host or "0.0.0.0", port)  # noqa: S104 - asyncio's default
        return cast(asyncio.Server, await super().create_server(*args, **kwargs))  # uvloop's own Server


def reuse_port_loop() -> asyncio.AbstractEventLoop:
    """The workers' event loop (uvicorn's `loop` setting takes a factory's import path)."""
    return ReusePortLoop()


LOOP = f"{__name__}:{reuse_port_loop.__name__}"


class CannotListen(Exception):
    pass


def refuse_port_in_use(host: str, port: int) -> None:
    """Sockets that share a port with SO_REUSEPORT also share it with any other server of the same
    user that does: a second `snp serve` on the port would silently take half the connections.
    A plain bind, which any listener on the port refuses, tells before the workers start (and says
    why when the address cannot be listened on at all)."""
    try:
        _bound(host, port, reuse_port=False).close()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CannotListen(f"{host}:{port} is already in use") from exc
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def serve(app: str, host: str, port: int, workers: int, **options: Any) -> None:
    """uvicorn's supervisor over `workers` processes, each listening on `host:port` itself; exits
    as uvicorn does (code 3) when the workers could not start."""
    refuse_port_in_use(host, port)
    config = uvicorn.Config(app, host=host, port=port, workers=workers, loop=LOOP, **options)
    # No shared socket: each worker's server binds its own (`Server.startup` with no sockets given).
    supervisor = Multiprocess(config, sockets=None)  # type: ignore[arg-type]
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        sys.exit(STARTUP_FAILURE)
