"""The coordinators' management screens: members and their sites, staff, practice software and
its deliveries, the CPTS's settings. Every change is the API's own model validated and handed to
the same service function; a refusal comes back in French next to its field."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError

from service.accounts import repository as accounts_repository
from service.accounts import service as accounts
from service.accounts.schemas import ClientCreate, UserCreate, UserPatch
from service.auth import Principal
from service.clock import Now
from service.config import SettingsDep
from service.connectors import service as connectors
from service.connectors.domain import DEFAULT_INTERVAL_SECONDS, DEFAULT_WINDOW_HOURS
from service.connectors.fhir_slots import Flow
from service.connectors.schemas import DEFAULT_SLOT_TYPES, FhirSourceIn, FhirSourceOut
from service.console import labels
from service.console.coordination import coordinator_only
from service.console.session import ConsoleUser
from service.console.views import field_errors, render
from service.cpts import service as cpts_service
from service.cpts.domain import TARGET_INDICATORS
from service.cpts.schemas import CptsPatch
from service.db import SessionDep
from service.errors import DomainError, Invalid
from service.notifications import service as notifications
from service.notifications.schemas import DeliveryOut
from service.pagination import Page
from service.practitioners import service as practitioners
from service.practitioners.schemas import PractitionerCreate, PractitionerPatch, SiteIn, SitePatch
from service.reference.codes import professions, specialties

PROFESSIONS = {
    "10": "Médecin",
    "60": "Infirmier",
    "70": "Masseur-kinésithérapeute",
    "50": "Sage-femme",
    "40": "Chirurgien-dentiste",
    "21": "Pharmacien",
}
TARGET_LABELS = {
    "rate_within_24h": "Rendez-vous sous 24 h (en %)",
    "rate_within_48h": "Rendez-vous sous 48 h (en %)",
    "fill_rate": "Taux de remplissage des créneaux (en %)",
    "participating_professionals": "Professionnels participants",
    "requests_total": "Demandes reçues",
    "unresolved_past_deadline": "Sans réponse à l'échéance (au plus)",
    "delay_to_appointment_median_hours": "Délai médian jusqu'au rendez-vous (heures, au plus)",
}
PERCENT_TARGETS = frozenset({"rate_within_24h", "rate_within_48h", "fill_rate"})


def make_router(route_class: type) -> APIRouter:
    router = APIRouter(prefix="/console/manage", route_class=route_class, include_in_schema=False)
    router.add_api_route("/practitioners", practitioners_page, methods=["GET"])
    router.add_api_route("/practitioners", create_practitioner, methods=["POST"])
    router.add_api_route("/practitioners/{practitioner_id}", practitioner_page, methods=["GET"])
    router.add_api_route("/practitioners/{practitioner_id}", update_practitioner, methods=["POST"])
    router.add_api_route("/practitioners/{practitioner_id}/sites", add_site, methods=["POST"])
    router.add_api_route("/users", users_page, methods=["GET"])
    router.add_api_route("/users", create_user, methods=["POST"])
    router.add_api_route("/users/{user_id}", update_user, methods=["POST"])
    router.add_api_route("/users/{user_id}/reset-mfa", reset_mfa, methods=["POST"])
    router.add_api_route("/users/{user_id}/unlock", unlock_user, methods=["POST"])
    router.add_api_route("/clients", clients_page, methods=["GET"])
    router.add_api_route("/clients", create_client, methods=["POST"])
    router.add_api_route("/clients/{client_id}/rotate-key", rotate_key, methods=["POST"])
    router.add_api_route("/clients/{client_id}/deliveries", deliveries_page, methods=["GET"])
    router.add_api_route("/clients/{client_id}/deliveries/{message_id}/redeliver", redeliver, methods=["POST"])
    router.add_api_route("/clients/{client_id}/fhir-source", fhir_source_page, methods=["GET"])
    router.add_api_route("/clients/{client_id}/fhir-source", save_fhir_source, methods=["POST"])
    router.add_api_route("/clients/{client_id}/fhir-source/delete", delete_fhir_source, methods=["POST"])
    router.add_api_route("/practitioners/{practitioner_id}/sites/{site_id}/reviewed", site_reviewed, methods=["POST"])
    router.add_api_route("/sas/deliveries", sas_deliveries_page, methods=["GET"])
    router.add_api_route("/sas/deliveries/{message_id}/redeliver", sas_redeliver, methods=["POST"])
    router.add_api_route("/settings", settings_page, methods=["GET"])
    router.add_api_route("/settings", update_settings, methods=["POST"])
    return router


async def _form(request: Request) -> dict[str, Any]:
    data = await request.form()
    return {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items() if k != "csrf"}


def _blank_to_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if v == "" else v) for k, v in values.items()}


def _problem_errors(error: DomainError, fallback: str) -> dict[str, str]:
    """A service's refusal as French messages by field (its `errors`, or the whole form)."""
    found: dict[str, str] = {}
    # A refusal with a French text of its own (e.g. an address refused) says it at its field.
    own_text = labels.PROBLEMS.get(error.code)
    for item in error.extra.get("errors") or []:
        location = [str(p) for p in item.get("loc", []) if p not in ("body",)]
        found.setdefault(".".join(location), own_text or labels.validation_text(item))
    if not found:
        found[fallback] = labels.problem_text(error.code)
    return found


