"""The console in a real browser (Debian's Chromium through Playwright): a handler orients demo
patients with the keyboard, in French; no request leaves for another host, no JavaScript error,
no serious or critical axe-core violation on any screen. Screenshots land in docs/screenshots."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.browser.console_app import Console, Session, open_session
from tests.browser.harness import collect_js_errors, guard_network, requires_chromium

pytestmark = requires_chromium


def test_a_handler_orients_a_patient_from_call_to_confirmed_booking_with_the_keyboard(
    browser: Browser, console: Console
) -> None:
    context = browser.new_context(base_url=console.url, locale="fr-FR", viewport={"width": 1280, "height": 900})
    outside = guard_network(context, console.url)
    page = context.new_page()
    session = Session(context, page, collect_js_errors(page), outside)
    page.goto("/console/")
    session.check("01-connexion")
    email, password = console.users["handler"]
    page.keyboard.type(email)  # the e-mail field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/queue")
    expect(page.get_by_role("heading", name="File d'attente")).to_be_visible()
    # The demo queue: the red flag first, the reopened request marked with its callback due.
    rows = page.locator("#queue-rows tr")
    expect(rows.first).to_contain_text("Signe de gravité")
    expect(page.locator("#queue-rows")).to_contain_text("Rappel à faire")
    expect(page.locator("#queue-rows")).to_contain_text("Rouverte")
    session.check("02-file-attente")

    page.keyboard.press("n")
    page.wait_for_url("**/console/requests/new")
    expect(page.get_by_label("Qui appelle ?")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.type("06 45 12 98 76")  # caller's phone
    for value in ("Garnier", "Lina"):
        page.keyboard.press("Tab")
        page.keyboard.type(value)
    page.keyboard.press("Tab")
    page.keyboard.type("12062015")  # the date field takes dd mm yyyy from the keyboard
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type("06 45 12 98 76")
    page.get_by_label("Commune (nom ou code postal)").focus()
    page.keyboard.type("Rezé")
    expect(page.locator("#commune-options")).to_contain_text("Rezé (44400)")
    page.get_by_label("Motif (tapez une partie du libellé)").focus()
    page.keyboard.type("fièvre")
    expect(page.locator("#motif-options input[value='M19.05.00']")).to_be_checked()
    session.check("03-nouvelle-demande")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(r".*/console/requests/[0-9a-f-]{36}$"))
    request_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name="Créneaux proposés")).to_be_visible()
    session.check("04-demande-creneaux")

    page.keyboard.press("1")  # the first suggestion's button
    expect(page.locator("[data-slot-number='1']")).to_be_focused()
    page.keyboard.press("Enter")  # hold it while the patient listens
    expect(page.get_by_role("heading", name="Créneau réservé pour ce patient")).to_be_visible()
    expect(page.locator("[data-expires]")).to_contain_text(re.compile(r"\d+ min"))
    expect(page.get_by_role("button", name="Confirmer le rendez-vous")).to_be_focused()
    session.check("05-creneau-reserve")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/bookings/**")

    booking = next(b for b in console.detail(request_id)["bookings"] if b["status"] == "booked")
    tell = page.locator(".tell")
    expect(tell).to_contain_text(booking["reference"])
    expect(tell).to_contain_text(booking["slot"]["site"]["full_address"])
    expect(tell).to_contain_text(booking["slot"]["practitioner"]["family_name"])
    expect(tell).to_contain_text(booking["slot"]["site"]["phone"])
    # The slot on the practice's own agenda (what its software published), opened in a new tab.
    agenda = tell.get_by_role("link", name=re.compile("agenda du praticien"))
    expect(agenda).to_have_attribute("href", booking["slot"]["agenda_url"])
    expect(tell).to_contain_text(
        re.compile(r"(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche) \d+ [a-zéû]+ à \d+ h \d\d")
    )
    session.check("06-a-dire-au-patient")
    context.close()


def test_the_same_patient_calling_again_is_flagged_before_saving(handler: Session) -> None:
    page = handler.page
    page.goto("/console/requests/new")
    page.get_by_label("Téléphone du patient").fill("06 12 45 78 90")  # the demo's Chloé Martin
    page.get_by_label("Nom", exact=True).fill("Martin")
    expect(page.locator("#duplicates")).to_contain_text("ce patient a peut-être déjà une demande")
    expect(page.locator("#duplicates")).to_contain_text("même numéro de téléphone")
    handler.check("07-doublon")


def test_a_red_flag_offers_only_the_15_or_the_emergency_department(handler: Session, console: Console) -> None:
    page = handler.page
    flagged = console.new_request(motif="M17.03.00", red_flags=["chest_pain"], patient={"family_name": "Perrin"})
    page.goto(f"/console/requests/{flagged['id']}")
    panel = page.get_by_role("region", name="Signe de gravité : appelez le 15")
    expect(panel).to_contain_text("Douleur thoracique")
    expect(panel.get_by_role("button")).to_have_text(["Orienté vers le 15", "Orienté vers les urgences"])
    expect(page.locator("#suggestions")).to_have_count(0)
    expect(page.get_by_text("Lever le signe de gravité")).to_have_count(0)  # a handler does not
    handler.check("08-signe-de-gravite")
    page.get_by_role("button", name="Orienté vers le 15").click()
    expect(page.get_by_role("heading", name="Demande clôturée")).to_be_visible()
    assert console.detail(flagged["id"])["events"][-1]["kind"] == "transfer_15"


def test_a_regulator_may_lift_the_red_flag_and_book(browser: Browser, console: Console) -> None:
    flagged = console.new_request(motif="M19.05.00", red_flags=["infant_danger"], patient={"commune_insee": "44109"})
    session = open_session(browser, console, "regulator")
    page = session.page
    page.goto(f"/console/requests/{flagged['id']}")
    page.get_by_text("Lever le signe de gravité (décision médicale)").click()
    page.get_by_label("Motif de la décision").fill("Fièvre bien tolérée, examen possible en cabinet")
    page.get_by_role("button", name="Lever le signe de gravité").click()
    expect(page.get_by_role("heading", name="Créneaux proposés")).to_be_visible()
    assert console.detail(flagged["id"])["events"][-1]["kind"] == "red_flag_override"
    session.check()
    session.context.close()


def test_when_nothing_fits_the_reasons_and_the_alternatives_are_shown(handler: Session, console: Console) -> None:
    page = handler.page
    # A dentist at home: nobody in the demo CPTS does that.
    impossible = console.new_request(needs={"profession": "40", "modalities": ["HH"]},
                                     patient={"commune_insee": "44109", "family_name": "Vidal"})  # fmt: skip
    page.goto(f"/console/requests/{impossible['id']}")
    panel = page.locator("#suggestions")
    expect(panel).to_contain_text("Aucun créneau ne convient")
    expect(panel).to_contain_text("Aucun créneau libre ne correspond aux besoins")
    expect(panel.get_by_role("heading", name="Autres possibilités")).to_be_visible()
    expect(panel).to_contain_text("Autre profession")
    handler.check("09-aucun-creneau")


def test_two_handlers_race_for_one_slot_and_the_loser_is_offered_the_next(browser: Browser, console: Console) -> None:
    patient = {"commune_insee": "44143", "family_name": "Course"}
    first, second = console.new_request(patient=patient), console.new_request(patient=patient)
    alice = open_session(browser, console, "handler")
    bob = open_session(browser, console, "regulator")
    for session, request in ((alice, first), (bob, second)):
        session.page.goto(f"/console/requests/{request['id']}")
        expect(session.page.locator("[data-slot-number='1']")).to_be_visible()
    contested = (
        alice.page.locator("#suggestions .slot").first.locator("input[name=slot_id]").first.get_attribute("value")
    )
    assert contested == bob.page.locator("#suggestions .slot").first.locator("input[name=slot_id]").first.get_attribute(
        "value"
    )
    alice.page.locator("#suggestions .slot").first.get_by_role(
        "button", name=re.compile("Prendre ce rendez-vous")
    ).click()
    alice.page.wait_for_url("**/console/bookings/**")
    bob.page.locator("#suggestions .slot").first.get_by_role(
        "button", name=re.compile("Prendre ce rendez-vous")
    ).click()
    expect(bob.page.locator("#suggestions")).to_contain_text("Ce créneau vient d'être pris")
    offered = bob.page.locator("#suggestions input[name=slot_id]").evaluate_all("(els) => els.map((e) => e.value)")
    assert contested not in offered
    assert offered  # the next ones
    bob.check("10-creneau-pris", refused=409)
    booked = [b for r in (first, second) for b in console.detail(r["id"])["bookings"] if b["status"] == "booked"]
    assert [b["slot_id"] for b in booked] == [contested]  # one patient in the slot
    bob.page.locator("#suggestions .slot").first.get_by_role(
        "button", name=re.compile("Prendre ce rendez-vous")
    ).click()
    bob.page.wait_for_url("**/console/bookings/**")
    assert alice.errors == []
    for session in (alice, bob):
        session.context.close()


def test_a_double_click_or_a_reload_never_makes_a_second_hold(handler: Session, console: Console) -> None:
    page = handler.page
    created = console.new_request(patient={"commune_insee": "44109", "family_name": "Double"})
    page.goto(f"/console/requests/{created['id']}")
    page.locator("#suggestions .slot").first.get_by_role("button", name=re.compile("Réserver")).dblclick()
    expect(page.get_by_role("heading", name="Créneau réservé pour ce patient")).to_be_visible()
    page.wait_for_timeout(300)  # let a second request, if any, land
    assert [b["status"] for b in console.detail(created["id"])["bookings"]] == ["held"]
    page.reload()
    expect(page.get_by_role("heading", name="Créneau réservé pour ce patient")).to_be_visible()
    assert [b["status"] for b in console.detail(created["id"])["bookings"]] == ["held"]
    page.get_by_role("button", name="Confirmer le rendez-vous").dblclick()
    page.wait_for_url("**/console/bookings/**")
    assert [b["status"] for b in console.detail(created["id"])["bookings"]] == ["booked"]
    assert [e["kind"] for e in console.detail(created["id"])["events"]] == ["booked"]


def test_the_same_form_posted_twice_at_once_holds_once(handler: Session, console: Console) -> None:
    """What a double-click does without the disabled button, or a retry after a lost answer: two
    posts with the page's idempotency key, at the same moment. One hold; both get its answer."""
    page = handler.page
    created = console.new_request(patient={"commune_insee": "44109", "family_name": "Rejeu"})
    page.goto(f"/console/requests/{created['id']}")
    form = page.locator("#suggestions .slot").first.locator("form").first
    slot_id = form.locator("input[name=slot_id]").get_attribute("value")
    key = re.search(r'"Idempotency-Key": "([^"]+)"', form.get_attribute("hx-headers") or "")
    assert key is not None
    answers = page.evaluate(
        """async ({ url, slot, key }) => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const post = () => fetch(url, { method: "POST", body: new URLSearchParams({ slot_id: slot }),
              headers: { "Idempotency-Key": key, "X-CSRF-Token": csrf, "HX-Request": "true" } })
              .then(async (r) => [r.status, await r.text()]);
            return Promise.all([post(), post()]);
        }""",
        {"url": f"/console/requests/{created['id']}/hold", "slot": slot_id, "key": key.group(1)},
    )
    assert [status for status, _ in answers] == [200, 200]
    assert answers[0][1] == answers[1][1]  # the second replays the first
    assert [b["status"] for b in console.detail(created["id"])["bookings"]] == ["held"]
    without_token = page.evaluate(
        """async (url) => (await fetch(url, { method: "POST", body: new URLSearchParams({ slot_id: "x" }) })).status""",
        f"/console/requests/{created['id']}/hold",
    )
    assert without_token == 403  # no CSRF token, no change


