"""The console over HTTP: its session cookie, CSRF, expiry, roles, tenants, French refusals, and
pages that load nothing from another host. (The browser tests drive the same pages in Chromium.)"""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.orientation.models import CareRequest
from tests.builders import PASSWORD, Clock, Tenant, bearer, open_request
from tests.builders import console_sign_in as sign_in


async def test_the_session_cookie_is_secure_httponly_strict_and_lasts_as_long_as_a_token(
    browser_like: httpx.AsyncClient, tenant: Tenant
) -> None:
    page = await browser_like.get("/console/login")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    answer = await browser_like.post(
        "/console/login", data={"email": tenant.emails["handler"], "password": PASSWORD, "nonce": nonce.group(1)}
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/queue")
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("snp_console="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=strict", "path=/console", "max-age=3600"} <= flags
    # The API never takes the cookie: it wants its bearer token.
    assert (await browser_like.get("/v1/requests")).status_code == 401


async def test_without_a_session_every_page_leads_to_the_login(browser_like: httpx.AsyncClient) -> None:
    for path in ("/console/queue", "/console/requests/new", "/console/search?q=dupont"):
        answer = await browser_like.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/console/login"), path
    htmx = await browser_like.get("/console/queue/rows", headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"] == "/console/login"
    forged = await browser_like.post("/console/login", data={"email": "x@y.z", "password": "p", "nonce": "forged"})
    assert forged.status_code == 400
    assert "La page de connexion a expiré" in forged.text


async def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(
    browser_like: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await sign_in(browser_like, tenant.emails["handler"])
    form = {"motif": "M19.05.00", "family_name": "Sansjeton"}

    async def requests_of_tenant() -> int:
        async with sessionmaker() as session:
            return int(await session.scalar(select(func.count()).where(CareRequest.cpts_id == tenant.cpts_id)) or 0)

    refused = await browser_like.post("/console/requests", data=form, headers={"HX-Request": "true"})
    assert refused.status_code == 403
    assert "Ce formulaire a expiré" in refused.text
    wrong = await browser_like.post("/console/requests", data=form, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    assert await requests_of_tenant() == 0
    made = await browser_like.post("/console/requests", data=form, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert made.status_code == 200, made.text
    assert made.headers["HX-Redirect"].startswith("/console/requests/")
    assert await requests_of_tenant() == 1


async def test_bad_input_is_answered_in_french_next_to_the_field_and_saves_nothing(
    browser_like: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    csrf = await sign_in(browser_like, tenant.emails["handler"])
    form = {"family_name": "Lenoir", "birth_date": "1812-02-30", "patient_phone": "pas un numéro", "motif": ""}
    answer = await browser_like.post("/console/requests", data=form, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 422
    assert 'id="patient-birth_date-error"' in answer.text
    assert "Date non valable" in answer.text or "invraisemblable" in answer.text
    assert 'id="motif-error"' in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert 'value="Lenoir"' in answer.text  # what was typed stays
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).where(CareRequest.cpts_id == tenant.cpts_id)) == 0


async def test_the_session_ends_with_its_token_and_with_the_account(
    browser_like: httpx.AsyncClient, client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await sign_in(browser_like, tenant.emails["handler"])
    assert (await browser_like.get("/console/queue")).status_code == 200
    clock.now = clock.now + timedelta(hours=2)  # past the token's hour
    assert (await browser_like.get("/console/queue")).status_code == 303
    clock.now = clock.now - timedelta(hours=2)
    await tenant.relogin()
    await sign_in(browser_like, tenant.emails["handler"])
    deactivated = await client.patch(
        f"/v1/users/{tenant.user_ids['handler']}", json={"active": False}, headers=tenant.coordinator
    )
    assert deactivated.status_code == 200
    assert (await browser_like.get("/console/queue")).status_code == 303


async def test_a_coordinator_reads_but_does_not_orient_and_another_cpts_is_out_of_reach(
    browser_like: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine = await open_request(tenant)
    theirs = await open_request(other_tenant)
    csrf = await sign_in(browser_like, tenant.emails["coordinator"])
    page = await browser_like.get(f"/console/requests/{mine['id']}")
    assert page.status_code == 200
    assert "Autre orientation" not in page.text  # no orienting form for a coordinator
    refused = await browser_like.post(
        f"/console/requests/{mine['id']}/orient", data={"outcome": "advice"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )  # fmt: skip
    assert refused.status_code == 403
    assert "Votre rôle ne permet pas cette action" in refused.text
    assert refused.headers["HX-Retarget"] == "#alerts"
    elsewhere = await browser_like.get(f"/console/requests/{theirs['id']}")
    assert elsewhere.status_code == 404
    assert "introuvable (ou appartient à une autre CPTS)" in elsewhere.text


async def test_pages_load_nothing_from_another_host_and_forbid_inline_code(
    browser_like: httpx.AsyncClient, tenant: Tenant
) -> None:
    await sign_in(browser_like, tenant.emails["handler"])
    created = await open_request(tenant)
    for path in ("/console/login", "/console/queue", "/console/requests/new", f"/console/requests/{created['id']}",
                 "/console/search?q=Dupont"):  # fmt: skip
        page = await browser_like.get(path)
        assert page.status_code == 200, path
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy, path
        assert "script-src 'self'" in policy, path
        assert "unsafe-inline" not in policy
        assert page.headers["cache-control"] == "no-store"  # identities are not kept by the browser
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert all(s.startswith(("/", "#", "data:")) for s in sources), (path, sources)
        assert "<script>" not in page.text, path
        assert " style=" not in page.text, path
    for asset in ("console.css", "console.js", "vendor/htmx.min.js"):
        assert (await browser_like.get(f"/console/static/{asset}")).status_code == 200, asset


async def test_reading_a_request_in_the_console_is_audited_like_in_the_api(
    browser_like: httpx.AsyncClient, client: httpx.AsyncClient, tenant: Tenant,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:  # fmt: skip
    from service.audit.models import AuditEvent

    created = await open_request(tenant)
    await sign_in(browser_like, tenant.emails["handler"])
    await browser_like.get(f"/console/requests/{created['id']}")
    await browser_like.get("/console/search", params={"q": "06 12 34 56 78"})
    async with sessionmaker() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action).where(AuditEvent.object_id == created["id"]).order_by(AuditEvent.id)
            )
        )
    assert "request.read" in actions
    assert "request.search" in actions
    assert "request.list" in actions  # the queue shown after sign-in
    assert (await client.get("/v1/requests", headers=bearer("not-a-token"))).status_code == 401


async def test_the_link_the_sas_shows_books_the_slot_the_regulator_chose(
    browser_like: httpx.AsyncClient, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    from datetime import UTC, datetime

    from tests.builders import new_agenda, publish, slot_item

    agenda = await new_agenda(tenant, practitioners=1)
    doctor = agenda.practitioners[0]
    start = (datetime.now(UTC) + timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    [slot_id] = await publish(agenda, [slot_item("sas-1", doctor, start)])
    csrf = await sign_in(browser_like, tenant.emails["regulator"])
    page = await browser_like.get(f"/console/sas/practitioners/{doctor['id']}", params={"origin": "sas"})
    assert page.status_code == 200
    assert "Vous venez du SAS" in page.text
    assert f"/console/requests/new?slot_id={slot_id}&amp;origin=sas" in page.text
    form_page = await browser_like.get("/console/requests/new", params={"slot_id": slot_id, "origin": "sas"})
    assert "Créneau choisi sur le SAS" in form_page.text
    made = await browser_like.post(
        "/console/requests",
        data={"motif": "M19.05.00", "family_name": "Sasse", "slot_id": slot_id, "via_sas": "on",
              "regulating_physician": tenant.rpps["regulator"]},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    assert made.headers["HX-Redirect"].startswith("/console/bookings/")
    booking_id = made.headers["HX-Redirect"].rsplit("/", 1)[1]
    booking = (await client.get(f"/v1/bookings/{booking_id}", headers=tenant.handler)).json()
    assert (booking["slot_id"], booking["status"]) == (slot_id, "booked")
    detail = (await client.get(f"/v1/requests/{booking['request_id']}", headers=tenant.handler)).json()
    assert detail["via_sas"] is True
    assert detail["regulating_physician"] == tenant.rpps["regulator"]


async def test_a_coordinator_sees_the_appointments_sent_to_the_sas_and_sends_one_again(
    browser_like: httpx.AsyncClient, client: httpx.AsyncClient, tenant: Tenant, app: FastAPI, sas_receiver: object
) -> None:
    from tests.integration.test_fhir import join_sas
    from tests.integration.test_fhir_sas_push import sas_booking

    await join_sas(client, tenant)
    await sas_booking(client, tenant, rpps=tenant.rpps["regulator"])
    [message] = (await client.get("/v1/sas/deliveries", headers=tenant.coordinator)).json()["items"]
    csrf = await sign_in(browser_like, tenant.emails["coordinator"])
    clients_page = await browser_like.get("/console/manage/clients")
    assert 'href="/console/manage/sas/deliveries"' in clients_page.text
    page = await browser_like.get("/console/manage/sas/deliveries")
    assert page.status_code == 200
    assert "Rendez-vous transmis au SAS" in page.text
    assert "réservation" in page.text
    assert "en attente" in page.text
    again = await browser_like.post(
        f"/console/manage/sas/deliveries/{message['message_id']}/redeliver", data={"csrf": csrf}
    )
    assert (again.status_code, again.headers["location"]) == (303, "/console/manage/sas/deliveries?saved=1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://snp.test") as handler:
        await sign_in(handler, tenant.emails["handler"])
        assert (await handler.get("/console/manage/sas/deliveries")).status_code == 403


async def test_a_webhook_address_refused_is_said_in_french_next_to_its_field(
    browser_like: httpx.AsyncClient, tenant: Tenant
) -> None:
    csrf = await sign_in(browser_like, tenant.emails["coordinator"])
    form = {"csrf": csrf, "name": "Agenda X", "webhook_url": "https://10.1.2.3/hook"}
    refused = await browser_like.post("/console/manage/clients", data=form)
    assert refused.status_code == 422
    assert re.search(r'id="webhook_url-error">Adresse refusée : https obligatoire', refused.text)
    assert "Agenda X</th>" not in refused.text  # nothing declared


def _field_value(page: str, name: str) -> str | None:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page)
    return found.group(1) if found else None


async def test_the_settings_page_shows_the_cpts_s_settings_and_refuses_a_bad_value_next_to_it(
    browser_like: httpx.AsyncClient, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """The settings are read by the driver's statement on the page's own session (`cpts.service.current`),
    before and after a change, and after a refusal in the same transaction."""
    csrf = await sign_in(browser_like, tenant.emails["coordinator"])
    page = await browser_like.get("/console/manage/settings")
    assert page.status_code == 200
    assert _field_value(page.text, "hold_ttl_seconds") == "180"
    general = {"csrf": csrf, "section": "general", "response_window_hours": "24", "min_lead_minutes": "30"}
    refused = await browser_like.post(
        "/console/manage/settings", data={**general, "hold_ttl_seconds": "5", "duplicate_window_hours": "72"}
    )
    assert refused.status_code == 422
    assert 'aria-invalid="true"' in refused.text
    assert "Valeur trop petite : 10 au moins." in refused.text  # the bound, next to the field
    assert "Paramètres de la CPTS" in refused.text
    saved = await browser_like.post(
        "/console/manage/settings", data={**general, "hold_ttl_seconds": "240", "duplicate_window_hours": "72"}
    )
    assert saved.status_code == 303
    assert _field_value((await browser_like.get(saved.headers["location"])).text, "hold_ttl_seconds") == "240"
    assert (await client.get("/v1/cpts/current", headers=tenant.handler)).json()["hold_ttl_seconds"] == 240
    # Amounts read with a decimal comma, and sent back as they read.
    rates = (await client.get("/v1/cpts/current", headers=tenant.coordinator)).json()["compensation"]
    page = await browser_like.get("/console/manage/settings")
    shown = _field_value(page.text, "hourly_rate_unfilled")
    assert shown == str(rates["hourly_rate_unfilled"]).replace(".", ",")
    assert "," in shown
    amounts = {k: _field_value(page.text, k) for k in ("hourly_rate_filled", "annual_envelope", "min_notice_hours")}
    kept = await browser_like.post(
        "/console/manage/settings",
        data={"csrf": csrf, "section": "compensation", "hourly_rate_unfilled": shown, **amounts},
    )
    assert kept.status_code == 303
    again = (await client.get("/v1/cpts/current", headers=tenant.coordinator)).json()["compensation"]
    assert again["hourly_rate_unfilled"] == rates["hourly_rate_unfilled"]
