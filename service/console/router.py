"""The call handlers' console: French pages served at /console/, driven by htmx (no build step, no
other host). Every action goes through the same service functions as the API (rules, audit,
idempotency, one transaction per request); this module only reads forms and renders pages."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from service import idempotency
from service.accounts import service as accounts
from service.accounts.domain import ORIENTING_ROLES, Role
from service.auth import Principal
from service.bookings import repository as bookings_repository
from service.bookings import service as bookings
from service.bookings.schemas import CancelIn
from service.clock import Now
from service.config import SettingsDep
from service.console import coordination, labels, management, views
from service.console.session import (
    ConsoleUser,
    CsrfRefused,
    LoginRequired,
    clear_session,
    login_nonce,
    login_nonce_ok,
    remember_login_nonce,
    set_session,
)
from service.console.views import field_errors, moment, refusal, render, time_left
from service.cpts import repository as cpts_repository
from service.db import SessionDep
from service.errors import DomainError, Forbidden
from service.flows import orientation as flows
from service.flows import patient_messages
from service.notifications import patients
from service.orientation import service as requests
from service.orientation.domain import RequestStatus, notify_problem
from service.orientation.schemas import CallbackIn, DuplicateCheck, OrientationIn, OverrideIn, RequestCreate
from service.practitioners import service as practitioners_service
from service.reference.codes import motifs, red_flags
from service.reference.communes import commune, normalise
from service.reference.communes import search as search_communes
from service.routing import TransactionalRoute
from service.slots import repository as slots_repository
from service.slots import service as slots_service
from service.slots.domain import Modality

STATIC = Path(__file__).parent / "static"
QUEUE_REFRESH_SECONDS = 15
# Nothing from another host, no inline script or style.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


class ConsoleRoute(TransactionalRoute):
    """A transaction per request, as the API's; the service's refusals become French fragments
    shown in the page's alert region (their 4xx status rolls the transaction back)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                response = _to_login(request)
            except CsrfRefused:
                response = _alert(request, "Ce formulaire a expiré : rechargez la page.", 403)
            except DomainError as error:
                if _is_htmx(request):
                    response = _retarget_alert(request, refusal(request, error.code, error.status))
                else:  # a page asked for directly: the refusal in the page's layout
                    message = labels.problem_text(error.code)
                    response = render(request, "error.html", status_code=error.status, message=message)
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Cache-Control", "no-store")  # pages show patients' identities
            return response

        return console_handler


router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(coordination.make_router(ConsoleRoute))
    app.include_router(management.make_router(ConsoleRoute))
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")


def _is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _to_login(request: Request) -> Response:
    if _is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": "/console/login"})
    return RedirectResponse("/console/login", status_code=303)


def _retarget_alert(request: Request, response: Response) -> Response:
    if _is_htmx(request):
        response.headers["HX-Retarget"] = "#alerts"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


def _alert(request: Request, message: str, status_code: int) -> Response:
    return _retarget_alert(request, render(request, "_problem.html", status_code=status_code, message=message))


def _navigate(url: str) -> Response:
    """After a change: htmx loads `url` as a new page (a reload then shows it, never re-posts)."""
    return Response(status_code=200, headers={"HX-Redirect": url})


def _may_orient(principal: Principal) -> None:
    if principal.role not in ORIENTING_ROLES:
        raise Forbidden("forbidden_role", "Orienting patients is for handlers and regulators.")


async def _claim_key(request: Request, principal: Principal, session: SessionDep) -> None:
    """The page's idempotency key: a double-click, or a retry after a lost answer, replays the
    first answer instead of acting twice."""
    form = await request.form()  # parsed once (Starlette keeps it); the digest covers what was posted
    posted = urlencode(sorted((k, v) for k, v in form.multi_items() if isinstance(v, str))).encode()
    await idempotency.guard(request, principal, session, request.headers.get("Idempotency-Key"), posted)


# --- sign-in -------------------------------------------------------------------------------------------


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/console/queue", status_code=303)


@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    return _login_form(request, 200)


