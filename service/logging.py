"""structlog JSON logs: one event name per line, the request id bound per request, and a processor
that drops patient identity (names, phones, INS, birth dates) wherever it appears in an event."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# Keys whose values never reach a log line, at any depth of the event.
REDACTED_KEYS = frozenset(
    {
        "family_name",
        "given_name",
        "birth_name",
        "first_name",
        "name",
        "phone",
        "ins",
        "birth_date",
        "patient",
        "caller",
        "email",
        "password",
        "api_key",
        "webhook_secret",
        "authorization",
        "note",
        "access_token",
    }
)
REDACTED = "[redacted]"


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_urls(value) if "://" in value else value
    if isinstance(value, Mapping):
        return {k: (REDACTED if str(k).lower() in REDACTED_KEYS else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


# A URL's user name, password and query may carry secrets (a webhook registered with credentials).
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")
_URL_QUERY = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s?#]*)\?[^\s#]*")


def scrub_urls(text: str) -> str:
    return _URL_QUERY.sub(r"\1?[redacted]", _URL_USERINFO.sub(r"\1[redacted]@", text))


def drop_personal_data(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in REDACTED_KEYS:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def configure_logging(level: str = "INFO") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_personal_data,
    ]
    structlog.configure(
        # The level is checked first: an event below it (each request's line, at WARNING) costs a
        # lookup instead of the whole chain of processors.
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Our middleware logs each request once; uvicorn's access log would repeat it. httpx would log
    # every webhook URL it posts to.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
