"""The FHIR interface the national SAS calls (`/fhir`): its CapabilityStatement and the slot search
of the CPTS flow (INT_R04). Only the SAS platform's own principal may call it; every error is an
OperationOutcome. The slots are those of CPTS that joined the SAS, free, visible to SNP
regulators, in the window asked for: a hold, a booking, a withdrawal or a CPTS that did not join
hides them, whoever asks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from fastapi import APIRouter, Request, Response
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import String

from service.accounts import service as accounts
from service.accounts.domain import API_KEY_PREFIX, SAS_KEY_PREFIX, RegulatorFacts, StoredRegulator, api_key_digest
from service.accounts.models import SasClient
from service.accounts.service import RegulatorWrite
from service.clock import Now
from service.db import SessionDep
from service.fhir import regulators, resources
from service.fhir.resources import CptsFacts, SiteFacts, SlotFacts
from service.fhir.search import SearchError, SlotSearch, parse
from service.reference import sas_guide
from service.reference.communes import commune
from service.routing import TransactionalRoute, statements_alone
from service.slots.predicates import OFFERABLE_SQL

FHIR_JSON = "application/fhir+json"
_log = structlog.get_logger("service.fhir")


class FhirError(Exception):
    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status, self.code, self.diagnostics = status, code, diagnostics


def fhir_response(body: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:  # text that is not Unicode (a lone surrogate) echoed in an error
        content = json.dumps(body).encode()
    return Response(content, status_code=status_code, media_type=FHIR_JSON, headers=headers)


class FhirRoute(TransactionalRoute):
    """A transaction per request, and every refusal an OperationOutcome (never problem+json)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def fhir_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RegulatorRefused as refused:
                return fhir_response(_issues_outcome(refused.problems), refused.status)
            except FhirError as error:
                headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
                return fhir_response(resources.operation_outcome(error.code, error.diagnostics), error.status, headers)
            except SearchError as error:
                return fhir_response(resources.operation_outcome("invalid", str(error)), 400)

        return fhir_handler


router = APIRouter(prefix="/fhir", route_class=FhirRoute, include_in_schema=False)


@dataclass(frozen=True)
class SasPrincipal:
    id: Any
    name: str


