"""What the SAS pushes to us and what we push back, through the real HTTP API and database: its
regulators (INT_R02, FrPractitionerRegul) and the appointments of the requests it regulated
(INT_R03, FrAppointmentSAS) received by a real HTTP server on 127.0.0.1. Every resource either
way goes through the guide's own profiles (service.fhir.conformance) and the R4B models."""

from __future__ import annotations

import json
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.practitioner import Practitioner
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.accounts.models import SasRegulator
from service.config import Settings
from service.fhir import appointments, conformance, resources
from tests.builders import (
    Agenda,
    Clock,
    Tenant,
    bearer,
    new_agenda,
    next_day_at,
    open_request,
    publish,
    slot_item,
    unique_rpps,
)
from tests.conftest import make_settings
from tests.integration.test_fhir import join_sas
from tests.receiver import Receiver

EXAMPLES = Path(__file__).resolve().parents[2] / "service" / "fhir" / "ig" / "example"
FHIR = {"Content-Type": "application/fhir+json"}
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"


def regulator(
    rpps: str, *, active: bool = True, family: str = "MARIUS", email: str = "jules.marius@test.com"
) -> dict[str, Any]:
    """A push as the guide's example ExamplePractitionerRegul2 makes it, for this RPPS."""
    body: dict[str, Any] = json.loads((EXAMPLES / "Practitioner-ExamplePractitionerRegul2.json").read_text())
    del body["id"]
    body["identifier"][0]["value"] = "8" + rpps
    body["active"] = active
    body["name"][0]["family"] = family
    body["telecom"][0]["value"] = email
    return body


async def push(client: httpx.AsyncClient, key: str, body: Any, method: str = "POST", query: str = "") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.request(method, f"/fhir/Practitioner{query}", content=content, headers={**bearer(key), **FHIR})


async def regulators_held(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(SasRegulator)) or 0)


async def test_the_guides_example_regulators_are_created_and_read_back_as_the_profile_says(
    client: httpx.AsyncClient, sas_key: str
) -> None:
    for path in sorted(EXAMPLES.glob("Practitioner-ExamplePractitionerRegul*.json")):
        example = json.loads(path.read_text())
        example["identifier"][0]["value"] += f"-{unique_rpps()}"  # unique to this run
        created = await push(client, sas_key, example)
        assert created.status_code == 201, created.text
        assert created.headers["content-type"].startswith("application/fhir+json")
        location = created.headers["Location"]
        read = await client.get(location.removeprefix("http://snp.test"), headers=bearer(sas_key))
        assert read.status_code == 200, read.text
        resource = read.json()
        assert conformance.check(resource) == []
        Practitioner.model_validate(resource)
        assert resource["identifier"][0]["value"] == example["identifier"][0]["value"]
        assert resource["name"] == example["name"]
        assert resource["active"] == example["active"]
        # The SAS retrying the same push: the same regulator, not a second one.
        again = await push(client, sas_key, example)
        assert (again.status_code, again.headers["Location"]) == (200, location)


