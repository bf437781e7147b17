"""`snp serve --workers 2`: each worker listens on a socket of its own (service.workers), so that
connections spread over the workers instead of piling onto whichever accepts first."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from load_tests.harness import LISTEN, connections_by_process, holders, sockets_of_port
from service import workers
from tests.conftest import snp_environment
from tests.integration.test_reports_process import BIN, LiveServer, start_server, stop


def workers_of(server: LiveServer) -> set[int]:
    """The uvicorn workers: the children of `snp serve` but its reports process."""
    return server.children(b"multiprocessing.spawn")


def listeners(server: LiveServer) -> dict[int, set[int]]:
    """The server's listening sockets and who holds each."""
    return holders(sockets_of_port(int(server.base.rsplit(":", 1)[1]), LISTEN))


def listening_pids(server: LiveServer) -> set[int]:
    return set().union(*listeners(server).values())


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("not within the time allowed")


def serve_refused(database_url: str, *options: str) -> subprocess.CompletedProcess[str]:
    """`snp serve --workers 2` expected to stop before serving: its exit code and messages."""
    env = snp_environment(database_url, SNP_LOG_LEVEL="WARNING", SNP_RELAY_ENABLED="false")
    return subprocess.run(  # noqa: S603
        [BIN / "snp", "serve", *options, "--workers", "2", "--no-reports-process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def two_workers(database_url: str) -> Iterator[LiveServer]:
    server = start_server(database_url, "--workers", "2")
    wait_for(lambda: len(listening_pids(server)) >= 2)  # both workers up (uvicorn: and the supervisor)
    yield server
    stop(server)


def test_each_worker_listens_on_a_socket_of_its_own(two_workers: LiveServer) -> None:
    """Two listening sockets, each held by one worker; not one socket bound by the supervisor and
    inherited by both (uvicorn's way)."""
    held = listeners(two_workers)
    assert len(held) == 2
    assert [len(pids) for pids in held.values()] == [1, 1]
    assert listening_pids(two_workers) == workers_of(two_workers)


async def test_a_burst_of_connections_spreads_over_both_workers(two_workers: LiveServer) -> None:
    """24 keep-alive connections opened at once. On one shared socket the worker that wakes first
    took them all or nearly (24/0 and 21/3 seen by the bench); on a socket each, the kernel hashes
    every connection to one of them (both empty-handed: a chance of 1 in 8 million)."""
    clients = [httpx.AsyncClient(base_url=two_workers.base, timeout=10) for _ in range(24)]
    try:
        answers = await asyncio.gather(*(client.get("/healthz") for client in clients))
        assert {answer.status_code for answer in answers} == {200}
        held = connections_by_process(int(two_workers.base.rsplit(":", 1)[1]))
        per_worker = {pid: held[pid] for pid in workers_of(two_workers)}
        assert sum(per_worker.values()) == 24
        assert all(count >= 1 for count in per_worker.values()), per_worker
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))


def test_a_dead_worker_leaves_the_port_to_the_other_until_it_is_replaced(two_workers: LiveServer) -> None:
    victim = min(workers_of(two_workers))
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in listening_pids(two_workers), 10)
    # Its socket went with it: every new connection meets the surviving worker.
    for _ in range(20):
        assert httpx.get(f"{two_workers.base}/healthz", timeout=5).status_code == 200
    wait_for(lambda: len(listening_pids(two_workers)) == 2)  # uvicorn's supervisor started a replacement
    assert victim not in workers_of(two_workers)
    assert listening_pids(two_workers) == workers_of(two_workers)


def test_a_second_server_on_the_same_port_is_refused(two_workers: LiveServer, database_url: str) -> None:
    """SO_REUSEPORT would let it share the port (and half the connections) silently."""
    port = two_workers.base.rsplit(":", 1)[1]
    second = serve_refused(database_url, "--port", port)
    assert second.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in second.stderr
    assert len(listeners(two_workers)) == 2


def test_sigterm_stops_every_worker_and_frees_the_port(database_url: str) -> None:
    server = start_server(database_url, "--workers", "2", "--no-reports-process")
    port = int(server.base.rsplit(":", 1)[1])
    wait_for(lambda: len(listening_pids(server)) >= 2)
    workers = workers_of(server)
    stop(server)
    assert server.process.returncode == 0
    assert not sockets_of_port(port, LISTEN)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_an_address_not_on_this_machine_is_refused_with_a_reason(database_url: str) -> None:
    """Checked before any worker starts: a clear error and exit 1, not a traceback or a worker
    failing alone. (192.0.2.1 is a documentation address: bound to, never sent to.)"""
    refused = serve_refused(database_url, "--host", "192.0.2.1", "--port", "8999")
    assert refused.returncode == 1
    assert "cannot listen on 192.0.2.1:8999: Cannot assign requested address" in refused.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "::"])
def test_a_worker_socket_binds_as_uvicorn_would_with_reuse_port(host: str) -> None:
    """One socket of the host's family; `::` stays dual-stack as uvicorn's own socket is (asyncio's
    `create_server` would make it IPv6 only)."""
    if host == "::" and not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    sock = workers.listening_socket(host, 0)
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        assert sock.family == (socket.AF_INET6 if host == "::" else socket.AF_INET)
        if host == "::":
            assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        second = workers.listening_socket(host, sock.getsockname()[1])  # a second worker on the port
        second.close()
    finally:
        sock.close()