@router.post("/login")
async def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: Now,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    otp: Annotated[str | None, Form(max_length=20)] = None,
    nonce: Annotated[str | None, Form(max_length=100)] = None,
) -> Response:
    if not login_nonce_ok(request, nonce):
        return _login_again(request, "La page de connexion a expiré : réessayez.", email, 400)
    attempt = accounts.LoginAttempt(
        email=email, password=password, otp=otp or None, cpts_id=None,
        address=request.client.host if request.client else None,
    )  # fmt: skip
    try:
        token = await accounts.login(
            session, request.app.state.sessionmaker, request.app.state.password_hasher, settings, attempt, now
        )
    except DomainError as error:
        ask_otp = error.code in ("otp_required", "invalid_otp")
        return _login_again(request, labels.problem_text(error.code), email, error.status, ask_otp=ask_otp)
    response = RedirectResponse("/console/mfa" if token.mfa_enrollment_required else "/console/queue", status_code=303)
    set_session(response, token.access_token, token.expires_in)
    return response


def _login_again(request: Request, message: str, email: str, status: int, *, ask_otp: bool = False) -> Response:
    return _login_form(request, status, message=message, email=email, ask_otp=ask_otp)


def _login_form(request: Request, status: int, **context: Any) -> HTMLResponse:
    nonce = login_nonce(request)
    response = render(request, "login.html", status_code=status, principal=None, nonce=nonce, **context)
    remember_login_nonce(response, nonce)
    return response


@router.post("/logout")
async def logout(request: Request, principal: ConsoleUser) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    clear_session(response)
    return response


@router.get("/mfa")
async def mfa_page(request: Request, principal: ConsoleUser, session: SessionDep, settings: SettingsDep) -> Response:
    """The CPTS requires a second factor: enrol one (a key for an authenticator app, then a code)."""
    enrollment = await accounts.enroll_second_factor(session, principal.cpts_id, principal.id, settings)
    secret = " ".join(enrollment.secret[i : i + 4] for i in range(0, len(enrollment.secret), 4))
    return render(request, "mfa.html", secret=secret, uri=enrollment.otpauth_uri)