def _validated(model: type[BaseModel], values: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    try:
        return model.model_validate(values), {}
    except ValidationError as error:
        return None, field_errors(error)


def _see(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


# --- practitioners --------------------------------------------------------------------------------------


async def practitioners_page(request: Request, principal: ConsoleUser, session: SessionDep) -> Response:
    coordinator_only(principal)
    return await _practitioners(request, principal, session, {}, {})


async def _practitioners(
    request: Request,
    principal: Principal,
    session: SessionDep,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    page = await practitioners.list_members(
        session, principal.cpts_id, None, profession=None, specialty=None, active=None, limit=500, cursor=None
    )
    return render(
        request,
        "manage_practitioners.html",
        status_code=status_code,
        members=page.items,
        values=values,
        errors=errors,
        professions=PROFESSIONS,
        specialties=specialties(),
        active="practitioners",
        profession_names=professions(),
    )


def _site_values(values: dict[str, Any]) -> dict[str, Any] | None:
    site = {
        "name": values.get("site_name"),
        "address": values.get("site_address"),
        "postal_code": values.get("site_postal_code"),
        "commune_insee": values.get("site_commune_insee"),
        "phone": values.get("site_phone"),
    }
    return None if not any(site.values()) else _blank_to_none(site)


async def create_practitioner(request: Request, principal: ConsoleUser, session: SessionDep, now: Now) -> Response:
    coordinator_only(principal)
    values = await _form(request)
    number = values.get("national_id", "").replace(" ", "")
    body: dict[str, Any] = {
        "rpps" if values.get("id_type", "rpps") == "rpps" else "adeli": number or None,
        "family_name": values.get("family_name"),
        "given_name": values.get("given_name"),
        "profession": values.get("profession"),
        "specialty": values.get("specialty") or None,
        "phone": values.get("phone") or None,
        "email": values.get("email") or None,
        "sites": [site] if (site := _site_values(values)) else [],
    }
    data, errors = _validated(PractitionerCreate, body)
    if errors:
        number_problem = "Un RPPS compte 11 chiffres ; un ADELI, 9 caractères (2 chiffres ou 2A/2B, puis 7 chiffres)."
        errors = {("national_id" if k in ("rpps", "adeli") else k): v for k, v in errors.items()}
        if "national_id" in errors:
            errors["national_id"] = number_problem
        return await _practitioners(request, principal, session, values, errors, 422)
    try:
        async with session.begin_nested():
            practitioner, _ = await practitioners.create(session, principal.cpts_id, data, now)
    except DomainError as error:
        return await _practitioners(request, principal, session, values, _problem_errors(error, "national_id"), 409)
    return _see(f"/console/manage/practitioners/{practitioner.id}")


async def practitioner_page(
    practitioner_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep
) -> Response:
    coordinator_only(principal)
    return await _practitioner(request, principal, session, practitioner_id, {}, {})


async def _practitioner(
    request: Request,
    principal: Principal,
    session: SessionDep,
    practitioner_id: uuid.UUID,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    member = await practitioners.member(session, principal.cpts_id, None, practitioner_id)
    return render(
        request,
        "manage_practitioner.html",
        status_code=status_code,
        member=member,
        values=values,
        errors=errors,
        professions=PROFESSIONS,
        specialties=specialties(),
        profession_names=professions(),
        active="practitioners",
    )


async def update_practitioner(
    practitioner_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    coordinator_only(principal)
    values = await _form(request)
    body = {
        "family_name": values.get("family_name"),
        "given_name": values.get("given_name"),
        "profession": values.get("profession"),
        "specialty": values.get("specialty") or None,
        "phone": values.get("phone") or None,
        "email": values.get("email") or None,
        "active": values.get("active") == "on",
    }
    patch, errors = _validated(PractitionerPatch, body)
    if errors:
        return await _practitioner(request, principal, session, practitioner_id, values, errors, 422)
    try:
        async with session.begin_nested():
            await practitioners.update(session, principal.cpts_id, practitioner_id, patch, now)
    except Invalid as error:
        problems = _problem_errors(error, "family_name")
        return await _practitioner(request, principal, session, practitioner_id, values, problems, 422)
    return _see(f"/console/manage/practitioners/{practitioner_id}?saved=1")


async def add_site(
    practitioner_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep
) -> Response:
    coordinator_only(principal)
    values = await _form(request)
    data, errors = _validated(SiteIn, _site_values(values) or {})
    if errors:
        errors = {f"site_{k}": v for k, v in errors.items()}
        return await _practitioner(request, principal, session, practitioner_id, values, errors, 422)
    await practitioners.add_site(session, principal.cpts_id, practitioner_id, data)
    return _see(f"/console/manage/practitioners/{practitioner_id}?saved=1")


# --- staff --------------------------------------------------------------------------------------------------


async def users_page(request: Request, principal: ConsoleUser, session: SessionDep, now: Now) -> Response:
    coordinator_only(principal)
    return await _users(request, principal, session, now, {}, {})


async def _users(
    request: Request,
    principal: Principal,
    session: SessionDep,
    now: Any,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    page = await accounts.list_users(session, principal.cpts_id, 500, None, now)
    return render(
        request,
        "manage_users.html",
        status_code=status_code,
        users=page.items,
        values=values,
        errors=errors,
        active="users",
    )


async def create_user(request: Request, principal: ConsoleUser, session: SessionDep, now: Now) -> Response:
    coordinator_only(principal)
    values = await _form(request)
    body = {k: values.get(k) for k in ("email", "display_name", "role", "password")} | {
        "rpps": values.get("rpps") or None
    }
    data, errors = _validated(UserCreate, body)
    if errors:
        return await _users(request, principal, session, now, values, errors, 422)
    try:
        async with session.begin_nested():
            await accounts.create_user(
                session, request.app.state.password_hasher, principal.cpts_id, data, principal.role
            )
    except DomainError as error:
        return await _users(request, principal, session, now, values, _problem_errors(error, "email"), error.status)
    return _see("/console/manage/users?saved=1")


async def update_user(
    user_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    coordinator_only(principal)
    values = await _form(request)
    patch, errors = _validated(UserPatch, {"role": values.get("role"), "active": values.get("active") == "on"})
    if errors:
        return await _users(request, principal, session, now, {}, {f"user-{user_id}": "Choix non valable."}, 422)
    try:
        async with session.begin_nested():
            await accounts.update_user(
                session, request.app.state.password_hasher, principal.cpts_id, user_id, patch, principal.role
            )
    except DomainError as error:
        problem = {f"user-{user_id}": labels.problem_text(error.code)}
        return await _users(request, principal, session, now, {}, problem, error.status)
    return _see("/console/manage/users?saved=1")


async def reset_mfa(user_id: uuid.UUID, principal: ConsoleUser, session: SessionDep) -> Response:
    coordinator_only(principal)
    await accounts.reset_second_factor(session, principal.cpts_id, user_id)
    return _see("/console/manage/users?saved=1")


async def unlock_user(user_id: uuid.UUID, principal: ConsoleUser, session: SessionDep) -> Response:
    coordinator_only(principal)
    await accounts.unlock(session, principal.cpts_id, user_id)
    return _see("/console/manage/users?saved=1")


# --- practice software -----------------------------------------------------------------------------------


async def clients_page(request: Request, principal: ConsoleUser, session: SessionDep) -> Response:
    coordinator_only(principal)
    return await _clients(request, principal, session, {}, {})


async def _clients(
    request: Request,
    principal: Principal,
    session: SessionDep,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
    shown_key: str | None = None,
    shown_secret: str | None = None,
) -> Response:
    page = await accounts.list_clients(session, principal.cpts_id, 200, None)
    return render(
        request,
        "manage_clients.html",
        status_code=status_code,
        clients=page.items,
        sources=await connectors.sources_of(session, principal.cpts_id),
        values=values,
        errors=errors,
        shown_key=shown_key,
        shown_secret=shown_secret,
        active="clients",
    )


async def create_client(request: Request, principal: ConsoleUser, session: SessionDep) -> Response:
    coordinator_only(principal)
    values = await _form(request)
    members = await practitioners.list_members(
        session, principal.cpts_id, None, profession=None, specialty=None, active=True, limit=5000, cursor=None
    )
    body = {
        "name": values.get("name"),
        "webhook_url": values.get("webhook_url") or None,
        "practitioner_ids": [str(m.id) for m in members.items] if values.get("all_members") == "on" else [],
    }
    data, errors = _validated(ClientCreate, body)
    if errors:
        return await _clients(request, principal, session, values, errors, 422)
    try:
        async with session.begin_nested():
            created = await accounts.create_client(session, principal.cpts_id, data, request.app.state.webhook_policy)
    except DomainError as error:
        problems = _problem_errors(error, "webhook_url")
        return await _clients(request, principal, session, values, problems, error.status)
    return await _clients(request, principal, session, {}, {}, 201, created.api_key, created.webhook_secret)


# --- an editor's SAS interface as a source of slots (FHIR source) -------------------------------------------

_KEEP = "keep"


async def fhir_source_page(
    client_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    coordinator_only(principal)
    saved = request.query_params.get("saved")
    return await _fhir_source(request, principal, session, client_id, None, {}, now, saved=saved)


async def _fhir_source(
    request: Request,
    principal: Principal,
    session: SessionDep,
    client_id: uuid.UUID,
    values: dict[str, Any] | None,
    errors: dict[str, str],
    now: datetime,
    status_code: int = 200,
    saved: str | None = None,
) -> Response:
    client = await accounts.get_client(session, principal.cpts_id, client_id)
    source = await connectors.find_source(session, principal.cpts_id, client_id)
    review = await practitioners.sites_to_review(session, principal.cpts_id, list(client.practitioner_ids))
    choices = [
        ("bearer_token", "Un jeton d'accès"),
        ("client_certificate", "Un certificat client et sa clé"),
        ("none", "Aucun"),
    ]
    if source is not None:
        choices.insert(0, (_KEEP, "Garder ceux enregistrés"))
    return render(
        request,
        "manage_fhir_source.html",
        status_code=status_code,
        client=client,
        source=source,
        review=review,
        values=values if values is not None else _source_values(source),
        errors=errors,
        credential_choices=choices,
        saved=saved,
        now=now,
        active="clients",
    )


def _source_values(source: FhirSourceOut | None) -> dict[str, Any]:
    """The form as the source stands (or as a new source starts: the SAS's own window and types)."""
    if source is None:
        return {
            "flow": Flow.INT_R01.value,
            "window_hours": DEFAULT_WINDOW_HOURS,
            "interval_minutes": DEFAULT_INTERVAL_SECONDS // 60,
            "slot_types": list(DEFAULT_SLOT_TYPES),
            "credentials": "bearer_token",
            "enabled": True,
        }
    return {
        "base_url": source.base_url,
        "flow": source.flow.value,
        "window_hours": source.window_hours,
        "interval_minutes": source.interval_seconds // 60,
        "slot_types": source.slot_types,
        "credentials": _KEEP,
        "enabled": source.enabled,
    }


async def save_fhir_source(
    client_id: uuid.UUID,
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    now: Now,
) -> Response:
    """The API's `PUT /v1/clients/{id}/fhir-source` from the form; the secrets typed are never
    shown again (the page comes back with empty secret fields)."""
    coordinator_only(principal)
    form = await request.form()
    values: dict[str, Any] = {
        k: v.strip() for k, v in form.items() if isinstance(v, str) and k not in ("csrf", "slot_types")
    }
    values["slot_types"] = [v for v in form.getlist("slot_types") if isinstance(v, str)]
    values["enabled"] = values.get("enabled") == "on"
    stored = await connectors.find_source(session, principal.cpts_id, client_id) is not None
    body, errors = _source_body(values, stored)
    data, invalid = _validated(FhirSourceIn, body)
    errors = {**{("interval_minutes" if k == "interval_seconds" else k): v for k, v in invalid.items()}, **errors}
    shown = {k: v for k, v in values.items() if k not in SECRET_FIELDS}
    if errors:
        return await _fhir_source(request, principal, session, client_id, shown, errors, now, 422)
    try:
        async with session.begin_nested():
            secret = settings.secret_key.get_secret_value()
            await connectors.put_source(
                session, principal, client_id, data, request.app.state.webhook_policy, secret, now, request
            )
    except DomainError as error:
        problems = _problem_errors(error, "")
        return await _fhir_source(request, principal, session, client_id, shown, problems, now, error.status)
    return _see(f"/console/manage/clients/{client_id}/fhir-source?saved=1")


SECRET_FIELDS = frozenset({"bearer_token", "client_cert", "client_key"})


def _source_body(values: dict[str, Any], stored: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The API body from the form: minutes to seconds, and the credentials chosen (kept, replaced
    by a token or a certificate, or removed)."""
    errors: dict[str, str] = {}
    body: dict[str, Any] = {
        "base_url": values.get("base_url", ""),
        "flow": values.get("flow"),
        "window_hours": values.get("window_hours") or None,
        "slot_types": values["slot_types"],
        "enabled": values["enabled"],
    }
    minutes = values.get("interval_minutes", "")
    if not re.fullmatch(r"[0-9]{1,5}", minutes):  # not str.isdigit: "²" is a digit that int() refuses
        errors["interval_minutes"] = "Nombre entier de minutes attendu."
    else:
        body["interval_seconds"] = int(minutes) * 60
    if not values["slot_types"]:
        errors["slot_types"] = "Choisissez au moins un type de créneaux."
    kind = values.get("credentials", _KEEP)
    if kind == _KEEP and not stored:
        errors["credentials"] = "Choisissez les identifiants donnés par l'éditeur."
    if kind == "bearer_token":
        body.update(bearer_token=values.get("bearer_token") or None, client_cert=None, client_key=None)
        if body["bearer_token"] is None:
            errors["bearer_token"] = "Collez le jeton donné par l'éditeur."  # noqa: S105 - a message, not a secret
    elif kind == "client_certificate":
        body.update(bearer_token=None, client_cert=values.get("client_cert") or None)
        body["client_key"] = values.get("client_key") or None
        for name in ("client_cert", "client_key"):
            if body[name] is None:
                errors[name] = "Collez le certificat et sa clé privée (PEM)."
    elif kind == "none":
        body.update(bearer_token=None, client_cert=None, client_key=None)
    if body["window_hours"] is None:
        errors["window_hours"] = "Champ obligatoire."
    return body, errors


async def delete_fhir_source(
    client_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    coordinator_only(principal)
    await connectors.delete_source(session, principal, client_id, now, request)
    return _see(f"/console/manage/clients/{client_id}/fhir-source?saved=stopped")


async def site_reviewed(
    practitioner_id: uuid.UUID, site_id: uuid.UUID, principal: ConsoleUser, session: SessionDep
) -> Response:
    """A coordinator checked a place a pull created (the API's `PATCH .../sites/{id}`)."""
    coordinator_only(principal)
    patch = SitePatch(needs_review=False)
    await practitioners.update_site(session, principal.cpts_id, practitioner_id, site_id, patch)
    return _see(f"/console/manage/practitioners/{practitioner_id}?saved=1")


async def rotate_key(
    client_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    coordinator_only(principal)
    rotated = await accounts.rotate_key(session, principal.cpts_id, client_id, now)
    return await _clients(request, principal, session, {}, {}, 200, rotated.api_key)


async def deliveries_page(
    client_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep
) -> Response:
    coordinator_only(principal)
    client = await accounts_repository.get_client(session, principal.cpts_id, client_id)
    page = await notifications.deliveries(session, principal.cpts_id, client_id, None, None, 100)
    return _deliveries(request, f"Livraisons à {client.name}", f"/console/manage/clients/{client_id}/deliveries", page)


def _deliveries(request: Request, heading: str, base_path: str, page: Page[DeliveryOut], intro: str = "") -> Response:
    """A list of deliveries with their redelivery buttons (a client's webhooks, the SAS's appointments)."""
    return render(
        request,
        "manage_deliveries.html",
        heading=heading,
        intro=intro,
        base_path=base_path,
        deliveries=page.items,
        active="clients",
    )


async def redeliver(
    client_id: uuid.UUID, message_id: int, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    coordinator_only(principal)
    await notifications.redeliver(session, principal.cpts_id, client_id, message_id, now)
    return _see(f"/console/manage/clients/{client_id}/deliveries?saved=1")


async def sas_deliveries_page(request: Request, principal: ConsoleUser, session: SessionDep) -> Response:
    """The appointments sent to the SAS for the requests it regulated (INT_R03), dead letters included."""
    coordinator_only(principal)
    page = await notifications.sas_deliveries(session, principal.cpts_id, None, None, 100)
    intro = (
        "Les rendez-vous des demandes régulées par le SAS lui sont transmis à la réservation, puis à "
        "chaque changement (annulation, rendez-vous honoré ou non). Un envoi abandonné peut être relivré."
    )
    return _deliveries(request, "Rendez-vous transmis au SAS", "/console/manage/sas/deliveries", page, intro)


async def sas_redeliver(message_id: int, principal: ConsoleUser, session: SessionDep, now: Now) -> Response:
    coordinator_only(principal)
    await notifications.redeliver(session, principal.cpts_id, None, message_id, now)
    return _see("/console/manage/sas/deliveries?saved=1")


# --- settings -----------------------------------------------------------------------------------------------


async def settings_page(request: Request, principal: ConsoleUser, session: SessionDep, now: Now) -> Response:
    coordinator_only(principal)
    return await _settings(request, principal, session, now, {}, {})


async def _settings(
    request: Request,
    principal: Principal,
    session: SessionDep,
    now: Any,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    cpts = await cpts_service.current(await session.connection(), principal.cpts_id, now)
    overrides = "\n".join(f"{code} = {value}" for code, value in sorted(cpts.motif_overrides.items()))
    return render(
        request,
        "manage_settings.html",
        status_code=status_code,
        cpts=cpts,
        values=values,
        errors=errors,
        overrides=overrides,
        target_labels=TARGET_LABELS,
        percent_targets=PERCENT_TARGETS,
        active="settings",
    )


def _number(text: str | None, percent: bool = False) -> float | str | None:
    """A French number ("80", "80,5") as the API's value (a rate given in % becomes 0.805)."""
    if not text:
        return None
    try:
        value = float(text.replace(",", ".").replace("%", "").strip())
    except ValueError:
        return text  # the model says why
    return value / 100 if percent else value


async def update_settings(
    request: Request, principal: ConsoleUser, session: SessionDep, settings: SettingsDep, now: Now
) -> Response:
    coordinator_only(principal)
    values = await _form(request)
    section = values.get("section")
    body: dict[str, Any] = {}
    if section == "general":
        body = {
            k: values.get(k) or None
            for k in ("response_window_hours", "hold_ttl_seconds", "min_lead_minutes", "duplicate_window_hours")
        }
        body["mfa_required"] = values.get("mfa_required") == "on"
    elif section == "compensation":
        body = {
            "compensation": {
                k: (values.get(k) or "").replace(",", ".") or None
                for k in (
                    "hourly_rate_unfilled",
                    "hourly_rate_filled",
                    "annual_envelope",
                    "annual_cap_per_professional",
                )
            }
        }
        body["compensation"]["min_notice_hours"] = values.get("min_notice_hours") or None
        body["compensation"]["effective_from"] = values.get("compensation_from") or None
        body["compensation"] = {k: v for k, v in body["compensation"].items() if v is not None}
    elif section == "targets":
        targets = {k: _number(values.get(f"target_{k}"), k in PERCENT_TARGETS) for k in TARGET_INDICATORS}
        body = {
            "targets": {
                "values": {k: v for k, v in targets.items() if v is not None},
                "effective_from": values.get("targets_from") or None,
            }
        }
    elif section == "motifs":
        pairs = [line.split("=", 1) for line in (values.get("motif_overrides") or "").splitlines() if "=" in line]
        body = {"motif_overrides": {code.strip(): value.strip() for code, value in pairs}}
    patch, errors = _validated(CptsPatch, {k: v for k, v in body.items() if v is not None})
    if errors:
        return await _settings(request, principal, session, now, values, errors, 422)
    try:
        async with session.begin_nested():
            await cpts_service.update(session, principal.cpts_id, patch, now)
    except DomainError as error:
        return await _settings(request, principal, session, now, values, _problem_errors(error, section or ""), 422)
    return _see("/console/manage/settings?saved=1")
