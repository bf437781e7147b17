"""Several worker processes on one port, each accepting on a listening socket of its own.

uvicorn's supervisor binds one socket and shares it: the worker that wakes first accepts every
connection waiting, so a burst of keep-alive connections (the handlers opening the console at eight,
the practice software's pool, a load test) can all land on one worker while the other idles. The
bench saw splits of 24/0, 21/3 and 17/7 over 24 connections, and the bookings rate fell by up to a
half with them. With SO_REUSEPORT each worker listens on its own socket and the kernel spreads new
connections over them by a hash of their addresses (13/11, 14/10, 15/9 in the same runs). A worker
that dies takes its socket with it: new connections go to the others until uvicorn's supervisor
(kept as is: restarts, health checks, signals) has started its replacement.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any, cast

import uvicorn
import uvloop
from uvicorn.supervisors import Multiprocess


class ReusePortLoop(uvloop.Loop):
    """uvloop, whose servers listen with SO_REUSEPORT: each worker binds the port itself."""

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        kwargs["reuse_port"] = True
        return cast(asyncio.Server, await super().create_server(*args, **kwargs))  # uvloop's own Server


def reuse_port_loop() -> asyncio.AbstractEventLoop:
    """The workers' event loop (uvicorn's `loop` setting takes a factory's import path)."""
    return ReusePortLoop()


LOOP = f"{__name__}:{reuse_port_loop.__name__}"


class PortInUse(Exception):
    pass


def refuse_port_in_use(host: str, port: int) -> None:
    """Sockets that share a port with SO_REUSEPORT also share it with any other server of the same
    user that does: a second `snp serve` on the port would silently take half the connections.
    A plain bind, which any listener on the port refuses, tells before the workers start."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: the connections of a server just stopped (TIME_WAIT) do not hold the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"{host}:{port} is already in use") from exc
            raise


def serve(app: str, host: str, port: int, workers: int, **options: Any) -> None:
    """uvicorn's supervisor over `workers` processes, each listening on `host:port` itself."""
    refuse_port_in_use(host, port)
    config = uvicorn.Config(app, host=host, port=port, workers=workers, loop=LOOP, **options)
    # No shared socket: each worker's server binds its own (`Server.startup` with no sockets given).
    Multiprocess(config, sockets=None).run()  # type: ignore[arg-type]