async def sas_principal(request: Request, session: SessionDep) -> SasPrincipal:
    """The SAS platform, by its API key; staff tokens and practice software are not let in."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise FhirError(401, "login", "Missing bearer token (the SAS platform's API key).")
    if not token.startswith(SAS_KEY_PREFIX):
        kind = "practice-software key" if token.startswith(API_KEY_PREFIX) else "staff token"
        raise FhirError(403, "forbidden", f"The FHIR interface is the SAS platform's: a {kind} is not accepted.")
    client = await session.scalar(
        select(SasClient).where(SasClient.key_digest == api_key_digest(token), SasClient.active)
    )
    if client is None:
        raise FhirError(401, "login", "Unknown or revoked SAS API key.")
    return SasPrincipal(client.id, client.name)


_SLOTS = text(
    f"""
    SELECT s.id, s.start_at, s.end_at, s.modality, s.specialty, s.visibility,
           p.id AS practitioner_id, p.idnps, p.family_name, p.given_name, p.phone AS practitioner_phone,
           st.id AS site_id, st.address, st.postal_code, st.commune_insee, st.phone AS site_phone,
           st.latitude, st.longitude,
           c.id AS cpts_id, c.name AS cpts_name, c.finess, c.phone AS cpts_phone, c.timezone
    FROM slot s
    JOIN practitioner p ON p.id = s.practitioner_id
    JOIN site st ON st.id = s.site_id
    JOIN cpts c ON c.id = s.cpts_id
    WHERE c.sas_enabled AND c.finess IS NOT NULL
      AND p.idnps = ANY(:idnps) AND p.active
      AND {OFFERABLE_SQL} AND s.status = 'free'
      AND 'SNP' = ANY(s.visibility)
      AND s.start_at >= :start_from AND s.start_at <= :start_to
    ORDER BY s.start_at, s.id
    LIMIT :limit
    """  # noqa: S608 - module constants, no input
).bindparams(bindparam("idnps", type_=ARRAY(String)))


def facts_of(rows: Any) -> list[SlotFacts]:
    """The search's rows as facts: what the slots of a site share (the practitioner, the site,
    the CPTS) is made once per site, not once per slot."""
    cpts_of: dict[Any, CptsFacts] = {}
    site_of: dict[Any, SiteFacts] = {}
    found = []
    for row in rows:
        site = site_of.get(row.site_id)
        if site is None:
            cpts = cpts_of.get(row.cpts_id)
            if cpts is None:
                cpts = CptsFacts(row.cpts_id, row.cpts_name, row.finess, row.cpts_phone, row.timezone)
                cpts_of[row.cpts_id] = cpts
            site = site_of[row.site_id] = _site(row, cpts)
        found.append(
            SlotFacts(row.id, row.start_at, row.end_at, row.modality, row.specialty, tuple(row.visibility), site)
        )
    return found


def _site(row: Any, cpts: CptsFacts) -> SiteFacts:
    place = commune(row.commune_insee)
    return SiteFacts(
        practitioner_id=row.practitioner_id,
        idnps=row.idnps,
        family_name=row.family_name,
        given_name=row.given_name,
        practitioner_phone=row.practitioner_phone,
        site_id=row.site_id,
        site_address=row.address,
        site_postal_code=row.postal_code or (place.postal_code if place else None),
        site_city=place.name if place else None,
        site_phone=row.site_phone,
        latitude=row.latitude,
        longitude=row.longitude,
        cpts=cpts,
    )


def public_base(request: Request) -> str:
    configured = request.app.state.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def searchset(search: SlotSearch, rows: list[SlotFacts], self_url: str, base: str, fhir_base: str) -> dict[str, Any]:
    """The Bundle the aggregator reads: the slots (`match`), then what `_include` asked for."""
    entries: list[dict[str, Any]] = []

    def entry(resource: dict[str, Any], mode: str) -> None:
        entries.append(
            {
                "fullUrl": f"{fhir_base}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": mode},
            }
        )

    booking_page: dict[Any, str] = {}
    for facts in rows:
        practitioner = facts.site.practitioner_id
        page = booking_page.get(practitioner)
        if page is None:
            page = booking_page[practitioner] = f"{base}/console/sas/practitioners/{practitioner}"
        entry(resources.slot(facts, page), "match")
    seen: set[tuple[str, Any]] = set()

    def include(kind: str, key: Any, build: Callable[[Any], dict[str, Any]], facts: Any) -> None:
        # Each included resource once, and built only then: 40 slots of a site share its four.
        if (kind, key) not in seen:
            seen.add((kind, key))
            entry(build(facts), "include")

    schedules = "Slot:schedule" in search.includes
    actors = schedules and "Schedule:actor" in search.iterated
    services = "Slot:service-type-reference" in search.includes
    organizations = services and "HealthcareService:organization" in search.iterated
    for site in dict.fromkeys(facts.site for facts in rows):
        if schedules:
            include("Schedule", site.site_id, resources.schedule, site)
        if actors:
            include("Practitioner", site.practitioner_id, resources.practitioner, site)
            include("PractitionerRole", site.site_id, resources.practitioner_role, site)
        if services:
            include("HealthcareService", site.cpts.id, resources.healthcare_service, site.cpts)
        if organizations:
            include("Organization", site.cpts.id, resources.organization, site.cpts)
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "meta": {"profile": [sas_guide.profile("sas-cpts-bundle-aggregator")]},
        "type": "searchset",
        "total": len(rows),
        "link": [{"relation": "self", "url": self_url}],
    }
    if entries:
        bundle["entry"] = entries
    return bundle


@router.get("/Slot")
@statements_alone
async def search_slots(request: Request, session: SessionDep, now: Now) -> Response:
    """INT_R04: the free slots of the practitioners asked for, in the window, with the includes."""
    await sas_principal(request, session)
    params = parse_qsl(request.url.query, keep_blank_values=True)
    search = parse(params)
    if search.status != "free" or search.count == 0:
        found: list[SlotFacts] = []
    else:
        result = await session.execute(
            _SLOTS,
            {
                "idnps": list(search.idnps),
                "start_from": search.start_from,
                "start_to": search.start_to,
                "limit": search.count,
                "now": now,
            },
        )
        found = facts_of(result)
    base = public_base(request)
    bundle = searchset(search, found, str(request.url), base, f"{base}/fhir")
    _log.info("fhir.slot_search", practitioners=len(search.idnps), slots=len(found))
    return fhir_response(bundle)


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    """What this server does of the guide (CPTS agenda-manager flow), as a CapabilityStatement."""
    return fhir_response(capability_statement(public_base(request)))


def capability_statement(base: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-01",
        "publisher": "SNP orientation and slot-booking service",
        "kind": "instance",
        "implementation": {"description": "FHIR interface for the national SAS (CPTS flow)", "url": f"{base}/fhir"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "instantiates": ["https://interop.esante.gouv.fr/ig/fhir/sas/CapabilityStatement/SAS-GestionnaireAgenda-CPTS"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Mutual TLS (IGC-Santé certificates) and the SAS platform's bearer API key"
                },
                "resource": [
                    {
                        "type": "Slot",
                        "supportedProfile": [sas_guide.profile("sas-cpts-slot-aggregator")],
                        "interaction": [{"code": "search-type"}],
                        "searchInclude": ["Slot:schedule", "Slot:service-type-reference"],
                        "searchParam": [
                            {"name": "start", "type": "date"},
                            {"name": "status", "type": "token"},
                            {"name": "schedule.actor:Practitioner.identifier", "type": "token"},
                            {"name": "_count", "type": "number"},
                        ],
                    },
                    {
                        "type": "Practitioner",
                        "supportedProfile": [sas_guide.profile("FrPractitionerRegul")],
                        "interaction": [{"code": "create"}, {"code": "update"}, {"code": "read"}],
                        "conditionalCreate": False,
                        "conditionalUpdate": True,
                    },
                    {
                        "type": "Schedule",
                        "supportedProfile": [sas_guide.profile("FrScheduleAgregateur")],
                        "searchInclude": ["Schedule:actor"],
                    },
                    {
                        "type": "HealthcareService",
                        "supportedProfile": [sas_guide.profile("sas-cpts-healthcareservice-aggregator")],
                        "searchInclude": ["HealthcareService:organization"],
                    },
                ],
            },
            {
                # INT_R03: we tell the SAS of the appointments of the requests it regulated.
                "mode": "client",
                "resource": [
                    {
                        "type": "Appointment",
                        "supportedProfile": [sas_guide.profile("FrAppointmentSAS")],
                        "interaction": [{"code": "create"}, {"code": "update"}],
                        "conditionalUpdate": True,
                    }
                ],
            },
        ],
    }


def _issues_outcome(problems: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "processing", "diagnostics": message, "expression": [path]}
            for path, message in problems
        ],
    }


async def _pushed_regulator(request: Request) -> tuple[RegulatorFacts, set[tuple[str, str]]]:
    """The body of a push: FHIR JSON of a Practitioner that the guide's profile accepts; with every
    identifier it carries."""
    media_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type not in (FHIR_JSON, "application/json"):
        raise FhirError(415, "not-supported", "Send the Practitioner as application/fhir+json.")
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise FhirError(400, "structure", "The body is not JSON.") from None
    except RecursionError:
        raise FhirError(400, "structure", "The body is nested too deep.") from None
    try:
        return regulators.parse(body), regulators.identifiers_of(body)
    except regulators.RegulatorInvalid as invalid:
        raise RegulatorRefused(invalid.problems) from None
    except RecursionError:
        raise FhirError(400, "structure", "The body is nested too deep.") from None


class RegulatorRefused(FhirError):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(422, "processing", "; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = problems


def _regulator_response(request: Request, stored: StoredRegulator, status_code: int) -> Response:
    location = f"{public_base(request)}/fhir/Practitioner/{stored.id}"
    headers = {"ETag": f'W/"{stored.version}"', "Location": location}
    return fhir_response(regulators.resource(stored), status_code, headers)


@router.post("/Practitioner")
async def create_regulator(request: Request, session: SessionDep, now: Now) -> Response:
    """INT_R02: the SAS creates a regulator (FrPractitionerRegul); 201 with its Location. The same
    push again (a retry) answers 200 with it; another for an identifier we hold is a conflict
    (update it with PUT ?identifier=)."""
    await sas_principal(request, session)
    facts, _ = await _pushed_regulator(request)
    stored, outcome = await accounts.write_sas_regulator(session, facts, now, create_only=True)
    if outcome is RegulatorWrite.exists:
        raise FhirError(
            409,
            "duplicate",
            "A regulator with this identifier exists: update it with PUT /fhir/Practitioner?identifier=",
        )
    _log.info("fhir.regulator_pushed", regulator_id=str(stored.id), outcome=outcome.value, active=facts.active)
    return _regulator_response(request, stored, 201 if outcome is RegulatorWrite.created else 200)


@router.put("/Practitioner")
async def update_regulator(request: Request, session: SessionDep, now: Now) -> Response:
    """INT_R02: the SAS updates a regulator by identifier (conditional update), or creates them
    (201) when we do not hold them; `active: false` withdraws their rights."""
    await sas_principal(request, session)
    try:
        system, value = regulators.conditional_identifier(request.query_params.get("identifier"))
    except ValueError as error:
        raise FhirError(400, "invalid", str(error)) from None
    facts, identifiers = await _pushed_regulator(request)
    if (system, value) not in identifiers:
        raise FhirError(400, "invalid", "The identifier in the URL must be one of the Practitioner's.")
    stored, outcome = await accounts.write_sas_regulator(
        session, facts, now, create_only=False, known_as=(system, value)
    )
    if outcome is RegulatorWrite.exists:
        raise FhirError(409, "duplicate", "Both identifiers name regulators we hold: they cannot be merged here.")
    _log.info("fhir.regulator_pushed", regulator_id=str(stored.id), outcome=outcome.value, active=facts.active)
    return _regulator_response(request, stored, 201 if outcome is RegulatorWrite.created else 200)


@router.get("/Practitioner/{regulator_id}")
async def read_regulator(regulator_id: str, request: Request, session: SessionDep) -> Response:
    """A regulator the SAS pushed, as we hold it."""
    await sas_principal(request, session)
    try:
        key = uuid.UUID(regulator_id)
    except ValueError:
        key = None
    stored = await accounts.sas_regulator(session, key) if key is not None else None
    if stored is None:
        raise FhirError(404, "not-found", f"No Practitioner {regulator_id} here.")
    return _regulator_response(request, stored, 200)


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
async def elsewhere(path: str) -> Response:
    """Anything else under /fhir answers as FHIR does, never as the rest of the API."""
    return fhir_response(resources.operation_outcome("not-supported", f"/fhir/{path} is not supported here"), 404)
