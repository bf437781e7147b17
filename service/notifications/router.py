from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Path, Query, Request, Response

from service.auth import Coordinator, Software
from service.clock import Now
from service.db import ReadConnection, SessionDep
from service.idempotency import Idempotent
from service.notifications import service
from service.notifications.schemas import DeliveryOut, Feed
from service.pagination import DEFAULT_LIMIT, MAX_BIGINT, Cursor, Limit, Page
from service.routing import api_router, serialized, statements_alone

feed_router = api_router(prefix="/v1/bookings", tags=["notifications"])
deliveries_router = api_router(prefix="/v1/clients", tags=["notifications"])
sas_router = api_router(prefix="/v1/sas", tags=["notifications"])


@feed_router.get("/feed", operation_id="bookings-feed", response_model=Feed)
@statements_alone
async def feed(
    principal: Software,
    conn: ReadConnection,
    now: Now,
    http: Request,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """Bookings and cancellations of this client's practitioners, in order, with what the
    practitioner needs to receive the patient. Resume with `next_cursor`; it comes back unchanged
    when there is nothing new. The read is audited."""
    return serialized(await service.feed(conn, principal, cursor, limit, now, http))


@deliveries_router.get("/{client_id}/deliveries", operation_id="clients-deliveries")
async def deliveries(
    client_id: uuid.UUID,
    principal: Coordinator,
    session: SessionDep,
    status: Literal["pending", "delivered", "dead", "feed_only", "skipped"] | None = None,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_BIGINT, description="`message_id` below which to list (pages)")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[DeliveryOut]:
    """Webhook deliveries to a client, newest first, with each attempt."""
    return await service.deliveries(session, principal.cpts_id, client_id, status, before, limit)


@deliveries_router.post(
    "/{client_id}/deliveries/{message_id}/redeliver", operation_id="clients-redeliver", dependencies=[Idempotent]
)
async def redeliver(
    client_id: uuid.UUID,
    message_id: Annotated[int, Path(ge=1, le=MAX_BIGINT)],
    principal: Coordinator,
    session: SessionDep,
    now: Now,
) -> DeliveryOut:
    """Send a message again: a new series of attempts starts now."""
    return await service.redeliver(session, principal.cpts_id, client_id, message_id, now)


@sas_router.get("/deliveries", operation_id="sas-deliveries")
async def sas_deliveries(
    principal: Coordinator,
    session: SessionDep,
    status: Literal["pending", "delivered", "dead", "skipped"] | None = None,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_BIGINT, description="`message_id` below which to list (pages)")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[DeliveryOut]:
    """The appointments sent to the SAS (INT_R03) for the requests it regulated, newest first,
    with each attempt: `dead` ones gave up after the last retry, `skipped` ones were not sent
    because no SAS address is configured."""
    return await service.sas_deliveries(session, principal.cpts_id, status, before, limit)


@sas_router.post("/deliveries/{message_id}/redeliver", operation_id="sas-redeliver", dependencies=[Idempotent])
async def sas_redeliver(
    message_id: Annotated[int, Path(ge=1, le=MAX_BIGINT)],
    principal: Coordinator,
    session: SessionDep,
    now: Now,
) -> DeliveryOut:
    """Send an appointment to the SAS again: a new series of attempts starts now."""
    return await service.redeliver(session, principal.cpts_id, None, message_id, now)
