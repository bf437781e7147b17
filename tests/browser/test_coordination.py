"""The coordinators' console in a real browser: the dashboard of a demo month (two months of
history played through the service), whose numbers are the JSON report's; a practitioner refused
with a French error next to the field; the French compensation workbook downloaded and read back;
agenda software connected through its SAS interface, its first pull shown."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from typing import Any

import openpyxl
from playwright.sync_api import Browser, expect

from service.clock import utc_now
from tests.browser.console_app import Console, open_session, run_apart
from tests.browser.harness import requires_chromium, serve_app
from tests.builders import next_day_at
from tests.fhir_editor import Editor, EditorSlot

pytestmark = requires_chromium
MONTH_NAMES = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
               "novembre", "décembre")  # fmt: skip


def last_closed_month(console: Console) -> str:
    cpts = console.api.get("/v1/cpts/current", headers=console.token("coordinator")).json()
    created = cpts["created_at"][:7]
    year, month = int(created[:4]), int(created[5:7])
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def test_the_dashboard_shows_the_month_the_report_computes(browser: Browser, console: Console) -> None:
    month = last_closed_month(console)
    report: dict[str, Any] = console.api.get(
        "/v1/reports/monthly", params={"month": month}, headers=console.token("coordinator")
    ).json()
    assert report["requests_total"] > 100  # the demo's history
    session = open_session(browser, console, "coordinator", viewport={"width": 1280, "height": 900})
    page = session.page
    page.goto(f"/console/dashboard?month={month}")
    name = MONTH_NAMES[int(month[5:]) - 1]
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Tableau de bord — {name} {month[:4]}")
    tiles = {
        page.locator(".kpi").nth(i).locator(".kpi-label").inner_text(): page.locator(".kpi").nth(i)
        .locator(".kpi-value").inner_text()
        for i in range(page.locator(".kpi").count())
    }  # fmt: skip
    assert tiles["Demandes reçues"].replace("\u202f", "") == str(report["requests_total"])
    assert tiles["Rendez-vous pris"].replace("\u202f", "") == str(report["booked"])
    rate = f"{report['rate_within_24h'] * 100:.1f}".replace(".", ",")
    assert tiles["Rendez-vous sous 24 h"].replace("\xa0", " ") == f"{rate} %"
    assert page.locator("svg.chart").count() == 6  # every chart is drawn
    heat = page.get_by_role("img", name="Demandes par jour et heure")
    expect(heat).to_be_visible()
    # Each chart's numbers are in a table too: the heatmap's cells add up to the month's requests.
    page.locator("details").first.locator("summary").click()
    cells = page.locator("details").first.locator("td").all_inner_texts()
    assert sum(int(c) for c in cells) == report["requests_total"]
    expect(page.get_by_role("heading", name="Objectifs du contrat")).to_be_visible()  # the demo's targets
    session.check("30-tableau-de-bord")
    session.context.close()


def test_a_bad_rpps_is_refused_in_french_next_to_the_field(browser: Browser, console: Console) -> None:
    session = open_session(browser, console, "coordinator")
    page = session.page
    page.goto("/console/manage/practitioners")
    session.check("31-professionnels")
    page.get_by_text("Ajouter un professionnel").click()
    page.get_by_label("Numéro RPPS ou ADELI").fill("1234")
    page.get_by_label("Nom", exact=True).fill("Essai")
    page.get_by_label("Prénom").fill("Jeanne")
    page.get_by_role("button", name="Ajouter le professionnel").click()
    field = page.get_by_label("Numéro RPPS ou ADELI")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#national_id-error")).to_have_text(re.compile("Un RPPS compte 11 chiffres"))
    expect(field).to_have_value("1234")  # what was typed stays
    session.check("32-professionnel-refuse", refused=422)
    page.get_by_label("Numéro RPPS ou ADELI").fill("10101010107")
    page.get_by_role("button", name="Ajouter le professionnel").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("ESSAI Jeanne")
    session.context.close()


def test_the_compensation_workbook_downloads_in_french_and_reconciles(browser: Browser, console: Console) -> None:
    month = last_closed_month(console)
    statement = console.api.get(
        "/v1/reports/compensation", params={"month": month}, headers=console.token("coordinator")
    ).json()
    session = open_session(browser, console, "coordinator")
    page = session.page
    page.goto(f"/console/dashboard?month={month}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Excel").nth(1).click()  # the compensation statement's
    path = download.value.path()
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()))
    sheet = book["Relevé"]
    header = [c.value for c in sheet[4]]
    assert "RPPS / ADELI" in header
    assert "Montant à verser (€)" in header
    rows = [dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=5, values_only=True)]
    *people, total = rows
    assert total["Identifiant du professionnel"] == "Total"
    assert len(people) == len(statement["lines"]) > 0
    assert all(len(str(p["RPPS / ADELI"])) in (9, 11) for p in people)
    assert all(isinstance(p["Montant à verser (€)"], int | float) for p in people)
    paid = sum(Decimal(str(p["Montant à verser (€)"])) for p in people)
    assert paid == Decimal(str(total["Montant à verser (€)"])) == Decimal(statement["total_paid"])
    session.context.close()


def test_the_appointments_sent_to_the_sas_are_listed_for_the_coordinator(browser: Browser, console: Console) -> None:
    coordinator = console.token("coordinator")
    joined = console.api.patch(
        "/v1/cpts/current", json={"finess": "440000123", "phone": "02 40 00 11 22", "sas_enabled": True},
        headers=coordinator,
    )  # fmt: skip
    assert joined.status_code == 200, joined.text
    request = console.new_request(channel="sas", via_sas=True, needs={"profession": "10"})
    suggestions = console.api.get(f"/v1/requests/{request['id']}/suggestions", headers=console.token("handler"))
    slot_id = suggestions.json()["items"][0]["slot_id"]
    booked = console.api.post(
        f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=console.token("handler")
    )
    assert booked.status_code == 201, booked.text
    session = open_session(browser, console, "coordinator")
    page = session.page
    page.goto("/console/manage/clients")
    session.check("34-logiciels")
    page.get_by_role("link", name="Rendez-vous transmis au SAS").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Rendez-vous transmis au SAS")
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("réservation")
    expect(row).to_contain_text("en attente")  # no SAS address in the tests: nothing is sent
    session.check("33-rendez-vous-sas")
    session.context.close()


async def _pull_now(database_url: str) -> dict[Any, Any]:
    """What `snp serve` does every 15 s: pull the sources that are due."""
    from service.config import webhook_policy
    from service.db import create_engine, create_sessionmaker
    from service.flows import slot_pull
    from tests.conftest import make_settings

    settings = make_settings(database_url)
    engine = create_engine(database_url, 2, 0)
    try:
        key = settings.secret_key.get_secret_value()
        return await slot_pull.pull_due(create_sessionmaker(engine), key, webhook_policy(settings), utc_now)
    finally:
        await engine.dispose()


def test_a_coordinator_connects_agenda_software_through_its_sas_interface(browser: Browser, console: Console) -> None:
    coordinator = console.token("coordinator")
    members = console.api.get("/v1/practitioners", params={"limit": 200}, headers=coordinator).json()["items"]
    chosen = [m for m in members if m["idnps"]][:2]
    idnps = [m["idnps"] for m in chosen]
    declared = console.api.post("/v1/clients", json={"name": "Agenda raccordé au SAS",
                                "practitioner_ids": [m["id"] for m in chosen]}, headers=coordinator)  # fmt: skip
    assert declared.status_code == 201, declared.text
    client = declared.json()
    editor = Editor()
    served = [EditorSlot(f"browser-{h}", idnps[h % 2], next_day_at(h, days=1)) for h in (9, 10, 11)]
    served.append(EditorSlot("browser-new-place", idnps[0], next_day_at(15, days=1), address="25 chemin de Mounestie",
                             postal_code="31840", city="Aussonne"))  # fmt: skip
    editor.serve(served)
    with serve_app(editor.app(), health_path="/fhir/Slot") as editor_base:
        session = open_session(browser, console, "coordinator")
        page = session.page
        page.goto("/console/manage/clients")
        page.get_by_role("link", name=f"Relever ses créneaux ({client['name']})").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Interface SAS de {client['name']}")
        address = page.get_by_label("Adresse FHIR de l'éditeur (https)")
        address.fill("http://10.1.2.3/fhir")
        page.get_by_label("Jeton d'accès", exact=True).fill("editor-token-1234")
        page.get_by_label("Jeton d'accès", exact=True).press("Enter")  # from the keyboard
        expect(page.locator("#base_url-error")).to_contain_text("Adresse refusée")
        expect(address).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_label("Jeton d'accès", exact=True)).to_have_value("")  # a secret is never shown back
        session.check("35-interface-sas-refusee", refused=422)
        address.fill(f"{editor_base}/fhir")
        page.get_by_label("Jeton d'accès", exact=True).fill("editor-token-1234")
        page.get_by_role("button", name="Enregistrer et relever maintenant").click()
        expect(page.get_by_role("status")).to_contain_text("le premier relevé part dans les 15 secondes")
        expect(page.get_by_role("heading", name="État des relevés")).to_contain_text("premier relevé attendu")
        [result] = run_apart(_pull_now(console.database_url)).values()
        assert (getattr(result, "created", None), getattr(result, "withdrawn", None)) == (4, 0), result
        page.reload()
        expect(page.get_by_role("heading", name="État des relevés")).to_contain_text("à jour")
        expect(page.locator("caption", has_text="Dernier relevé réussi")).to_be_visible()
        expect(page.get_by_role("heading", name="Lieux à vérifier")).to_be_visible()
        session.check("36-interface-sas", refused=422)  # the refusal above stays in the log
        assert editor.headers[-1]["authorization"] == "Bearer editor-token-1234"
        # The coordinator checks a place the pull created, on the practitioner's page.
        page.get_by_role("region", name="Lieux à vérifier").get_by_role("link").first.click()
        expect(page.get_by_text("à vérifier").first).to_be_visible()
        session.check("37-lieu-a-verifier", refused=422)
        page.get_by_role("button", name=re.compile("^Lieu vérifié")).first.click()
        expect(page.get_by_role("status")).to_have_text("Enregistré.")
        session.context.close()