def test_cancel_and_rebook_from_the_request(handler: Session, console: Console) -> None:
    page = handler.page
    created = console.new_request(patient={"commune_insee": "44109", "family_name": "Annule"})
    page.goto(f"/console/requests/{created['id']}")
    page.locator("#suggestions .slot").first.get_by_role("button", name=re.compile("Prendre ce rendez-vous")).click()
    page.wait_for_url("**/console/bookings/**")
    page.get_by_role("link", name="Revenir à la demande").click()
    page.get_by_text("Annuler et reproposer un créneau").click()
    page.get_by_label("Motif de l'annulation").fill("Le patient ne peut pas se déplacer")
    handler.check("11-annuler")
    page.get_by_role("button", name="Annuler le rendez-vous").click()
    expect(page.get_by_text("Rouverte : rendez-vous annulé")).to_be_visible()
    expect(page.get_by_role("heading", name="Créneaux proposés")).to_be_visible()
    page.get_by_label("Téléconsultation").check()  # a filter: video only (no demo GP offers it)
    expect(page.locator("#suggestions")).to_contain_text("Aucun créneau ne convient")
    expect(page.locator("#suggestions [data-suggestions]")).to_have_count(0)
    without = page.get_by_role("region", name="Sans vos filtres")
    without.locator(".slot").first.get_by_role("button", name=re.compile("Prendre ce rendez-vous")).click()
    page.wait_for_url("**/console/bookings/**")
    statuses = [b["status"] for b in console.detail(created["id"])["bookings"]]
    assert statuses == ["cancelled", "booked"]


