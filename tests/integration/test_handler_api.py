"""What the console needs of the API, and what call-centre software can use the same way:
corrections, notes, search, duplicates, callbacks, what is read to the patient, and suggestions
that say why when nothing fits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.audit.models import AuditEvent
from tests.builders import Clock, Tenant, new_agenda, next_day_at, open_request, publish, request_body, slot_item


async def audit_actions(
    sessionmaker: async_sessionmaker[AsyncSession], tenant: Tenant, object_id: str
) -> list[tuple[str, dict[str, Any]]]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(AuditEvent.action, AuditEvent.detail)
            .where(AuditEvent.cpts_id == tenant.cpts_id, AuditEvent.object_id == object_id)
            .order_by(AuditEvent.id)
        )
        return [(action, detail) for action, detail in rows]


async def detail_of(client: httpx.AsyncClient, tenant: Tenant, request_id: str) -> dict[str, Any]:
    answer = await client.get(f"/v1/requests/{request_id}", headers=tenant.handler)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


# --- corrections and notes -------------------------------------------------------------------------


async def test_a_correction_changes_the_traits_not_the_clock_and_is_audited_by_field(
    client: httpx.AsyncClient, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    created = await open_request(tenant)
    patch = {
        "patient": {"family_name": "Dupond", "address": "2 rue Neuve", "email": "j.dupond@example.org"},
        "caller": {"relation": "parent", "phone": "07 00 11 22 33"},
        "needs": {"profession": "10", "modalities": ["HH"]},
        "notify_by": ["email"],
    }
    answer = await client.patch(f"/v1/requests/{created['id']}", json=patch, headers=tenant.handler)
    assert answer.status_code == 200, answer.text
    corrected = answer.json()
    assert (corrected["received_at"], corrected["deadline_at"]) == (created["received_at"], created["deadline_at"])
    assert corrected["patient"]["family_name"] == "Dupond"
    assert corrected["patient"]["given_name"] == "Jeanne"  # absent: unchanged
    assert (corrected["patient"]["address"], corrected["patient"]["email"]) == ("2 rue Neuve", "j.dupond@example.org")
    assert corrected["caller"] == {"relation": "parent", "phone": "07 00 11 22 33"}
    assert corrected["needs"]["modalities"] == ["HH"]
    assert corrected["notify_by"] == ["email"]
    actions = await audit_actions(sessionmaker, tenant, created["id"])
    correction = next(detail for action, detail in actions if action == "request.correct")
    assert correction["fields"] == ["caller", "patient.address", "patient.email", "patient.family_name", "needs",
                                    "notify_by"]  # fmt: skip
    assert "Dupond" not in str(correction)  # which fields, never their values


async def test_a_bad_correction_changes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await open_request(tenant, patient={"family_name": "Martin", "given_name": "Léa"})
    path = f"/v1/requests/{created['id']}"
    for bad, field in (
        ({"notify_by": ["sms"]}, "notify_by"),  # no phone to send it to
        ({"patient": {"ins": "269054958815780"}}, "ins"),  # an INS without a qualified identity
        ({"patient": {"birth_date": "1812-01-01"}}, "birth_date"),
        ({"received_at": "2026-01-01T00:00:00Z"}, "received_at"),  # not a correction one may make
    ):
        answer = await client.patch(path, json=bad, headers=tenant.handler)
        assert answer.status_code == 422, (bad, answer.text)
        assert field in answer.text
    assert (await detail_of(client, tenant, created["id"]))["patient"]["family_name"] == "Martin"
    assert (await detail_of(client, tenant, created["id"]))["notify_by"] == []
    elsewhere = await client.patch(path, json={"patient": {"family_name": "X"}}, headers=other_tenant.handler)
    assert elsewhere.status_code == 404
    # Correcting is the handlers' (and regulators'): a coordinator reads, does not orient.
    coordinator = await client.patch(path, json={"patient": {"family_name": "X"}}, headers=tenant.coordinator)
    assert coordinator.status_code == 403
    sms_without_phone = request_body(patient={"family_name": "Roux"}, notify_by=["sms"])
    refused = await client.post("/v1/requests", json=sms_without_phone, headers=tenant.handler)
    assert refused.status_code == 422


async def test_notes_are_added_at_any_time_and_listed_with_the_request(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await open_request(tenant)
    path = f"/v1/requests/{created['id']}"
    first = await client.post(f"{path}/notes", json={"text": "Rappelle dans 10 min"}, headers=tenant.handler)
    assert first.status_code == 201
    await client.post(f"{path}/orientations", json={"outcome": "advice"}, headers=tenant.handler)
    after_closing = await client.post(f"{path}/notes", json={"text": "A rappelé : va mieux"}, headers=tenant.handler)
    assert after_closing.status_code == 201
    notes = (await detail_of(client, tenant, created["id"]))["notes"]
    assert [n["text"] for n in notes] == ["Rappelle dans 10 min", "A rappelé : va mieux"]
    assert (await client.post(f"{path}/notes", json={"text": "  "}, headers=tenant.handler)).status_code == 422
    assert (await client.post(f"{path}/notes", json={"text": "x"}, headers=other_tenant.handler)).status_code == 404


# --- search and duplicates -------------------------------------------------------------------------


async def test_search_finds_a_request_by_phone_in_any_format_by_name_and_by_booking_reference(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    [slot_id] = await publish(agenda, [slot_item("s1", agenda.practitioners[0], next_day_at(10))])
    mine = await open_request(tenant, patient={"family_name": "Lefèvre-Dupont", "phone": "06 12 34 56 78"})
    other = await open_request(tenant, patient={"family_name": "Bernard", "phone": "02 40 00 00 00"},
                               caller={"relation": "parent", "phone": "07 98 76 54 32"})  # fmt: skip
    await open_request(other_tenant, patient={"family_name": "Lefèvre", "phone": "06 12 34 56 78"})
    booked = await client.post(f"/v1/requests/{mine['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    reference = booked.json()["reference"]
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{3}-[0-9A-HJKMNP-TV-Z]{3}", reference)

    async def found(typed: str) -> list[str]:
        answer = await client.get("/v1/requests", params={"q": typed}, headers=tenant.handler)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    for typed in ("06 12 34 56 78", "+33612345678", "0033 6 12 34 56 78", "0612345678"):
        assert await found(typed) == [mine["id"]], typed
    assert await found("07.98.76.54.32") == [other["id"]]  # the caller's number finds it too
    assert await found("lefevre") == [mine["id"]]  # accents, case and the hyphen do not matter
    assert await found("LEFÈVRE DU") == [mine["id"]]
    assert await found(reference.lower().replace("-", "")) == [mine["id"]]
    assert await found("bern4r") == []  # digits: never a family name (nor here a reference)
    assert await found(reference.replace("0", "O")) == [mine["id"]]  # O read for 0
    assert await found("Nobody") == []
    too_short = await client.get("/v1/requests", params={"q": "a"}, headers=tenant.handler)
    assert too_short.status_code == 422
    actions = [a for a, _ in await audit_actions(sessionmaker, tenant, mine["id"])]
    assert "request.search" in actions


async def test_duplicates_are_the_same_patient_or_phone_within_the_window(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    clock.now = datetime.now(UTC)
    first = await open_request(tenant)  # Jeanne Dupont 1980-05-17, 06 12 34 56 78
    same_person = await open_request(
        tenant, patient={"family_name": "DUPONT", "given_name": "Jeanne", "birth_date": "1980-05-17"},
        caller={"relation": "relative", "phone": "02 99 00 00 00"},
    )  # fmt: skip
    same_phone = await open_request(
        tenant, patient={"family_name": "Dupont", "given_name": "Paul", "phone": "+33 6 12 34 56 78"}
    )
    unrelated = await open_request(
        tenant, patient={"family_name": "Roux", "given_name": "Marc", "phone": "06 99 99 99 99"},
        caller={"relation": "self", "phone": "06 99 99 99 99"},
    )  # fmt: skip

    answer = await client.get(f"/v1/requests/{first['id']}/duplicates", headers=tenant.handler)
    assert answer.status_code == 200
    same = {d["id"]: d["same"] for d in answer.json()}
    assert same == {same_person["id"]: ["patient"], same_phone["id"]: ["phone"]}
    nothing = await client.get(f"/v1/requests/{unrelated['id']}/duplicates", headers=tenant.handler)
    assert nothing.json() == []

    # Before saving: from what the handler typed so far.
    typed = {"patient": {"family_name": "dupont", "given_name": "JEANNE", "birth_date": "1980-05-17"}}
    check = await client.post("/v1/requests/duplicate-check", json=typed, headers=tenant.handler)
    assert check.status_code == 200
    assert {d["id"] for d in check.json()} == {first["id"], same_person["id"]}
    by_phone = await client.post(
        "/v1/requests/duplicate-check", json={"caller": {"phone": "0612345678"}}, headers=tenant.handler
    )
    assert {d["id"] for d in by_phone.json()} == {first["id"], same_phone["id"]}

    # Outside the CPTS's window, no longer a duplicate.
    changed = await client.patch("/v1/cpts/current", json={"duplicate_window_hours": 2}, headers=tenant.coordinator)
    assert changed.status_code == 200, changed.text
    clock.now = datetime.now(UTC) + timedelta(hours=3)
    await tenant.relogin()
    later = await client.post("/v1/requests/duplicate-check", json=typed, headers=tenant.handler)
    assert later.json() == []


# --- callbacks ---------------------------------------------------------------------------------------


async def test_a_callback_shows_in_the_queue_until_it_is_done(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    clock.now = datetime.now(UTC).replace(microsecond=0)
    created = await open_request(tenant)
    path = f"/v1/requests/{created['id']}"
    due = clock.now + timedelta(minutes=20)
    callback = await client.post(
        f"{path}/callbacks", json={"due_at": due.isoformat(), "reason": "Attend le retour du père"},
        headers=tenant.handler,
    )  # fmt: skip
    assert callback.status_code == 201, callback.text
    assert callback.json()["source"] == "handler"

    async def queued_callback() -> str | None:
        items = (await client.get("/v1/requests", headers=tenant.handler)).json()["items"]
        due_at: str | None = next(i for i in items if i["id"] == created["id"])["callback_due_at"]
        return due_at

    queued = await queued_callback()
    assert queued is not None
    assert datetime.fromisoformat(queued) == due
    done = await client.post(f"{path}/callbacks/{callback.json()['id']}/done", headers=tenant.handler)
    assert done.status_code == 200
    assert done.json()["done_at"] is not None
    again = await client.post(f"{path}/callbacks/{callback.json()['id']}/done", headers=tenant.handler)
    assert again.json()["done_at"] == done.json()["done_at"]  # twice changes nothing
    assert await queued_callback() is None

    past = (clock.now - timedelta(hours=1)).isoformat()
    refused = await client.post(f"{path}/callbacks", json={"due_at": past}, headers=tenant.handler)
    assert refused.status_code == 422
    naive = await client.post(f"{path}/callbacks", json={"due_at": "2030-01-01T10:00:00"}, headers=tenant.handler)
    assert naive.status_code == 422
    unknown = await client.post(f"{path}/callbacks/{created['id']}/done", headers=tenant.handler)
    assert unknown.status_code == 404


async def test_a_practitioners_cancellation_reopens_the_request_with_a_callback_due_now(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agenda = await new_agenda(tenant, practitioners=1)
    [slot_id] = await publish(agenda, [slot_item("c1", agenda.practitioners[0], next_day_at(11))])
    created = await open_request(tenant)
    booked = (await client.post(f"/v1/requests/{created['id']}/book", json={"slot_id": slot_id},
                                headers=tenant.handler)).json()  # fmt: skip
    withdrawn = await client.delete("/v1/slots/c1", params={"cancel_booking": "true"}, headers=agenda.headers)
    assert withdrawn.status_code in (200, 204), withdrawn.text
    detail = await detail_of(client, tenant, created["id"])
    assert (detail["status"], detail["reopened"]) == ("open", True)
    [callback] = detail["callbacks"]
    assert callback["source"] == "cancellation"
    assert callback["done_at"] is None
    assert detail["bookings"][0]["booking_id"] == booked["booking_id"]
    items = (await client.get("/v1/requests", headers=tenant.handler)).json()["items"]
    queued = next(i for i in items if i["id"] == created["id"])
    assert queued["reopened"] is True
    assert queued["callback_due_at"] is not None

    # A cancellation by the patient (the handler on the phone with them) leaves no callback.
    [slot2] = await publish(agenda, [slot_item("c2", agenda.practitioners[0], next_day_at(15))])
    rebooked = (await client.post(f"/v1/requests/{created['id']}/book", json={"slot_id": slot2},
                                  headers=tenant.handler)).json()  # fmt: skip
    await client.post(
        f"/v1/bookings/{rebooked['booking_id']}/cancel", json={"reason": "mieux", "cancelled_by": "patient"},
        headers=tenant.handler,
    )  # fmt: skip
    assert len((await detail_of(client, tenant, created["id"]))["callbacks"]) == 1


# --- what is read to the patient ---------------------------------------------------------------------


async def test_a_booking_carries_what_is_read_to_the_patient(client: httpx.AsyncClient, tenant: Tenant) -> None:
    practitioner = await tenant.add_practitioner(
        phone="02 40 11 22 33",
        sites=[{"name": "Maison de santé", "address": "3 rue de la Paix", "commune_insee": "44143",
                "phone": "02 40 99 88 77", "latitude": 47.2, "longitude": -1.5}],
    )  # fmt: skip
    client_id = await tenant.add_client([practitioner["id"]])
    from tests.builders import Agenda

    agenda = Agenda(tenant, client_id["id"], client_id["api_key"], [practitioner])
    [slot_id] = await publish(agenda, [slot_item("r1", practitioner, next_day_at(9))])
    created = await open_request(tenant)
    suggestions = (await client.get(f"/v1/requests/{created['id']}/suggestions", headers=tenant.handler)).json()
    site = suggestions["items"][0]["site"]
    # Rezé (44143) has one postal code: the reference completes the address.
    assert site["full_address"] == "3 rue de la Paix, 44400 Rezé"
    assert (site["phone"], site["commune_name"]) == ("02 40 99 88 77", "Rezé")
    booked = await client.post(f"/v1/requests/{created['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    answer = booked.json()
    assert answer["slot"]["site"]["full_address"] == "3 rue de la Paix, 44400 Rezé"
    assert answer["slot"]["practitioner"]["phone"] == "02 40 11 22 33"
    again = (await client.get(f"/v1/bookings/{answer['booking_id']}", headers=tenant.handler)).json()
    assert again["reference"] == answer["reference"]
    assert again["slot"]["site"] == answer["slot"]["site"]


# --- suggestions ---------------------------------------------------------------------------------------


async def test_a_slot_inside_the_lead_time_is_not_offered_and_the_reason_is_given(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    clock.now = now
    agenda = await new_agenda(tenant, practitioners=1)
    gp = agenda.practitioners[0]
    soon = await publish(agenda, [slot_item("soon", gp, now + timedelta(minutes=4), minutes=5)])
    created = await open_request(tenant)
    path = f"/v1/requests/{created['id']}/suggestions"
    answer = (await client.get(path, headers=tenant.handler)).json()
    assert answer["items"] == []
    assert answer["min_lead_minutes"] == 30
    assert [r["code"] for r in answer["reasons"]] == ["too_soon"]
    # A video call needs no travel: offered up to five minutes before it starts.
    video = await publish(agenda, [slot_item("video", gp, now + timedelta(minutes=10), modality="VR")])
    later = await publish(agenda, [slot_item("later", gp, now + timedelta(minutes=45))])
    items = (await client.get(path, headers=tenant.handler)).json()["items"]
    assert [i["slot_id"] for i in items] == video + later
    assert soon[0] not in [i["slot_id"] for i in items]
    # The CPTS sets the lead time.
    changed = await client.patch("/v1/cpts/current", json={"min_lead_minutes": 60}, headers=tenant.coordinator)
    assert changed.status_code == 200, changed.text
    items = (await client.get(path, headers=tenant.handler)).json()["items"]
    assert [i["slot_id"] for i in items] == video


async def test_suggestion_filters_narrow_the_list_and_say_why_it_is_empty(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    clock.now = now
    agenda = await new_agenda(tenant, practitioners=2)
    near, far = agenda.practitioners
    far_site = (await client.post(
        f"/v1/practitioners/{far['id']}/sites",
        json={"name": "Loin", "commune_insee": "44047", "latitude": 47.2156, "longitude": -1.7228},
        headers=tenant.coordinator,
    )).json()  # fmt: skip
    base = now + timedelta(hours=2)
    ids = await publish(agenda, [
        slot_item("near-early", near, base),
        slot_item("far", far, base + timedelta(minutes=30), site_id=far_site["id"]),
        slot_item("near-late", near, base + timedelta(hours=3)),
        slot_item("video", near, base + timedelta(hours=1), modality="VR"),
    ])  # fmt: skip
    names = dict(zip(ids, ["near-early", "far", "near-late", "video"], strict=True))
    created = await open_request(tenant)
    path = f"/v1/requests/{created['id']}/suggestions"

    async def offered(**params: Any) -> tuple[list[str], list[str]]:
        answer = await client.get(path, params=params, headers=tenant.handler)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return [names[i["slot_id"]] for i in body["items"]], [r["code"] for r in body["reasons"]]

    not_before = (base + timedelta(hours=2)).isoformat()
    assert await offered(not_before=not_before) == (["near-late"], [])
    assert (await offered(max_distance_km=5))[0] == ["near-early", "video", "near-late"]
    assert (await offered(modality="VR"))[0] == ["video"]
    assert (await offered(modality=["AMB"], max_distance_km=5))[0] == ["near-early", "near-late"]
    late = (base + timedelta(hours=5)).isoformat()
    assert await offered(not_before=late) == ([], ["not_before"])
    assert await offered(max_distance_km=0.1, modality="AMB") == ([], ["too_far"])
    for bad in ({"max_distance_km": -1}, {"not_before": "2026-13-01"}, {"not_before": "2027-01-01T10:00"},
                {"modality": "BUS"}):  # fmt: skip
        assert (await client.get(path, params=bad, headers=tenant.handler)).status_code == 422, bad


async def test_when_nothing_fits_the_suggestions_offer_alternatives(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    clock.now = now
    gps = await new_agenda(tenant, practitioners=1)
    nurses = await new_agenda(tenant, practitioners=1, profession="60", specialty=None)
    gp = gps.practitioners[0]
    video = await publish(gps, [slot_item("video", gp, now + timedelta(hours=3), modality="VR")])
    beyond = await publish(gps, [slot_item("beyond", gp, now + timedelta(days=5))])
    nurse = await publish(nurses, [slot_item("nurse", nurses.practitioners[0], now + timedelta(hours=2))])
    created = await open_request(tenant, needs={"profession": "10", "modalities": ["AMB"]})
    answer = (await client.get(f"/v1/requests/{created['id']}/suggestions", headers=tenant.handler)).json()
    assert answer["items"] == []
    assert [r["code"] for r in answer["reasons"]] == ["no_free_slot"]
    alternatives = {a["kind"]: [i["slot_id"] for i in a["items"]] for a in answer["alternatives"]}
    assert alternatives == {"later": beyond, "teleconsultation": video, "other_profession": nurse}


async def test_a_red_flagged_request_gets_no_suggestions(client: httpx.AsyncClient, tenant: Tenant) -> None:
    flagged = await open_request(tenant, red_flags=["respiratory_distress"])
    assert flagged["status"] == "transfer_required"
    answer = await client.get(f"/v1/requests/{flagged['id']}/suggestions", headers=tenant.handler)
    assert answer.status_code == 422
    assert answer.json()["code"] == "red_flag_transfer_required"
