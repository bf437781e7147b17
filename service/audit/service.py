"""Record who read or changed patient data, in the same transaction as the access."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth import Principal


def _origin(request: Request | None) -> tuple[str | None, str | None]:
    ip = request.client.host if request is not None and request.client else None
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return ip, request_id


async def record(
    session: AsyncSession,
    principal: Principal,
    action: str,
    object_type: str,
    object_ids: Sequence[uuid.UUID | None],
    now: datetime,
    request: Request | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit event per object touched, in one statement (a page of a hundred objects is one
    array, not a hundred sets of parameters)."""
    if object_ids:
        values = each_row(principal, action, object_type, now, request, detail)
        await session.execute(_RECORD, {**values, "audit_object_ids": list(object_ids)})


# One audit row, as a statement to embed in a larger one (a hot path writing its consequences in
# one round trip). Its parameters are those `one_row` answers; `cpts_id`, `now`, `actor_kind`
# and `actor_id` mean the same in every fragment they are shared with.
INSERT_ONE_SQL = """
    INSERT INTO audit_event
        (cpts_id, at, actor_kind, actor_id, action, object_type, object_id, ip, http_request_id, detail)
    VALUES (:cpts_id, :now, :actor_kind, :actor_id, :audit_action, :audit_object_type, :audit_object_id, :audit_ip,
            :audit_request_id, CAST(:audit_detail AS jsonb))
"""


# One audit row per id of a relation of the statement it is embedded in (`{ids}`: a sub-query
# answering `id`), with the parameters of `one_row` but its object id.
INSERT_EACH_SQL = """
    INSERT INTO audit_event
        (cpts_id, at, actor_kind, actor_id, action, object_type, object_id, ip, http_request_id, detail)
    SELECT :cpts_id, :now, :actor_kind, :actor_id, :audit_action, :audit_object_type, listed.id, :audit_ip,
           :audit_request_id, CAST(:audit_detail AS jsonb)
    FROM ({ids}) AS listed
"""


_RECORD = text(INSERT_EACH_SQL.format(ids="SELECT unnest(CAST(:audit_object_ids AS uuid[])) AS id"))


def one_row(
    principal: Principal,
    action: str,
    object_type: str,
    object_id: uuid.UUID,
    now: datetime,
    request: Request | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters of `INSERT_ONE_SQL`."""
    return {**each_row(principal, action, object_type, now, request, detail), "audit_object_id": object_id}


def each_row(
    principal: Principal,
    action: str,
    object_type: str,
    now: datetime,
    request: Request | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters of `INSERT_EACH_SQL`."""
    ip, request_id = _origin(request)
    return {
        "cpts_id": principal.cpts_id,
        "now": now,
        "actor_kind": principal.kind,
        "actor_id": principal.id,
        "audit_action": action,
        "audit_object_type": object_type,
        "audit_ip": ip,
        "audit_request_id": request_id,
        "audit_detail": json.dumps(detail or {}),
    }