def test_the_confirmation_is_sent_to_the_patient_on_demand(handler: Session, console: Console) -> None:
    page = handler.page
    created = console.new_request(patient={"family_name": "Message", "phone": "06 44 55 66 77"})
    slot_id = console.api.get(f"/v1/requests/{created['id']}/suggestions", headers=console.token("handler")).json()[
        "items"
    ][0]["slot_id"]
    booked = console.api.post(
        f"/v1/requests/{created['id']}/book", json={"slot_id": slot_id}, headers=console.token("handler")
    ).json()
    page.goto(f"/console/bookings/{booked['booking_id']}")
    expect(page.get_by_role("button", name="Envoyer par E-mail")).to_have_count(0)  # no SMTP configured
    page.get_by_role("button", name="Envoyer par SMS").click()
    expect(page.locator("#messages")).to_contain_text("Confirmation par SMS : En cours d'envoi")
    assert console.detail(created["id"])["notify_by"] == ["sms"]
    handler.check("14-envoi-sms")


def test_another_outcome_closes_the_request(handler: Session, console: Console) -> None:
    page = handler.page
    created = console.new_request(patient={"family_name": "Conseil"})
    page.goto(f"/console/requests/{created['id']}")
    page.get_by_text("Autre orientation (sans rendez-vous)").click()
    page.get_by_label("Conseil donné").check()
    page.get_by_label("Note (facultatif)").fill("Paracétamol, reconsulter si la fièvre persiste")
    page.get_by_role("button", name="Clôturer la demande").click()
    expect(page.get_by_role("heading", name="Demande clôturée")).to_be_visible()
    expect(page.locator(".history")).to_contain_text("Conseil donné : Paracétamol")
    assert [e["kind"] for e in console.detail(created["id"])["events"]] == ["advice"]
    handler.check()