async def test_a_conditional_update_creates_updates_and_withdraws_a_regulator(
    client: httpx.AsyncClient, tenant: Tenant, sas_key: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    rpps = unique_rpps()
    query = f"?identifier={IDNPS}|8{rpps}"
    created = await push(client, sas_key, regulator(rpps), "PUT", query)
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == 'W/"1"'
    renamed = await push(client, sas_key, regulator(rpps, family="MARIUS-DURAND"), "PUT", query)
    assert (renamed.status_code, renamed.headers["ETag"]) == (200, 'W/"2"')
    assert renamed.json()["name"][0]["family"] == "MARIUS-DURAND"
    assert renamed.headers["Location"] == created.headers["Location"]
    # Another POST for the same identifier with other facts is a conflict, not a second account.
    duplicate = await push(client, sas_key, regulator(rpps, family="AUTRE"))
    assert (duplicate.status_code, duplicate.json()["issue"][0]["code"]) == (409, "duplicate")

    # A request the SAS regulated names them; a handler records their decision to lift a red flag.
    async def lift() -> httpx.Response:
        flagged = await open_request(
            tenant, channel="sas", via_sas=True, regulating_physician=rpps, red_flags=["chest_pain"]
        )
        return await client.post(
            f"/v1/requests/{flagged['id']}/override", json={"regulating_physician": rpps}, headers=tenant.handler
        )

    assert (await lift()).status_code == 201
    withdrawn = await push(client, sas_key, regulator(rpps, active=False, family="MARIUS-DURAND"), "PUT", query)
    assert (withdrawn.status_code, withdrawn.json()["active"]) == (200, False)
    async with sessionmaker() as session:
        row = await session.scalar(select(SasRegulator).where(SasRegulator.rpps == rpps))
        assert row is not None
        assert (row.active, row.credentials_version) == (False, 2)
    refused = await lift()
    assert (refused.status_code, refused.json()["code"]) == (403, "regulator_withdrawn")
    await push(client, sas_key, regulator(rpps, family="MARIUS-DURAND"), "PUT", query)  # rights restored
    assert (await lift()).status_code == 201


@pytest.mark.parametrize(
    ("body", "method", "query", "status"),
    [
        (b"{not json", "POST", "", 400),
        ({"resourceType": "Patient", "active": True}, "POST", "", 422),
        ("no-active", "POST", "", 422),
        ("no-identifier", "POST", "", 422),
        ("empty-family", "POST", "", 422),
        ("bad-email", "POST", "", 422),
        ("underscore-active", "POST", "", 422),  # `_active` (an extension) without the value
        ("value-extension-only", "POST", "", 422),  # an identifier whose value is only `_value`
        ("nul-name", "POST", "", 422),
        ("deep", "POST", "", 400),
        ("ok", "PUT", "", 400),  # a conditional update names the identifier
        ("ok", "PUT", "?identifier=urn:oid:1.2.250.1.71.4.2.1|899999999999", 400),  # not the body's
    ],
)
async def test_an_invalid_push_is_an_operation_outcome_and_changes_nothing(
    client: httpx.AsyncClient,
    sas_key: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    body: Any,
    method: str,
    query: str,
    status: int,
) -> None:
    valid = regulator(unique_rpps())
    if body == "ok":
        body = valid
    elif body == "no-active":
        body = {k: v for k, v in valid.items() if k != "active"}
    elif body == "no-identifier":
        body = {k: v for k, v in valid.items() if k != "identifier"}
    elif body == "empty-family":
        body = {**valid, "name": [{"family": "", "given": ["Jules"]}]}
    elif body == "bad-email":
        body = {**valid, "telecom": [{"system": "email", "value": "not an address"}]}
    elif body == "underscore-active":
        body = {**{k: v for k, v in valid.items() if k != "active"}, "_active": {"extension": []}}
    elif body == "value-extension-only":
        system = valid["identifier"][0]["system"]
        body = {**valid, "identifier": [{"system": system, "_value": {"id": "x"}}]}
    elif body == "nul-name":
        body = {**valid, "name": [{"family": "MAR\u0000IUS", "given": ["Jules"]}]}
    elif body == "deep":
        body = ("[" * 100_000 + "]" * 100_000).encode()
    before = await regulators_held(sessionmaker)
    answer = await push(client, sas_key, body, method, query)
    assert answer.status_code == status, answer.text[:300]
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    if status == 422 and body != valid and not isinstance(body, bytes):
        assert all(issue.get("expression") for issue in outcome["issue"])  # where the problem is
    assert await regulators_held(sessionmaker) == before


async def test_only_the_sas_may_push_regulators(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = regulator(unique_rpps())
    for headers in ({}, tenant.coordinator, bearer("snpsas_forged")):
        answer = await client.post("/fhir/Practitioner", content=json.dumps(body), headers={**headers, **FHIR})
        assert answer.status_code in (401, 403)
        assert answer.json()["resourceType"] == "OperationOutcome"
    wrong_type = await client.post("/fhir/Practitioner", content="x", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 401  # who is asking comes first
    # Refused before any route runs (a large body from a stranger): still an OperationOutcome.
    large = await client.post("/fhir/Practitioner", content=b"{" + b" " * 100_000 + b"}", headers=FHIR)
    assert (large.status_code, large.headers["content-type"]) == (401, "application/fhir+json")
    assert large.json()["issue"][0]["code"] == "login"


# --- INT_R03: appointments back to the SAS ---------------------------------------------------


def sas_settings(database_url: str, receiver: Receiver | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "SNP_WEBHOOK_MAX_ATTEMPTS": 3,
        "SNP_WEBHOOK_TIMEOUT_SECONDS": 2,
        "SNP_PUBLIC_URL": "https://snp.cpts-test.fr",
        **overrides,
    }
    if receiver is not None:
        values["SNP_SAS_BASE_URL"] = f"http://127.0.0.1:{receiver.port}/fhir"
    return make_settings(database_url, **values)


async def sas_booking(
    client: httpx.AsyncClient, tenant: Tenant, *, rpps: str | None, via_sas: bool = True, days: int = 2
) -> tuple[dict[str, Any], Agenda, dict[str, Any]]:
    """A booking of a request the SAS regulated (when `via_sas`): (booking, agenda, practitioner)."""
    agenda = await new_agenda(tenant, practitioners=1)
    member = agenda.practitioners[0]
    [slot_id] = await publish(agenda, [slot_item("sas-1", member, next_day_at(10, days=days))])
    fields: dict[str, Any] = {"channel": "sas", "via_sas": True, "regulating_physician": rpps} if via_sas else {}
    request = await open_request(tenant, **fields)
    booked = await client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    assert booked.status_code == 201, booked.text
    return booked.json(), agenda, member


async def send(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, **options: Any) -> int:
    async with httpx.AsyncClient(timeout=2) as http:
        return await appointments.run_once(sessionmaker, settings, http, **options)


async def test_a_sas_booking_is_posted_then_put_by_identifier_on_cancellation(
    client: httpx.AsyncClient,
    tenant: Tenant,
    sas_key: str,
    sas_receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    await join_sas(client, tenant)
    rpps = unique_rpps()
    assert (await push(client, sas_key, regulator(rpps))).status_code == 201
    booking, _, member = await sas_booking(client, tenant, rpps=rpps)
    settings = sas_settings(database_url, sas_receiver)
    assert await send(sessionmaker, settings) == 1
    [created] = sas_receiver.calls
    assert (created.method, created.path) == ("POST", "/fhir/Appointment")
    # A conditional create: the SAS's answer lost and the POST sent again cannot make a second one.
    assert unquote(created.headers["if-none-exist"]) == (
        f"identifier=https://snp.cpts-test.fr/fhir/sid/appointment|{booking['booking_id']}"
    )
    assert created.headers["content-type"] == "application/fhir+json"
    sent = json.loads(created.body)
    assert conformance.check(sent) == []  # FrAppointmentSAS: cardinalities, patterns, bindings
    Appointment.model_validate(sent)
    assert sent["status"] == "booked"
    assert sent["identifier"] == [
        {"system": "https://snp.cpts-test.fr/fhir/sid/appointment", "value": booking["booking_id"]}
    ]
    assert sent["participant"][0]["actor"]["identifier"]["value"] == "8" + member["rpps"]
    assert sent["participant"][0]["status"] == "accepted"
    operator = sent["extension"][0]["valueReference"]["identifier"]
    assert (operator["system"], operator["value"]) == (IDNPS, "8" + rpps)
    assert sent["serviceType"][0]["coding"][0]["code"] == resources.CPTS_CATEGORY
    assert sent["start"].endswith("+01:00") or sent["start"].endswith("+02:00")
    assert datetime.fromisoformat(sent["start"]) == datetime.fromisoformat(booking["slot"]["start"])
    assert await send(sessionmaker, settings) == 0  # delivered once

    cancelled = await client.post(
        f"/v1/bookings/{booking['booking_id']}/cancel",
        json={"cancelled_by": "patient", "reason": "better"},
        headers=tenant.handler,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert await send(sessionmaker, settings) == 1
    update_call = sas_receiver.calls[1]
    assert update_call.method == "PUT"
    assert unquote(update_call.query) == (
        f"identifier=https://snp.cpts-test.fr/fhir/sid/appointment|{booking['booking_id']}"
    )
    changed = json.loads(update_call.body)
    assert conformance.check(changed) == []
    assert changed["status"] == "cancelled"
    assert changed["identifier"] == sent["identifier"]
    listed = await client.get("/v1/sas/deliveries", headers=tenant.coordinator)
    assert [(d["type"], d["status"]) for d in listed.json()["items"]] == [
        ("booking.cancelled", "delivered"),
        ("booking.confirmed", "delivered"),
    ]


async def test_the_outcome_reaches_the_sas_and_a_booking_the_sas_did_not_regulate_sends_nothing(
    client: httpx.AsyncClient,
    tenant: Tenant,
    sas_receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
    clock: Clock,
) -> None:
    await join_sas(client, tenant)
    settings = sas_settings(database_url, sas_receiver)
    await sas_booking(client, tenant, rpps=None, via_sas=False)
    assert await send(sessionmaker, settings) == 0
    booking, agenda, _ = await sas_booking(client, tenant, rpps=None, days=1)
    assert await send(sessionmaker, settings) == 1
    # Without a regulating physician on the request, the operator is the CPTS itself.
    operator = json.loads(sas_receiver.calls[0].body)["extension"][0]["valueReference"]["identifier"]
    assert (operator["type"]["coding"][0]["code"], operator["value"]) == ("IDNST", "1440000123")
    # The creation sent again (a coordinator's redelivery): an update now, the SAS holds it.
    [delivered] = (await client.get("/v1/sas/deliveries", headers=tenant.coordinator)).json()["items"]
    again = await client.post(
        f"/v1/sas/deliveries/{delivered['message_id']}/redeliver",
        headers={**tenant.coordinator, "Idempotency-Key": f"again-{delivered['message_id']}"},
    )
    assert again.status_code == 200
    assert await send(sessionmaker, settings) == 1
    assert [c.method for c in sas_receiver.calls] == ["POST", "PUT"]
    clock.now = datetime.fromisoformat(booking["slot"]["end"]).astimezone(UTC) + timedelta(minutes=5)
    reported = await client.post(
        f"/v1/bookings/{booking['booking_id']}/outcome", json={"outcome": "noshow"}, headers=agenda.headers
    )
    assert reported.status_code == 200, reported.text
    assert await send(sessionmaker, settings, now=lambda: clock.now) == 1
    told = sas_receiver.calls[2]
    assert (told.method, json.loads(told.body)["status"]) == ("PUT", "noshow")


async def test_a_failing_sas_gets_the_appointment_in_order_then_a_dead_letter_to_redeliver(
    client: httpx.AsyncClient,
    tenant: Tenant,
    sas_receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    await join_sas(client, tenant)
    settings = sas_settings(database_url, sas_receiver)
    booking, _, _ = await sas_booking(client, tenant, rpps=unique_rpps())
    await client.post(
        f"/v1/bookings/{booking['booking_id']}/cancel",
        json={"cancelled_by": "patient", "reason": "better"},
        headers=tenant.handler,
    )
    sas_receiver.answers = deque([503, 500, 502])
    moment = [datetime.now(UTC)]
    for _ in range(3):
        # Only the creation is tried: the cancellation waits until the SAS has it.
        assert await send(sessionmaker, settings, now=lambda: moment[0]) == 1
        moment[0] += timedelta(hours=2)
    assert {c.method for c in sas_receiver.calls} == {"POST"}
    dead = (await client.get("/v1/sas/deliveries?status=dead", headers=tenant.coordinator)).json()["items"]
    assert [(d["type"], d["attempts"], d["last_status_code"]) for d in dead] == [("booking.confirmed", 3, 502)]
    assert [a["status_code"] for a in dead[0]["history"]] == [503, 500, 502]
    # A dead creation no longer holds the cancellation back: the SAS creates it from the PUT.
    assert await send(sessionmaker, settings, now=lambda: moment[0]) == 1
    assert sas_receiver.calls[-1].method == "PUT"
    again = await client.post(
        f"/v1/sas/deliveries/{dead[0]['message_id']}/redeliver",
        headers={**tenant.coordinator, "Idempotency-Key": "sas-redeliver-1"},
    )
    assert (again.status_code, again.json()["status"]) == (200, "pending")
    assert await send(sessionmaker, settings, now=lambda: moment[0]) == 1
    # Sent again after the SAS received the update: an update by identifier, never a second creation.
    assert sas_receiver.calls[-1].method == "PUT"
    other = await client.get("/v1/sas/deliveries", headers=tenant.handler)
    assert other.status_code == 403


async def test_without_a_sas_address_nothing_is_sent_and_the_messages_say_why(
    client: httpx.AsyncClient,
    tenant: Tenant,
    other_tenant: Tenant,
    sas_receiver: Receiver,
    sessionmaker: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    await join_sas(client, tenant)
    await sas_booking(client, tenant, rpps=unique_rpps())
    assert await send(sessionmaker, sas_settings(database_url, None)) == 0
    assert sas_receiver.calls == []
    [skipped] = (await client.get("/v1/sas/deliveries", headers=tenant.coordinator)).json()["items"]
    assert (skipped["status"], skipped["last_error"]) == ("skipped", "not sent: SNP_SAS_BASE_URL is not set")
    # Another CPTS sees none of them; a CPTS that did not join the SAS writes none.
    assert (await client.get("/v1/sas/deliveries", headers=other_tenant.coordinator)).json()["items"] == []
    await sas_booking(client, other_tenant, rpps=unique_rpps())
    assert (await client.get("/v1/sas/deliveries", headers=other_tenant.coordinator)).json()["items"] == []


async def test_a_regulator_first_known_by_the_sas_id_keeps_one_record_when_their_idnps_comes(
    client: httpx.AsyncClient, sas_key: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    rpps = unique_rpps()
    internal = ("urn:oid:1.2.250.1.213.3.6", f"SAS-{rpps}")
    first = regulator(rpps)
    first["identifier"] = [
        {
            "type": {"coding": [{"system": "http://interopsante.org/fhir/CodeSystem/fr-v2-0203", "code": "INTRN"}]},
            "system": internal[0],
            "value": internal[1],
        }
    ]
    by_internal = f"?identifier={internal[0]}|{internal[1]}"
    created = await push(client, sas_key, first, "PUT", by_internal)
    assert created.status_code == 201, created.text
    both = regulator(rpps)
    both["identifier"] = [*regulator(rpps)["identifier"], first["identifier"][0]]
    updated = await push(client, sas_key, both, "PUT", by_internal)
    assert updated.status_code == 200, updated.text
    assert updated.headers["Location"] == created.headers["Location"]
    assert updated.json()["identifier"][0]["value"] == "8" + rpps  # kept by the national id now
    async with sessionmaker() as session:
        held = await session.scalar(select(func.count()).select_from(SasRegulator).where(SasRegulator.rpps == rpps))
    assert held == 1
