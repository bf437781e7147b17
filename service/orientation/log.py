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


# The event and the request's derived status, written together. Kept as CTE fragments so that a hot
# path can write them in the same statement as its own rows (`bookings.repository.record_booked`);
# the parameters are those `event_values` answers.
APPEND_CTES = """
    moved AS (
        UPDATE care_request
        SET status = :request_status, updated_at = :now,
            reopened_at = CASE WHEN :event_kind = 'reopened' THEN CAST(:now AS timestamptz) ELSE reopened_at END
        WHERE id = :request_id AND cpts_id = :cpts_id
    ),
    logged AS (
        INSERT INTO orientation_event
            (cpts_id, request_id, kind, at, actor_kind, actor_id, booking_id, regulating_physician, note, detail)
        VALUES (:cpts_id, :request_id, :event_kind, :now, :actor_kind, :actor_id, :booking_id, :regulating_physician,
                :note, CAST(:event_detail AS jsonb))
        RETURNING id, kind, at, actor_kind, actor_id, booking_id, regulating_physician, note
    )
"""
_APPEND = text(f"WITH {APPEND_CTES} SELECT * FROM logged")  # noqa: S608 - constants, no input


def event_values(
    principal: Principal,
    request: RequestState,
    kind: EventKind,
    now: datetime,
    *,
    booking_id: uuid.UUID | None = None,
    note: str | None = None,
    regulating_physician: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check the move (raising if the request's status does not allow it) and answer the
    parameters of `APPEND_CTES`."""
    status = next_status(RequestStatus(request.status), kind)
    return unchecked_event_values(
        principal,
        request.id,
        request.cpts_id,
        kind,
        status,
        now,
        booking_id=booking_id,
        note=note,
        regulating_physician=regulating_physician,
        detail=detail,
    )


def unchecked_event_values(
    principal: Principal,
    request_id: uuid.UUID,
    cpts_id: uuid.UUID,
    kind: EventKind,
    status: RequestStatus,
    now: datetime,
    *,
    booking_id: uuid.UUID | None = None,
    note: str | None = None,
    regulating_physician: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters of `APPEND_CTES` for a statement that checks the move itself (the booking's
    single statement: `statuses_allowing` and `single_target`)."""
    return {
        "request_status": status.value,
        "now": now,
        "request_id": request_id,
        "cpts_id": cpts_id,
        "event_kind": kind.value,
        "actor_kind": principal.kind,
        "actor_id": principal.id,
        "booking_id": booking_id,
        "regulating_physician": regulating_physician,
        "note": note,
        "event_detail": json.dumps(detail or {}),
    }


def mark_moved(request: RequestState, values: dict[str, Any]) -> None:
    """Keep the caller's copy of the request in step with what the statement wrote."""
    if isinstance(request, CareRequest):
        # The UPDATE already wrote it: no second write through the session.
        set_committed_value(request, "status", values["request_status"])
        set_committed_value(request, "updated_at", values["now"])
        if values["event_kind"] == EventKind.reopened:
            set_committed_value(request, "reopened_at", values["now"])
    else:
        request.status = values["request_status"]


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
    values = event_values(
        principal,
        request,
        kind,
        now,
        booking_id=booking_id,
        note=note,
        regulating_physician=regulating_physician,
        detail=detail,
    )
    row = (await session.execute(_APPEND, values)).one()
    mark_moved(request, values)
    return LoggedEvent(*row)