def test_notes_callbacks_and_search(handler: Session, console: Console) -> None:
    page = handler.page
    created = console.new_request(patient={"family_name": "Notes", "phone": "06 77 88 99 00"})
    page.goto(f"/console/requests/{created['id']}")
    page.get_by_label("Ajouter une note").fill("Rappeler après 17 h, la mère travaille")
    page.get_by_role("button", name="Ajouter la note").click()
    expect(page.locator("#notes")).to_contain_text("la mère travaille")
    page.get_by_label("Rappeler dans").select_option("30")
    page.get_by_label("Pourquoi").fill("Attend l'avis du père")
    page.get_by_role("button", name="Prévoir un rappel").click()
    expect(page.locator("#callbacks")).to_contain_text("Attend l'avis du père")
    handler.check("12-notes-rappels")
    assert [n["text"] for n in console.detail(created["id"])["notes"]] == ["Rappeler après 17 h, la mère travaille"]

    page.keyboard.press("Escape")
    page.locator("body").focus()
    page.keyboard.press("/")
    page.wait_for_url("**/console/search")
    page.keyboard.type("+33 6 77 88 99 00")
    page.keyboard.press("Enter")
    expect(page.get_by_role("table")).to_contain_text("NOTES")
    handler.check("13-recherche")


def test_the_screens_hold_at_200_percent_zoom(browser: Browser, console: Console) -> None:
    """A 640-pixel-wide window is what a 1280-pixel screen shows at 200 %: nothing may overflow sideways."""
    session = open_session(browser, console, viewport={"width": 640, "height": 900})
    page = session.page
    created = console.new_request(patient={"commune_insee": "44109", "family_name": "Zoom"})
    for path in ("/console/queue", "/console/requests/new", f"/console/requests/{created['id']}", "/console/search"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, path
    session.check()
    session.context.close()


def test_a_wrong_password_is_said_in_french_and_changes_nothing(browser: Browser, console: Console) -> None:
    context = browser.new_context(base_url=console.url, locale="fr-FR")
    page = context.new_page()
    errors = collect_js_errors(page)
    page.goto("/console/login")
    page.get_by_label("E-mail professionnel").fill(console.users["handler"][0])
    page.get_by_label("Mot de passe").fill("pas le bon mot de passe")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert").filter(has_text="E-mail ou mot de passe incorrect")).to_be_visible()
    assert [e for e in errors if "401" not in e] == []
    context.close()
