"""Record who read or changed patient data, in the same transaction as the access."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import structlog
from fastapi import Request
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit.models import AuditEvent
from service.auth import Principal

# Core insert: the ORM's bulk path costs more and adds nothing for append-only rows.
AUDIT_TABLE = cast(Table, AuditEvent.__table__)


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
    """One audit event per object touched (one statement for all of them)."""
    ip, request_id = _origin(request)
    rows = [
        {
            "cpts_id": principal.cpts_id,
            "at": now,
            "actor_kind": principal.kind,
            "actor_id": principal.id,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "ip": ip,
            "http_request_id": request_id,
            "detail": detail or {},
        }
        for object_id in object_ids
    ]
    if rows:
        await session.execute(insert(AUDIT_TABLE), rows)


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
