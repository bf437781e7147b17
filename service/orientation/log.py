"""The orientation log: the one way a request changes status."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.auth import Principal
from service.orientation.domain import EventKind, RequestStatus, next_status
from service.orientation.models import CareRequest, OrientationEvent


async def append_event(
    session: AsyncSession,
    principal: Principal,
    care_request: CareRequest,
    kind: EventKind,
    now: datetime,
    *,
    booking_id: uuid.UUID | None = None,
    note: str | None = None,
    regulating_physician: str | None = None,
    detail: dict[str, Any] | None = None,
) -> OrientationEvent:
    """The one way a request changes status: check the move, log it, store the derived status.
    The caller holds the request's row lock."""
    status = next_status(RequestStatus(care_request.status), kind)
    event = OrientationEvent(
        cpts_id=care_request.cpts_id,
        request_id=care_request.id,
        kind=kind.value,
        at=now,
        actor_kind=principal.kind,
        actor_id=principal.id,
        booking_id=booking_id,
        note=note,
        regulating_physician=regulating_physician,
        detail=detail or {},
    )
    session.add(event)
    care_request.status = status.value
    care_request.updated_at = now
    await session.flush()
    return event
