"""The loop every sender runs (webhooks, messages to patients, appointments to the SAS): a round,
then a pause when it had nothing to do, until told to stop; a failing round is logged, not fatal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

_log = structlog.get_logger("service.rounds")


async def repeat_rounds(
    one_round: Callable[[], Awaitable[int]], interval: float, stop: asyncio.Event, failure_event: str
) -> None:
    """Run `one_round` (it answers how many items it handled) until `stop` is set."""
    while not stop.is_set():
        try:
            handled = await one_round()
        except Exception as exc:  # noqa: BLE001 - a sender must outlive a bad round
            _log.error(failure_event, error_type=type(exc).__name__)
            handled = 0
        if not handled:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
