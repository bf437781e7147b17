"""A software client as a FHIR source: the coordinator points the service at the editor's SAS
interface (here a stand-in on 127.0.0.1 serving the guide's example rewritten with the test's
practitioners), and pulls apply by the sync rules, through the real API and database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from service.clock import utc_now
from service.config import Settings
from service.connectors.schemas import PullError, PullResult
from service.flows import slot_pull
from service.practitioners.models import Site
from tests.builders import Agenda, Tenant, console_sign_in, new_agenda, next_day_at, open_request
from tests.fhir_editor import Editor, EditorSlot

TOKEN = "editor-token-1234"


@pytest.fixture
async def editor() -> AsyncIterator[Editor]:
    running = Editor()
    await running.start()
    yield running
    await running.stop()


async def configure(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda, editor: Editor, **extra: Any
) -> httpx.Response:
    body = {"base_url": editor.base_url, "flow": "INT_R01", "bearer_token": TOKEN, **extra}
    return await client.put(f"/v1/clients/{agenda.client_id}/fhir-source", json=body, headers=tenant.coordinator)


async def pull(app: FastAPI, settings: Settings, agenda: Agenda) -> PullResult | PullError:
    import uuid

    results = await slot_pull.pull_due(
        app.state.sessionmaker,
        settings.secret_key.get_secret_value(),
        app.state.webhook_policy,
        utc_now,
        only=uuid.UUID(agenda.client_id),
    )
    return next(iter(results.values()))


def slots_for(agenda: Agenda, hours: list[int], **overrides: Any) -> list[EditorSlot]:
    idnps = [p["idnps"] for p in agenda.practitioners]
    return [
        EditorSlot(f"ed-{agenda.client_id[:8]}-{h}", idnps[i % len(idnps)], next_day_at(h, days=1), **overrides)
        for i, h in enumerate(hours)
    ]


async def test_a_source_is_set_shown_without_its_secrets_kept_on_update_and_removed(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, editor: Editor
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    created = await configure(client, tenant, agenda, editor)
    assert created.status_code == 200, created.text
    shown = created.json()
    assert TOKEN not in created.text
    assert (shown["credentials"], shown["window_hours"], shown["interval_seconds"]) == ("bearer_token", 72, 300)
    assert sorted(shown["slot_types"]) == ["CPTS", "SNP"]
    path = f"/v1/clients/{agenda.client_id}/fhir-source"
    updated = await client.put(path, json={"base_url": editor.base_url, "flow": "INT_R01", "interval_seconds": 600},
                               headers=tenant.coordinator)  # fmt: skip
    assert (updated.json()["credentials"], updated.json()["interval_seconds"]) == ("bearer_token", 600)
    assert (await client.get(path, headers=tenant.coordinator)).json()["interval_seconds"] == 600
    assert (await client.get(path, headers=other_tenant.coordinator)).status_code == 404
    assert (await client.get(path, headers=tenant.handler)).status_code == 403
    assert (await client.delete(path, headers=tenant.coordinator)).status_code == 204
    assert (await client.get(path, headers=tenant.coordinator)).status_code == 404


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"base_url": "ftp://127.0.0.1/fhir"}, "validation_error"),
        ({"base_url": "http://10.1.2.3/fhir"}, "fhir_source_url_refused"),
        ({"flow": "INT_R09"}, "validation_error"),
        ({"client_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"}, "validation_error"),
        ({"window_hours": 0}, "validation_error"),
        ({"slot_types": ["NOPE"]}, "validation_error"),
    ],
)
async def test_a_bad_source_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, editor: Editor, change: dict[str, Any], code: str
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    refused = await configure(client, tenant, agenda, editor, **change)
    assert (refused.status_code, refused.json()["code"]) == (422, code)
    assert (
        await client.get(f"/v1/clients/{agenda.client_id}/fhir-source", headers=tenant.coordinator)
    ).status_code == 404


async def test_a_pull_brings_the_snp_slots_into_the_suggestions_and_a_second_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tenant: Tenant, editor: Editor
) -> None:
    agenda = await new_agenda(tenant, practitioners=2)
    assert (await configure(client, tenant, agenda, editor)).status_code == 200
    served = [*slots_for(agenda, [9, 10, 11]), *slots_for(agenda, [14], types=("PUBLIC",))]
    served.append(EditorSlot(f"ed-{agenda.client_id[:8]}-new-place", agenda.practitioners[0]["idnps"],
                             next_day_at(16, days=1), address="25 chemin de Mounestie", postal_code="31840",
                             city="Aussonne"))  # fmt: skip
    editor.serve(served)
    first = await pull(app, settings, agenda)
    assert isinstance(first, PullResult), first
    assert (first.created, first.unchanged, first.ignored, first.sites_created, first.skipped) == (4, 0, 1, 1, 0)
    # As the SAS asks: the client's national ids, free slots, the includes; with the editor's token.
    query = editor.queries[0]
    assert ("status", "free") in query
    assert ("_include", "Slot:schedule") in query
    wanted = dict(query)["schedule.actor:Practitioner.identifier"].split("|")[1].split(",")
    assert sorted(wanted) == sorted(p["idnps"] for p in agenda.practitioners)
    assert editor.headers[0]["authorization"] == f"Bearer {TOKEN}"
    published = {s["external_id"]: s for s in await agenda.slots()}
    assert set(published) == {s.slot_id for s in served if s.types != ("PUBLIC",)}
    assert published[served[0].slot_id]["agenda_url"] == served[0].agenda_url
    assert published[served[0].slot_id]["site_id"] == agenda.practitioners[0]["sites"][0]["id"]
    async with app.state.sessionmaker() as session:
        new_site = await session.scalar(select(Site).where(Site.id == published[served[-1].slot_id]["site_id"]))
    assert new_site is not None
    assert new_site.needs_review
    assert new_site.commune_insee == "31032"
    request = await open_request(tenant)
    offered = (await client.get(f"/v1/requests/{request['id']}/suggestions", headers=tenant.handler)).json()
    assert {i["slot_id"] for i in offered["items"]} & {s["id"] for s in published.values()}
    # A booking of a pulled slot carries the editor's slot id and link, in the answer and the feed.
    slot = published[served[1].slot_id]
    booked = await client.post(
        f"/v1/requests/{request['id']}/book", json={"slot_id": slot["id"]}, headers=tenant.handler
    )
    assert booked.json()["slot"]["agenda_url"] == served[1].agenda_url
    feed = (await client.get("/v1/bookings/feed", headers=agenda.headers)).json()["items"]
    assert [(e["booking"]["slot"]["external_id"], e["booking"]["slot"]["agenda_url"]) for e in feed] == [
        (served[1].slot_id, served[1].agenda_url)
    ]
    again = await pull(app, settings, agenda)
    assert isinstance(again, PullResult)
    assert (again.created, again.updated, again.unchanged, again.withdrawn, again.sites_created) == (0, 0, 4, 0, 0)
    assert again.conflicts == 0  # the booked slot is still on the editor's agenda: present, not a conflict
    status = (await client.get(f"/v1/clients/{agenda.client_id}/fhir-source", headers=tenant.coordinator)).json()
    assert status["failures"] == 0
    assert status["last_result"]["unchanged"] == 4
    assert datetime.fromisoformat(status["next_pull_at"]) > datetime.fromisoformat(status["last_success_at"])


async def test_a_slot_gone_from_the_editor_is_withdrawn_and_a_booked_one_stays_as_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tenant: Tenant, editor: Editor
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    await configure(client, tenant, agenda, editor)
    served = slots_for(agenda, [9, 10, 11])
    editor.serve(served)
    await pull(app, settings, agenda)
    published = {s["external_id"]: s["id"] for s in await agenda.slots()}
    request = await open_request(tenant)
    booked = await client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": published[served[0].slot_id]},
                               headers=tenant.handler)  # fmt: skip
    assert booked.status_code == 201
    editor.serve(served[2:])  # the editor no longer shows the booked slot, nor the second
    later = await pull(app, settings, agenda)
    assert isinstance(later, PullResult)
    assert (later.withdrawn, later.conflicts, later.unchanged) == (1, 1, 1)
    status = {s["external_id"]: s["status"] for s in await agenda.slots()}
    assert status[served[0].slot_id] == "booked"
    assert status[served[1].slot_id] == "withdrawn"


@pytest.mark.parametrize(
    ("break_it", "element"),
    [
        (lambda slot: slot.pop("schedule"), "Slot.schedule"),
        (lambda slot: slot["meta"].pop("security"), "Slot.meta.security"),
        (lambda slot: slot["meta"].update(profile=["http://example.org/not-the-sas-guide"]), "Slot.meta.profile"),
    ],
)
async def test_a_malformed_entry_is_skipped_and_reported_the_rest_applies(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    tenant: Tenant,
    editor: Editor,
    break_it: Callable[[dict[str, Any]], Any],
    element: str,
) -> None:
    from tests.fhir_editor import bundle

    agenda = await new_agenda(tenant, practitioners=1)
    await configure(client, tenant, agenda, editor)
    served = slots_for(agenda, [9, 10])

    def broken(request: Any) -> dict[str, Any]:
        answer = bundle(served)
        break_it(answer["entry"][0]["resource"])
        return answer

    editor.answer = broken
    result = await pull(app, settings, agenda)
    assert isinstance(result, PullResult)
    assert (result.created, result.skipped) == (1, 1)
    assert [(p["entry"], p["element"]) for p in result.problems] == [(f"Slot/{served[0].slot_id}", element)]
    assert [s["external_id"] for s in await agenda.slots()] == [served[1].slot_id]


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ((500, {"error": "boom"}), "http_status"),
        ((401, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "security",
                                                              "diagnostics": "token expired"}]}), "operation_outcome"),
        ((200, {"resourceType": "Bundle", "type": "collection"}), "bundle"),
        ("timeout", "timeout"),
    ],
)  # fmt: skip
async def test_a_fault_changes_no_slot_is_shown_and_delays_the_next_pull(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    tenant: Tenant,
    editor: Editor,
    monkeypatch: pytest.MonkeyPatch,
    answer: Any,
    kind: str,
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    await configure(client, tenant, agenda, editor)
    editor.serve(slots_for(agenda, [9]))
    await pull(app, settings, agenda)
    before = await agenda.slots()
    if answer == "timeout":
        monkeypatch.setattr(slot_pull, "TIMEOUT", httpx.Timeout(0.3))
        editor.delay = 1.0
    else:
        editor.answer = lambda request: answer
    failed = await pull(app, settings, agenda)
    assert isinstance(failed, PullError)
    assert failed.kind == kind
    assert await agenda.slots() == before
    status = (await client.get(f"/v1/clients/{agenda.client_id}/fhir-source", headers=tenant.coordinator)).json()
    assert (status["failures"], status["last_error"]["kind"]) == (1, kind)
    assert datetime.fromisoformat(status["next_pull_at"]) >= datetime.now(UTC) + timedelta(seconds=200)
    assert TOKEN not in str(status)


async def test_the_command_line_pulls_a_source_once_and_says_what_it_applied(
    client: httpx.AsyncClient, database_url: str, tenant: Tenant, editor: Editor
) -> None:
    import asyncio
    import json
    import os
    import sys
    from pathlib import Path

    from tests.conftest import TEST_SECRET

    agenda = await new_agenda(tenant, practitioners=1)
    await configure(client, tenant, agenda, editor)
    editor.serve(slots_for(agenda, [9, 10]))
    env = {**os.environ, "DATABASE_URL": database_url, "SNP_SECRET_KEY": TEST_SECRET, "SNP_ENV": "test",
           "SNP_WEBHOOK_ALLOW_HTTP": "true", "SNP_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}  # fmt: skip

    async def pull_slots(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("snp")), "pull-slots", "--source", agenda.client_id, "--once", *args,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode()

    code, out = await pull_slots("--json")
    assert code == 0
    assert json.loads(out)[agenda.client_id]["created"] == 2
    editor.answer = lambda request: (500, {})
    code, out = await pull_slots()
    assert code == 1
    assert f"{agenda.client_id}: failed (http_status): HTTP 500" in out


async def test_a_cpts_pulls_what_another_exposes_to_the_sas_and_follows_its_changes(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    tenant: Tenant,
    other_tenant: Tenant,
    sas_key: str,
) -> None:
    """CPTS B pulls, through the service's own FHIR facade (INT_R04), the slots CPTS A exposes to the
    SAS: B's copies are A's free slots of the window; then A books one and withdraws another, and
    B's next pull withdraws both copies, leaving B's own booking alone."""
    import uuid

    from tests.builders import publish, slot_item

    joined = await client.patch("/v1/cpts/current", json={"finess": "440000777", "phone": "02 40 00 11 22",
                                "sas_enabled": True}, headers=tenant.coordinator)  # fmt: skip
    assert joined.status_code == 200, joined.text
    agenda_a = await new_agenda(tenant, practitioners=2)
    starts = [next_day_at(h, days=1) for h in (9, 10, 11, 14)]
    items = [slot_item(f"a-{i}", agenda_a.practitioners[i % 2], start) for i, start in enumerate(starts)]
    a_slots = await publish(agenda_a, items)
    # The same two practitioners are members of B too, published by B's client from A's facade.
    members_b = [await other_tenant.add_practitioner(rpps=p["idnps"][1:]) for p in agenda_a.practitioners]
    client_b = await other_tenant.add_client([m["id"] for m in members_b])
    agenda_b = Agenda(other_tenant, client_b["id"], client_b["api_key"], members_b)
    body = {"base_url": "http://127.0.0.1/fhir", "flow": "INT_R04", "bearer_token": sas_key}
    put = await client.put(f"/v1/clients/{agenda_b.client_id}/fhir-source", json=body, headers=other_tenant.coordinator)
    assert put.status_code == 200, put.text
    own_facade = httpx.ASGITransport(app=app)

    async def pull_b() -> PullResult:
        results = await slot_pull.pull_due(
            app.state.sessionmaker, settings.secret_key.get_secret_value(), app.state.webhook_policy, utc_now,
            only=uuid.UUID(agenda_b.client_id), transport=own_facade,
        )  # fmt: skip
        result = results[uuid.UUID(agenda_b.client_id)]
        assert isinstance(result, PullResult), result
        return result

    first = await pull_b()
    assert first.created == 4
    copies = {s["external_id"]: s for s in await agenda_b.slots()}
    assert set(copies) == set(a_slots)  # the facade's Slot.id is A's slot id
    assert sorted(datetime.fromisoformat(s["start"]) for s in copies.values()) == starts
    # B books one copy; A books one of its slots and withdraws another.
    request_b = await open_request(other_tenant)
    mine = await client.post(f"/v1/requests/{request_b['id']}/book", json={"slot_id": copies[a_slots[3]]["id"]},
                             headers=other_tenant.handler)  # fmt: skip
    assert mine.status_code == 201
    request_a = await open_request(tenant)
    booked_a = await client.post(f"/v1/requests/{request_a['id']}/book", json={"slot_id": a_slots[0]},
                                 headers=tenant.handler)  # fmt: skip
    assert booked_a.status_code == 201
    assert (await client.delete("/v1/slots/a-1", headers=agenda_a.headers)).status_code in (200, 204)
    later = await pull_b()
    assert (later.withdrawn, later.unchanged) == (2, 2)
    status = {s["external_id"]: s["status"] for s in await agenda_b.slots()}
    assert (status[a_slots[0]], status[a_slots[1]], status[a_slots[2]], status[a_slots[3]]) == (
        "withdrawn", "withdrawn", "free", "booked",
    )  # fmt: skip


async def test_credentials_stored_under_another_secret_key_are_a_recorded_fault_not_a_crash(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, editor: Editor
) -> None:
    import uuid

    agenda = await new_agenda(tenant, practitioners=1)
    await configure(client, tenant, agenda, editor)
    results = await slot_pull.pull_due(
        app.state.sessionmaker, "another-secret-key-" + "x" * 40, app.state.webhook_policy, utc_now,
        only=uuid.UUID(agenda.client_id),
    )  # fmt: skip
    failed = results[uuid.UUID(agenda.client_id)]
    assert isinstance(failed, PullError)
    assert failed.kind == "credentials"
    assert editor.queries == []  # nothing was sent without them
    status = (await client.get(f"/v1/clients/{agenda.client_id}/fhir-source", headers=tenant.coordinator)).json()
    assert (status["failures"], status["last_error"]["kind"]) == (1, "credentials")


async def test_a_coordinator_sets_up_a_source_in_the_console_and_reads_what_its_pulls_did(
    app: FastAPI,
    client: httpx.AsyncClient,
    browser_like: httpx.AsyncClient,
    settings: Settings,
    tenant: Tenant,
    other_tenant: Tenant,
    editor: Editor,
) -> None:
    agenda = await new_agenda(tenant, practitioners=2)
    page_path = f"/console/manage/clients/{agenda.client_id}/fhir-source"
    api_path = f"/v1/clients/{agenda.client_id}/fhir-source"
    csrf = await console_sign_in(browser_like, tenant.emails["coordinator"])
    listed = await browser_like.get("/console/manage/clients")
    assert f'href="{page_path}">Relever ses créneaux' in listed.text
    empty = await browser_like.get(page_path)
    assert empty.status_code == 200
    assert re.search(r'id="window_hours"[^>]*value="72"', empty.text)  # the SAS's own window
    assert re.search(r'id="interval_minutes"[^>]*value="5"', empty.text)
    assert {"SNP", "CPTS"} == set(re.findall(r'name="slot_types" value="(\w+)" checked', empty.text))

    form = {"csrf": csrf, "base_url": editor.base_url, "flow": "INT_R01", "window_hours": "72",
            "interval_minutes": "5", "slot_types": ["SNP", "CPTS"], "credentials": "bearer_token",
            "bearer_token": TOKEN, "enabled": "on"}  # fmt: skip
    # Bad input: French messages next to their fields, nothing stored.
    bad = await browser_like.post(page_path, data={**form, "interval_minutes": "cinq", "slot_types": []})
    assert bad.status_code == 422
    assert re.search(r'id="interval_minutes"[^>]*aria-invalid="true"', bad.text)
    assert "Nombre entier de minutes attendu." in bad.text
    assert "Choisissez au moins un type de créneaux." in bad.text
    refused = await browser_like.post(page_path, data={**form, "base_url": "http://10.1.2.3/fhir"})
    assert refused.status_code == 422
    assert "Adresse refusée" in refused.text
    assert TOKEN not in refused.text  # a secret typed is never shown back
    odd = await browser_like.post(page_path, data={**form, "interval_minutes": "²", "credentials": "keep"})
    assert odd.status_code == 422  # a digit int() refuses; nothing stored to keep
    assert "Choisissez les identifiants donnés par l&#39;éditeur." in odd.text
    no_key = await browser_like.post(page_path, data={**form, "credentials": "client_certificate", "bearer_token": ""})
    assert (no_key.status_code, "Collez le certificat et sa clé privée (PEM)." in no_key.text) == (422, True)
    assert (await client.get(api_path, headers=tenant.coordinator)).status_code == 404

    saved = await browser_like.post(page_path, data=form)
    assert (saved.status_code, saved.headers["location"]) == (303, f"{page_path}?saved=1")
    stored = (await client.get(api_path, headers=tenant.coordinator)).json()
    assert (stored["credentials"], stored["interval_seconds"], stored["enabled"]) == ("bearer_token", 300, True)
    assert datetime.fromisoformat(stored["next_pull_at"]) <= datetime.now(UTC)  # due at once

    served = slots_for(agenda, [9, 10])
    served.append(EditorSlot(f"ed-{agenda.client_id[:8]}-new-place", agenda.practitioners[1]["idnps"],
                             next_day_at(16, days=1), address="25 chemin de Mounestie", postal_code="31840",
                             city="Aussonne"))  # fmt: skip
    editor.serve(served)
    assert isinstance(await pull(app, settings, agenda), PullResult)  # what `snp serve` runs every 15 s
    status = await browser_like.get(page_path)
    assert "à jour" in status.text
    assert re.search(r"<tbody><tr><td>3</td><td>0</td><td>0</td><td>0</td>", status.text)  # 3 created
    assert "Lieux à vérifier" in status.text
    assert TOKEN not in status.text
    listed = await browser_like.get("/console/manage/clients")
    assert "relevé le" in listed.text

    # The pulled slots are offered to the handlers, with the link to the editor's agenda.
    request = await open_request(tenant)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://snp.test") as handler:
        await console_sign_in(handler, tenant.emails["handler"])
        offered = await handler.get(f"/console/requests/{request['id']}/suggestions")
        assert f'href="{served[0].agenda_url}"' in offered.text
        assert "Voir sur l'agenda du professionnel" in offered.text
        assert (await handler.get(page_path)).status_code == 403

    # The new place is checked from the practitioner's page.
    member = agenda.practitioners[1]["id"]
    sites = (await client.get(f"/v1/practitioners/{member}", headers=tenant.coordinator)).json()["sites"]
    [new_site] = [s for s in sites if s["needs_review"]]
    practitioner_page = await browser_like.get(f"/console/manage/practitioners/{member}")
    assert "à vérifier" in practitioner_page.text
    checked = await browser_like.post(f"/console/manage/practitioners/{member}/sites/{new_site['id']}/reviewed",
                                      data={"csrf": csrf})  # fmt: skip
    assert checked.status_code == 303
    assert "Lieux à vérifier" not in (await browser_like.get(page_path)).text

    # Saved again keeping the token: due at once; the editor fails, the page says so.
    kept = await browser_like.post(page_path, data={**form, "credentials": "keep", "bearer_token": ""})
    assert kept.status_code == 303
    assert (await client.get(api_path, headers=tenant.coordinator)).json()["credentials"] == "bearer_token"
    editor.answer = lambda request: (500, {"error": "boom"})
    assert isinstance(await pull(app, settings, agenda), PullError)
    failed = await browser_like.get(page_path)
    assert "en échec" in failed.text
    assert "réponse en erreur" in failed.text
    assert editor.headers[-1]["authorization"] == f"Bearer {TOKEN}"
    paused_form = {k: v for k, v in form.items() if k != "enabled"} | {"credentials": "keep", "bearer_token": ""}
    paused = await browser_like.post(page_path, data=paused_form, follow_redirects=True)
    assert "Enregistré : relevés en pause." in paused.text
    assert (await client.get(api_path, headers=tenant.coordinator)).json()["next_pull_at"] is None

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://snp.test") as stranger:
        await console_sign_in(stranger, other_tenant.emails["coordinator"])
        assert (await stranger.get(page_path)).status_code == 404
    stopped = await browser_like.post(f"{page_path}/delete", data={"csrf": csrf})
    assert stopped.headers["location"] == f"{page_path}?saved=stopped"
    assert (await client.get(api_path, headers=tenant.coordinator)).status_code == 404


async def test_a_site_is_corrected_and_marked_checked_through_the_api(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    member = agenda.practitioners[0]
    path = f"/v1/practitioners/{member['id']}/sites/{member['sites'][0]['id']}"
    renamed = await client.patch(path, json={"name": "Cabinet des Lilas", "needs_review": False},
                                 headers=tenant.coordinator)  # fmt: skip
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["needs_review"]) == ("Cabinet des Lilas", False)
    assert (await client.patch(path, json={"needs_review": True}, headers=tenant.coordinator)).status_code == 422
    assert (await client.patch(path, json={"name": "X"}, headers=other_tenant.coordinator)).status_code == 404
    assert (await client.patch(path, json={"name": "X"}, headers=tenant.handler)).status_code == 403
    shown = (await client.get(f"/v1/practitioners/{member['id']}", headers=tenant.coordinator)).json()
    assert shown["sites"][0]["name"] == "Cabinet des Lilas"


async def test_a_slot_served_twice_in_one_pull_is_one_slot(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tenant: Tenant, editor: Editor
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    await configure(client, tenant, agenda, editor)
    [slot] = slots_for(agenda, [9])
    editor.serve([slot, slot])  # e.g. two pages that overlap
    result = await pull(app, settings, agenda)
    assert isinstance(result, PullResult)
    assert (result.created, result.rejected, result.problems) == (1, 0, [])
    assert [s["external_id"] for s in await agenda.slots()] == [slot.slot_id]


async def test_the_server_loop_pulls_a_source_saved_as_due_without_waiting_an_interval(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, tenant: Tenant, editor: Editor
) -> None:
    import asyncio

    agenda = await new_agenda(tenant, practitioners=1)
    editor.serve(slots_for(agenda, [9, 10]))
    await configure(client, tenant, agenda, editor, interval_seconds=3600)
    stop = asyncio.Event()
    loop = asyncio.create_task(slot_pull.run_forever(app.state.sessionmaker, settings, stop))  # as in `snp serve`
    try:
        for _ in range(100):
            status = await client.get(f"/v1/clients/{agenda.client_id}/fhir-source", headers=tenant.coordinator)
            if status.json()["last_success_at"]:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await loop
    assert status.json()["last_result"]["created"] == 2
    assert len(await agenda.slots()) == 2