@router.post("/mfa")
async def mfa_activate(
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    now: Now,
    code: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    activated = await accounts.activate_second_factor(
        session, principal.cpts_id, principal.id, settings, code.strip(), now
    )
    response = render(request, "mfa_done.html", principal=None, codes=activated.recovery_codes)
    clear_session(response)  # tokens issued before no longer work: sign in again with the code
    return response


def _require_full_session(principal: Principal) -> Response | None:
    if principal.enrollment_only:
        return RedirectResponse("/console/mfa", status_code=303)
    return None


# --- the queue ---------------------------------------------------------------------------------------


@router.get("/queue")
async def queue_page(request: Request, principal: ConsoleUser, session: SessionDep, now: Now) -> Response:
    if (redirect := _require_full_session(principal)) is not None:
        return redirect
    return render(request, "queue.html", **await _queue(request, principal, session, now))


@router.get("/queue/rows")
async def queue_rows(request: Request, principal: ConsoleUser, session: SessionDep, now: Now) -> Response:
    """The rows alone, polled every few seconds: the rest of the page (what is typed) stays."""
    if principal.enrollment_only:
        raise LoginRequired
    return render(request, "_queue_rows.html", **await _queue(request, principal, session, now))


async def _queue(request: Request, principal: Principal, session: SessionDep, now: datetime) -> dict[str, Any]:
    page = await requests.queue(await session.connection(), principal, None, None, 100, None, now, request)
    rows = [{"item": item, "left": time_left(item.deadline_at, now), "received": moment(item.received_at, now),
             "callback_due": item.callback_due_at is not None and item.callback_due_at <= now,
             "callback": moment(item.callback_due_at, now) if item.callback_due_at else None}
            for item in page.items]  # fmt: skip
    return {"rows": rows, "now": now, "refresh": QUEUE_REFRESH_SECONDS}


# --- a new request -------------------------------------------------------------------------------------


@router.get("/requests/new")
async def new_request_page(
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    slot_id: Annotated[uuid.UUID | None, Query()] = None,
    origin: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """A new request; from the SAS's link, with the slot the regulator chose (booked on saving)."""
    if (redirect := _require_full_session(principal)) is not None:
        return redirect
    values: dict[str, Any] = {}
    chosen = None
    if slot_id is not None:
        chosen = await bookings_repository.slot_details(session, principal.cpts_id, slot_id)
        values = {"slot_id": str(slot_id), "via_sas": "on" if origin == "sas" else None}
    return render(request, "new_request.html", chosen=chosen, **_form_context(request, values, {}))


@router.get("/sas/practitioners/{practitioner_id}")
async def sas_practitioner(
    practitioner_id: uuid.UUID,
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
    origin: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """Where the SAS sends a regulator who chose this practitioner (the Slot's `comment`): their
    free slots of the coming three days, each to book for the patient on the phone."""
    if (redirect := _require_full_session(principal)) is not None:
        return redirect
    member = await practitioners_service.member(session, principal.cpts_id, None, practitioner_id)
    rows = await slots_repository.free_slots(
        session, principal.cpts_id, now, start_from=now, start_to=now + timedelta(hours=72), limit=60,
        practitioner_id=practitioner_id,
    )  # fmt: skip
    slots = [slots_service.found_of(row) for row in rows]
    return render(request, "sas_practitioner.html", member=member, slots=slots, origin=origin)


def _form_context(request: Request, values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "red_flags": red_flags(),
        "channels": patients.channels(request.app.state.settings),
        "modalities": labels.MODALITIES,
    }


def _request_body(form: dict[str, Any]) -> dict[str, Any]:
    """The form as the API's RequestCreate body (empty fields are absent)."""

    def text(name: str) -> str | None:
        value = form.get(name)
        return value.strip() or None if isinstance(value, str) else None

    patient = {
        "family_name": text("family_name"),
        "given_name": text("given_name"),
        "birth_date": text("birth_date"),
        "sex": text("sex"),
        "phone": text("patient_phone"),
        "email": text("email"),
        "address": text("address"),
        "commune_insee": text("commune_insee"),
        "identity_status": text("identity_status") or "PROV",
        "ins": text("ins"),
    }
    needs: dict[str, Any] = {"modalities": form.get("modalities") or ["AMB", "VR", "HH"]}
    if text("profession"):
        needs["profession"] = text("profession")
    if text("specialty"):
        needs["specialty"] = text("specialty")
    body: dict[str, Any] = {
        "channel": text("channel") or "phone",
        "caller": {"relation": text("caller_relation") or "self", "phone": text("caller_phone")},
        "patient": {k: v for k, v in patient.items() if v is not None},
        "motif": text("motif") or "",
        "red_flags": form.get("red_flags") or [],
        "needs": needs,
        "note": text("note"),
        "via_sas": form.get("via_sas") == "on",
        "regulating_physician": text("regulating_physician"),
        "notify_by": form.get("notify_by") or [],
    }
    return {k: v for k, v in body.items() if v is not None}


async def _form(request: Request) -> dict[str, Any]:
    """Form fields; repeated ones (checkboxes) as lists."""
    data = await request.form()
    many = {"red_flags", "modalities", "notify_by"}
    return {key: data.getlist(key) if key in many else data.get(key) for key in data}


@router.post("/requests/duplicates")
async def duplicates_check(request: Request, principal: ConsoleUser, session: SessionDep, now: Now) -> Response:
    """While the handler types: is this patient (or this phone) already in a recent request?"""
    body = _request_body(await _form(request))
    try:
        check = DuplicateCheck.model_validate({"caller": body.get("caller", {}), "patient": body.get("patient", {})})
    except ValidationError:
        return render(request, "_duplicates.html", found=[])  # not typed enough yet to compare
    found = await requests.check_duplicates(session, principal, check, now, request)
    return render(request, "_duplicates.html", found=found)


@router.post("/requests")
async def create_request(request: Request, principal: ConsoleUser, session: SessionDep, now: Now) -> Response:
    _may_orient(principal)
    await _claim_key(request, principal, session)
    form = await _form(request)
    try:
        data = RequestCreate.model_validate(_request_body(form))
    except ValidationError as error:
        errors = field_errors(error)
        return render(request, "_new_request_form.html", status_code=422, **_form_context(request, form, errors))
    created = await requests.create(session, principal, data, now, request)
    chosen = form.get("slot_id")
    if isinstance(chosen, str) and chosen and created.status == RequestStatus.open.value:
        try:  # the slot the regulator chose on the SAS: booked at once, if it is still free
            async with session.begin_nested():
                booked = await bookings.take_slot(
                    session, principal, created.id, uuid.UUID(chosen), now, confirm=True, http=request
                )
        except (DomainError, ValueError):
            return _navigate(f"/console/requests/{created.id}")  # taken meanwhile: the suggestions
        return _navigate(f"/console/bookings/{booked.booking_id}")
    return _navigate(f"/console/requests/{created.id}")


@router.get("/communes")
async def communes(
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    commune_query: Annotated[str, Query(alias="commune_query", max_length=80)] = "",
) -> Response:
    """Communes by name, postal code or INSEE code: the CPTS's territory first."""
    territory = set((await cpts_repository.get(session, principal.cpts_id)).territory)
    found = sorted(search_communes(commune_query, 30), key=lambda c: c.code not in territory)[:8]
    return render(request, "_communes.html", found=found, query=commune_query)


@router.get("/motifs")
async def motif_options(
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    motif_query: Annotated[str, Query(alias="motif_query", max_length=80)] = "",
) -> Response:
    """Hub Santé motifs whose label contains every word typed, with the CPTS's classification."""
    words = normalise(motif_query).split()
    found = []
    if words:
        for motif in await requests.motifs_of(session, principal):
            label = normalise(motif.label)
            if all(w in label for w in words) and motif.level > 1:
                found.append(motif)
    found.sort(key=lambda m: (not normalise(m.label).startswith(words[0]) if words else 0, m.label))
    return render(request, "_motifs.html", found=found[:10], query=motif_query)


# --- a request -----------------------------------------------------------------------------------------


@router.get("/requests/{request_id}")
async def request_page(
    request_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    if (redirect := _require_full_session(principal)) is not None:
        return redirect
    return render(request, "request.html", **await _request_context(request, principal, session, request_id, now))


async def _request_context(
    request: Request, principal: Principal, session: SessionDep, request_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    detail = await flows.request_detail(session, principal, request_id, now, request)
    hold = next((b for b in detail.bookings if b.status == "held"), None)
    booked = next((b for b in detail.bookings if b.status == "booked"), None)
    place = commune(detail.patient.commune_insee) if detail.patient.commune_insee else None
    return {
        "detail": detail,
        "hold": hold,
        "booked": booked,
        "commune": place,
        "left": time_left(detail.deadline_at, now),
        "now": now,
        "may_orient": principal.role in ORIENTING_ROLES,
        "is_regulator": principal.role is Role.regulator,
        "red_flags": red_flags(),
        "motif": motifs().get(detail.motif),
    }


def _not_before(value: str | None, now: datetime) -> datetime | None:
    """ "HH:MM" typed by the handler: the next such time in the CPTS's zone (today, or tomorrow if past)."""
    if not value:
        return None
    try:
        wanted = time.fromisoformat(value)
    except ValueError:
        return None
    local = views.local(now)
    candidate = local.replace(hour=wanted.hour, minute=wanted.minute, second=0, microsecond=0)
    return candidate if candidate >= local - timedelta(minutes=1) else candidate + timedelta(days=1)


@router.get("/requests/{request_id}/suggestions")
async def suggestions(
    request_id: uuid.UUID,
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
    not_before: Annotated[str | None, Query(max_length=5)] = None,
    modality: Annotated[list[Modality] | None, Query()] = None,
    max_distance_km: Annotated[str | None, Query(max_length=6)] = None,
) -> Response:
    filters = bookings.SuggestionFilters(
        not_before=_not_before(not_before, now),
        max_distance_km=_distance(max_distance_km),
        modalities=frozenset(modality) if modality else None,
    )
    found = await bookings.suggestions(session, principal, request_id, 8, now, filters)
    return render(
        request, "_suggestions.html", found=found, request_id=request_id,
        filters={"not_before": not_before or "", "modality": [m.value for m in modality or []],
                 "max_distance_km": max_distance_km or ""},
    )  # fmt: skip


def _distance(value: str | None) -> float | None:
    try:
        distance = float((value or "").replace(",", "."))
    except ValueError:
        return None
    return distance if 0 < distance <= 500 else None


async def _take(
    request: Request,
    principal: Principal,
    session: SessionDep,
    request_id: uuid.UUID,
    now: datetime,
    *,
    confirm: bool,
) -> Response:
    """Hold or book the chosen slot. Someone else was quicker: say so and offer the slots left."""
    _may_orient(principal)
    await _claim_key(request, principal, session)
    slot_id = uuid.UUID(str((await request.form()).get("slot_id", "")))
    try:
        async with session.begin_nested():  # the lost race undoes only its own attempt
            taken = await bookings.take_slot(
                session, principal, request_id, slot_id, now, confirm=confirm, http=request
            )
    except DomainError as error:
        if error.code != "slot_unavailable":
            raise
        found = await bookings.suggestions(session, principal, request_id, 8, now)
        return render(
            request, "_suggestions.html", status_code=409, found=found, request_id=request_id, filters={},
            message=labels.problem_text(error.code),
        )  # fmt: skip
    if confirm:
        return _navigate(f"/console/bookings/{taken.booking_id}")
    return render(request, "_hold.html", hold=taken, request_id=request_id, now=now)


@router.post("/requests/{request_id}/hold")
async def hold(
    request_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    return await _take(request, principal, session, request_id, now, confirm=False)


@router.post("/requests/{request_id}/book")
async def book(
    request_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    return await _take(request, principal, session, request_id, now, confirm=True)


@router.post("/bookings/{booking_id}/confirm")
async def confirm(
    booking_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    _may_orient(principal)
    await _claim_key(request, principal, session)
    confirmed = await bookings.confirm(session, principal, booking_id, now, request)
    return _navigate(f"/console/bookings/{confirmed.booking_id}")


@router.post("/bookings/{booking_id}/release")
async def release(
    booking_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    _may_orient(principal)
    await _claim_key(request, principal, session)
    released = await bookings.release(session, principal, booking_id, now, request)
    return _navigate(f"/console/requests/{released.request_id}")


@router.get("/bookings/{booking_id}")
async def confirmation_page(
    booking_id: uuid.UUID, request: Request, principal: ConsoleUser, session: SessionDep, now: Now
) -> Response:
    """What to tell the patient: time, practitioner, address, phone, reference; and to send it."""
    if (redirect := _require_full_session(principal)) is not None:
        return redirect
    booking = await bookings.get(session, principal, booking_id)
    context = await _request_context(request, principal, session, booking.request_id, now)
    patient = context["detail"].patient
    offered = patients.channels(request.app.state.settings)
    channels = {c: notify_problem([c], patient.phone, patient.email) for c in offered}  # None: reachable
    return render(request, "confirmation.html", booking=booking, **context, channels=channels)


@router.post("/bookings/{booking_id}/send")
async def send_to_patient(
    booking_id: uuid.UUID,
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
    channel: Annotated[str, Form(pattern="^(sms|email)$")] = "sms",
) -> Response:
    _may_orient(principal)
    await _claim_key(request, principal, session)
    messages = await patient_messages.send_confirmation(session, principal, booking_id, channel, now, request)
    return render(request, "_messages.html", messages=messages, booking_id=booking_id)


@router.post("/bookings/{booking_id}/cancel")
async def cancel(
    booking_id: uuid.UUID,
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
    reason: Annotated[str, Form(max_length=500)] = "",
    cancelled_by: Annotated[str, Form(max_length=20)] = "patient",
) -> Response:
    _may_orient(principal)
    await _claim_key(request, principal, session)
    try:
        data = CancelIn.model_validate({"reason": reason, "cancelled_by": cancelled_by})
    except ValidationError:
        return _alert(request, "Indiquez le motif de l'annulation.", 422)
    cancelled = await bookings.cancel(session, principal, booking_id, data, now, request)
    return _navigate(f"/console/requests/{cancelled.request_id}")


@router.post("/requests/{request_id}/orient")
async def orient(
    request_id: uuid.UUID,
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
    outcome: Annotated[str, Form(max_length=30)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _may_orient(principal)
    await _claim_key(request, principal, session)
    try:
        data = OrientationIn.model_validate({"outcome": outcome, "note": note.strip() or None})
    except ValidationError:
        return _alert(request, "Choisissez une orientation.", 422)
    await flows.orient(session, principal, request_id, data, now, request)
    return _navigate(f"/console/requests/{request_id}")


@router.post("/requests/{request_id}/override")
async def override(
    request_id: uuid.UUID,
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
    regulating_physician: Annotated[str, Form(max_length=11)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _may_orient(principal)
    await _claim_key(request, principal, session)
    try:
        data = OverrideIn.model_validate(
            {"regulating_physician": regulating_physician.strip() or None, "note": note.strip() or None}
        )
    except ValidationError:
        return _alert(request, "RPPS non valable (11 chiffres).", 422)
    await requests.override_red_flag(session, principal, request_id, data, now, request)
    return _navigate(f"/console/requests/{request_id}")


@router.post("/requests/{request_id}/notes")
async def add_note(
    request_id: uuid.UUID,
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
    text: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _may_orient(principal)
    await _claim_key(request, principal, session)
    if not text.strip():
        return _alert(request, "La note est vide.", 422)
    await requests.add_note(session, principal, request_id, text.strip(), now, request)
    detail = await flows.request_detail(session, principal, request_id, now, request)
    return render(request, "_notes.html", detail=detail)


@router.post("/requests/{request_id}/callbacks")
async def schedule_callback(
    request_id: uuid.UUID,
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
    in_minutes: Annotated[str, Form(max_length=4)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    _may_orient(principal)
    await _claim_key(request, principal, session)
    try:
        minutes = int(in_minutes)
    except ValueError:
        return _alert(request, "Indiquez dans combien de minutes rappeler.", 422)
    if not 0 <= minutes <= 24 * 60:
        return _alert(request, "Un rappel se prévoit dans les 24 heures.", 422)
    data = CallbackIn(due_at=now + timedelta(minutes=minutes), reason=reason.strip() or None)
    await requests.schedule_callback(session, principal, request_id, data, now)
    detail = await flows.request_detail(session, principal, request_id, now, request)
    return render(request, "_callbacks.html", detail=detail, now=now)


@router.post("/requests/{request_id}/callbacks/{callback_id}/done")
async def complete_callback(
    request_id: uuid.UUID,
    callback_id: uuid.UUID,
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
) -> Response:
    _may_orient(principal)
    await requests.complete_callback(session, principal, request_id, callback_id, now)
    detail = await flows.request_detail(session, principal, request_id, now, request)
    return render(request, "_callbacks.html", detail=detail, now=now)


# --- find ------------------------------------------------------------------------------------------------


@router.get("/search")
async def search_page(
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """Requests by phone, name or booking reference (audited like any read)."""
    if (redirect := _require_full_session(principal)) is not None:
        return redirect
    typed = q.strip()
    found = await requests.search(session, principal, typed, 30, now, request) if len(typed) >= 2 else None
    rows = [{"item": i, "left": time_left(i.deadline_at, now)} for i in found or []]
    return render(request, "search.html", q=typed, rows=rows, searched=found is not None)
