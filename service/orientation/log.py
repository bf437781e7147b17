"""The orientation log: the one way a request changes status."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from service.auth import Principal
from service.orientation.domain import EventKind, RequestStatus, next_status
from service.orientation.models import CareRequest


class RequestState(Protocol):
    """What the log needs of a request (the ORM object, or a row read for a hot path)."""

    id: uuid.UUID
    cpts_id: uuid.UUID
    status: str


@dataclass
class LockedRequest:
    id: uuid.UUID
    cpts_id: uuid.UUID
    status: str


@dataclass(frozen=True)
class LoggedEvent:
    id: int
    kind: str
    at: datetime
    actor_kind: str
    actor_id: uuid.UUID
    booking_id: uuid.UUID | None
    regulating_physician: str | None
    note: str | None


# The event and the request's derived status, in one statement.
_APPEND = text(
    """
    WITH moved AS (
        UPDATE care_request SET status = :status, updated_at = :now WHERE id = :request_id AND cpts_id = :cpts_id
    )
    INSERT INTO orientation_event
        (cpts_id, request_id, kind, at, actor_kind, actor_id, booking_id, regulating_physician, note, detail)
    VALUES (:cpts_id, :request_id, :kind, :now, :actor_kind, :actor_id, :booking_id, :regulating_physician, :note,
            CAST(:detail AS jsonb))
    RETURNING id, kind, at, actor_kind, actor_id, booking_id, regulating_physician, note
    """
)


async def append_event(
    session: AsyncSession,
    principal: Principal,
    request: RequestState,
    kind: EventKind,
    now: datetime,
    *,
    booking_id: uuid.UUID | None = None,
    note: str | None = None,
    regulating_physician: str | None = None,
    detail: dict[str, Any] | None = None,
) -> LoggedEvent:
    """Check the move, log it, store the derived status. The caller holds the request's row lock."""
    status = next_status(RequestStatus(request.status), kind)
    row = (
        await session.execute(
            _APPEND,
            {
                "status": status.value,
                "now": now,
                "request_id": request.id,
                "cpts_id": request.cpts_id,
                "kind": kind.value,
                "actor_kind": principal.kind,
                "actor_id": principal.id,
                "booking_id": booking_id,
                "regulating_physician": regulating_physician,
                "note": note,
                "detail": json.dumps(detail or {}),
            },
        )
    ).one()
    if isinstance(request, CareRequest):
        # The UPDATE already wrote it: keep the session's copy in step without a second write.
        set_committed_value(request, "status", status.value)
        set_committed_value(request, "updated_at", now)
    else:
        request.status = status.value
    return LoggedEvent(*row)
