"""A live service for benchmarks: a fresh database (embedded server unless DATABASE_URL), a real
`snp serve` process, and a tenant with credentials."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from service import embedded_db

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH_SECRET = "bench-secret-" + "x" * 40


LISTEN, ESTABLISHED = "0A", "01"  # /proc/net/tcp's states


def sockets_of_port(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets on local port `port` in `state` (from /proc)."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                inodes.add(int(fields[9]))
    return inodes


def holders(inodes: set[int]) -> dict[int, set[int]]:
    """The processes holding each of these sockets (a socket inherited is held by several)."""
    held: dict[int, set[int]] = {inode: set() for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        links = []
        try:
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):  # a descriptor closed meanwhile
                    links.append(os.readlink(fd))
        except OSError:  # a process gone meanwhile, or not ours to read
            continue
        for link in links:
            if link.startswith("socket:[") and int(link[8:-1]) in held:
                held[int(link[8:-1])].add(int(entry.name))
    return held


def connections_by_process(port: int) -> Counter[int]:
    """The established connections to the server on `port` each of its processes holds (the
    server's ends: the clients' ends are on other ports)."""
    return Counter(pid for pids in holders(sockets_of_port(port, ESTABLISHED)).values() for pid in pids)


def connections_per_process(port: int) -> list[int]:
    """How those connections are spread, most first: [24] or [21, 3] when one worker took nearly all."""
    return sorted(connections_by_process(port).values(), reverse=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def bench_database() -> Iterator[tuple[str, str]]:
    """(admin URL, URL of a fresh database dropped at the end)."""
    with ExitStack() as stack:
        admin = os.environ.get("DATABASE_URL")
        if admin:
            admin = admin.replace("postgresql+asyncpg://", "postgresql://")
        else:
            admin = stack.enter_context(embedded_db.embedded_server(ROOT / ".data"))
        name = f"snp_bench_{uuid.uuid4().hex[:8]}"

        async def create() -> None:
            conn = await asyncpg.connect(admin)
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()

        async def drop() -> None:
            conn = await asyncpg.connect(admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()

        asyncio.run(create())
        try:
            yield admin, embedded_db.database_url(admin, name)
        finally:
            asyncio.run(drop())


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SNP_SECRET_KEY": BENCH_SECRET,
        "SNP_ENV": "test",
        "SNP_LOG_LEVEL": "WARNING",
        "SNP_ARGON2_TIME_COST": "1",
        "SNP_ARGON2_MEMORY_KIB": "64",
        **extra,
    }


def snp(database_url: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - our own CLI
        [str(BIN / "snp"), *args, "--json"], env=service_env(database_url), capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@contextmanager
def live_service(database_url: str, workers: int = 2, **env: str) -> Iterator[str]:
    port = free_port()
    with _serving(
        port, [str(BIN / "snp"), "serve", "--port", str(port), "--workers", str(workers)], database_url, env
    ) as base:
        yield base


@contextmanager
def live_granian(database_url: str, workers: int = 2, **env: str) -> Iterator[str]:
    """The same app under granian instead of uvicorn (the bench's `servers` phase); the database is
    migrated already."""
    port = free_port()
    command = [
        str(BIN / "granian"), "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-ws", "--log-level", "warning", "service.main:create_app",
    ]  # fmt: skip
    with _serving(port, command, database_url, env) as base:
        yield base


@contextmanager
def _serving(port: int, command: list[str], database_url: str, env: dict[str, str]) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(command, env=service_env(database_url, **env))  # noqa: S603
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the service did not become ready (exit code {process.poll()})")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class BenchTenant:
    cpts_id: str
    coordinator_token: str
    handler_token: str
    api_key: str = ""
    client_id: str = ""
    practitioners: list[dict[str, Any]] = field(default_factory=list)


def bench_tenant(database_url: str, base: str, population: int = 200_000) -> BenchTenant:
    cpts = snp(database_url, "cpts", "create", "--name", "CPTS bench", "--population", str(population))
    tokens = {}
    for role in ("coordinator", "handler"):
        email = f"{role}.{uuid.uuid4().hex[:6]}@bench.test"
        snp(
            database_url,
            "user",
            "create",
            "--cpts",
            cpts["id"],
            "--email",
            email,
            "--role",
            role,
            "--password",
            "bench password 1",
        )
        answer = httpx.post(f"{base}/v1/auth/token", data={"username": email, "password": "bench password 1"})
        tokens[role] = answer.json()["access_token"]
    return BenchTenant(cpts["id"], tokens["coordinator"], tokens["handler"])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
