"""A software client as a FHIR source: its editor's SAS interface, pulled like the SAS does."""

from __future__ import annotations

import uuid

from fastapi import Request, Response, status

from service.accounts.router import Policy
from service.auth import Coordinator
from service.clock import Now
from service.config import SettingsDep
from service.connectors import service
from service.connectors.schemas import FhirSourceIn, FhirSourceOut
from service.db import SessionDep
from service.routing import api_router

router = api_router(prefix="/v1/clients", tags=["clients"])


@router.put("/{client_id}/fhir-source", operation_id="clients-put_fhir_source")
async def put_fhir_source(
    client_id: uuid.UUID,
    body: FhirSourceIn,
    principal: Coordinator,
    session: SessionDep,
    settings: SettingsDep,
    policy: Policy,
    now: Now,
    http: Request,
) -> FhirSourceOut:
    """Pull this client's slots from its editor's SAS interface (`GET {base_url}/Slot`, as the SAS
    searches), every `interval_seconds`, over the next `window_hours`; the first pull is due at
    once. Secrets are stored encrypted and never shown; one left out is kept."""
    secret = settings.secret_key.get_secret_value()
    return await service.put_source(session, principal, client_id, body, policy, secret, now, http)


@router.get("/{client_id}/fhir-source", operation_id="clients-get_fhir_source")
async def get_fhir_source(client_id: uuid.UUID, principal: Coordinator, session: SessionDep) -> FhirSourceOut:
    """The source's settings (without its secrets) and how its pulls went."""
    return await service.get_source(session, principal, client_id)


@router.delete(
    "/{client_id}/fhir-source", operation_id="clients-delete_fhir_source", status_code=status.HTTP_204_NO_CONTENT
)
async def delete_fhir_source(
    client_id: uuid.UUID, principal: Coordinator, session: SessionDep, now: Now, http: Request
) -> Response:
    """Stop pulling (the slots already pulled stay)."""
    await service.delete_source(session, principal, client_id, now, http)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
