from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service.config import Environment
from service.problems import problem

router = APIRouter(tags=["health"])
# A load balancer polls readiness: it must answer quickly even when the database does not.
READY_WITHIN = 1.5


@router.get("/healthz", operation_id="health-live")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="health-ready", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> Response:
    """The database answers (within READY_WITHIN) and its schema is at the latest migration."""
    expected = request.app.state.schema_head

    async def schema_version() -> str | None:
        async with request.app.state.engine.connect() as conn:
            version: str | None = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            return version

    try:
        current = await asyncio.wait_for(schema_version(), timeout=READY_WITHIN)
    except Exception:  # noqa: BLE001 - any failure to reach the database in time means "not ready"
        return problem(503, "database_unavailable", "The database does not answer.")
    if current != expected:
        return problem(
            503, "schema_behind", f"The schema is at {current}, the code expects {expected}; run `snp migrate`."
        )
    return Response(content=b'{"status":"ready"}', media_type="application/json")


@router.get("/metrics", operation_id="health-metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process, for the bearer of SNP_METRICS_TOKEN (the volumes are
    business figures); open without a token in development only."""
    settings = request.app.state.settings
    expected = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if expected is None and settings.env is not Environment.development:
        return problem(403, "metrics_token_required", "Set SNP_METRICS_TOKEN to read the metrics.")
    if expected is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
            return problem(401, "unauthenticated", "The metrics need their bearer token.")
    return Response(content=generate_latest(), media_type=CONTENT_TYPE_LATEST)
