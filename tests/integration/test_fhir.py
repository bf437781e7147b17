"""The FHIR interface of the SAS guide (INT_R04) through the real HTTP API and database: the search
as the SAS aggregator sends it, checked against the guide's own profiles (service.fhir.conformance)
and parsed by the R4B models of fhir.resources; what must never show; errors as OperationOutcome."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from service.fhir import conformance
from tests.builders import Agenda, Tenant, bearer, new_agenda, publish, slot_item
from tests.integration.test_cli import snp_json

PARIS = ZoneInfo("Europe/Paris")
INCLUDES = (
    "_include=Slot:schedule&_include:iterate=Schedule:actor&_include=Slot:service-type-reference"
    "&_include:iterate=HealthcareService:organization"
)
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000[+-]\d{2}:\d{2}$")


@pytest.fixture
async def agenda(tenant: Tenant) -> Agenda:
    return await new_agenda(tenant, practitioners=1)


async def join_sas(client: httpx.AsyncClient, tenant: Tenant, finess: str = "440000123") -> None:
    changed = await client.patch(
        "/v1/cpts/current", json={"finess": finess, "phone": "02 40 00 11 22", "sas_enabled": True},
        headers=tenant.coordinator,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text


def window(start: datetime, hours: int = 72, *, offset: bool = False) -> str:
    """The window as the SAS sends it: Paris time without offset (CPTS flow), or with one."""
    low, high = start.astimezone(PARIS), (start + timedelta(hours=hours)).astimezone(PARIS)
    if offset:  # the individual flow's "+00:00", whose "+" arrives as a space when not encoded
        low, high = low.astimezone(UTC), high.astimezone(UTC)
        return f"start=ge{low:%Y-%m-%dT%H:%M:%S}.000 00:00&start=le{high:%Y-%m-%dT%H:%M:%S}.000 00:00"
    return f"start=ge{low:%Y-%m-%dT%H:%M:%S}&start=le{high:%Y-%m-%dT%H:%M:%S}"


def ids_of(agenda: Agenda, prefixed: bool = True) -> str:
    return ",".join(("8" if prefixed else "") + p["rpps"] for p in agenda.practitioners)


async def search(client: httpx.AsyncClient, key: str, query: str) -> httpx.Response:
    return await client.get(f"/fhir/Slot?{query}", headers=bearer(key))


def query(agenda: Agenda, start: datetime, **options: Any) -> str:
    ids = ids_of(agenda, options.pop("prefixed", True))
    return (
        f"{INCLUDES}&{window(start, offset=options.pop('offset', False))}&status=free"
        f"&schedule.actor:Practitioner.identifier=urn:oid:1.2.250.1.71.4.2.1|{ids}"
    )


def slots_in(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Slot"]


async def test_the_search_as_the_sas_sends_it_answers_a_bundle_the_guide_accepts(
    client: httpx.AsyncClient, tenant: Tenant, sas_key: str
) -> None:
    await join_sas(client, tenant)
    agenda = await new_agenda(tenant, practitioners=2)
    first, second = agenda.practitioners
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    ids = await publish(agenda, [
        slot_item("a1", first, start),
        slot_item("a2", first, start + timedelta(hours=1), modality="VR"),
        slot_item("b1", second, start + timedelta(hours=5)),
        slot_item("far", second, start + timedelta(days=5)),  # out of the window
        slot_item("cpts-only", second, start + timedelta(hours=8), visibility=["CPTS"]),  # not for the SAS
    ])  # fmt: skip
    answer = await search(client, sas_key, query(agenda, start))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = answer.json()
    assert conformance.check(bundle) == []  # the guide's profiles, cardinalities, patterns, bindings
    Bundle.model_validate(bundle)  # the R4B models of fhir.resources
    assert (bundle["type"], bundle["total"]) == ("searchset", 3)
    assert [link["relation"] for link in bundle["link"]] == ["self"]
    assert all(e["fullUrl"].endswith(f"{e['resource']['resourceType']}/{e['resource']['id']}") for e in bundle["entry"])
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]}
    assert modes == {
        ("Slot", "match"),
        ("Schedule", "include"),
        ("Practitioner", "include"),
        ("PractitionerRole", "include"),
        ("HealthcareService", "include"),
        ("Organization", "include"),
    }
    assert {s["id"] for s in slots_in(bundle)} == set(ids[:3])
    for slot in slots_in(bundle):
        assert INSTANT.match(slot["start"])
        assert INSTANT.match(slot["end"])
        assert "Z" not in slot["start"]
        assert "CPTS" in {s["code"] for s in slot["meta"]["security"]}
        assert slot["serviceType"][1]["coding"][0]["code"] == "604"
        assert slot["comment"].endswith(f"/console/sas/practitioners/{first['id']}") or slot["comment"].endswith(
            f"/console/sas/practitioners/{second['id']}"
        )
    video = next(s for s in slots_in(bundle) if s["id"] == ids[1])
    assert video["serviceType"][0]["coding"][0]["code"] == "VR"
    practitioners = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Practitioner"]
    assert sorted(p["identifier"][0]["value"] for p in practitioners) == sorted(
        "8" + p["rpps"] for p in agenda.practitioners
    )
    roles = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "PractitionerRole"]
    location = roles[0]["contained"][0]
    assert location["address"] == {"line": ["3 rue de la Paix"], "city": "Nantes", "postalCode": "44000"}
    organization = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Organization")
    assert organization["identifier"][0]["value"] == "1440000123"
    assert organization["telecom"] == [{"system": "phone", "value": "+33240001122"}]


async def test_both_date_forms_and_unprefixed_ids_find_the_same_slots(
    client: httpx.AsyncClient, tenant: Tenant, sas_key: str
) -> None:
    await join_sas(client, tenant)
    agenda = await new_agenda(tenant, practitioners=1)
    start = (datetime.now(UTC) + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    ids = await publish(agenda, [slot_item("x", agenda.practitioners[0], start)])
    paris = (await search(client, sas_key, query(agenda, start - timedelta(hours=1)))).json()
    utc = (await search(client, sas_key, query(agenda, start - timedelta(hours=1), offset=True))).json()
    bare = (await search(client, sas_key, query(agenda, start - timedelta(hours=1), prefixed=False))).json()
    encoded = await search(client, sas_key, query(agenda, start - timedelta(hours=1), offset=True).replace(" ", "%2B"))
    for bundle in (paris, utc, bare, encoded.json()):
        assert [s["id"] for s in slots_in(bundle)] == ids


async def test_what_must_never_show_does_not(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, sas_key: str
) -> None:
    await join_sas(client, tenant)
    mine = await new_agenda(tenant, practitioners=1)
    theirs = await new_agenda(other_tenant, practitioners=1)  # a CPTS that did not join the SAS
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    [held, free] = await publish(mine, [slot_item("h", mine.practitioners[0], start),
                                        slot_item("f", mine.practitioners[0], start + timedelta(hours=1))])  # fmt: skip
    await publish(theirs, [slot_item("t", theirs.practitioners[0], start)])
    request = await client.post("/v1/requests", json={"motif": "M19.05.00"}, headers=tenant.handler)
    hold = await client.post(
        f"/v1/requests/{request.json()['id']}/hold", json={"slot_id": held}, headers=tenant.handler
    )
    assert hold.status_code == 201
    found = (await search(client, sas_key, query(mine, start))).json()
    assert [s["id"] for s in slots_in(found)] == [free]  # the held one is hidden
    invisible = (await search(client, sas_key, query(theirs, start))).json()
    assert (invisible["total"], invisible.get("entry")) == (0, None)  # an empty searchset
    await client.patch("/v1/cpts/current", json={"sas_enabled": False}, headers=tenant.coordinator)
    left = (await search(client, sas_key, query(mine, start))).json()
    assert left["total"] == 0


async def test_every_error_is_an_operation_outcome(
    client: httpx.AsyncClient, tenant: Tenant, agenda: Agenda, sas_key: str
) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    good = query(agenda, start)
    cases = [
        (None, good, 401),
        (tenant.handler, good, 403),  # a staff token
        (agenda.headers, good, 403),  # a practice-software key
        (bearer("snpsas_unknown"), good, 401),
        (bearer(sas_key), good.replace("start=ge", "start=xx"), 400),
        (bearer(sas_key), re.sub(r"&start=le[^&]+", "", good), 400),  # no end of window
        (bearer(sas_key), good + "&colour=blue", 400),
        (bearer(sas_key), good.replace("urn:oid:1.2.250.1.71.4.2.1", "urn:oid:9.9"), 400),
        (bearer(sas_key), good.split("Practitioner.identifier=")[0]
         + "Practitioner.identifier=urn:oid:1.2.250.1.71.4.2.1|" + ",".join(["10000000001"] * 26), 400),
        (bearer(sas_key), good.replace("start=ge", "start=ge2026-13-45T99:00:00&x=").split("&x=")[0], 400),
        (bearer(sas_key), good + "&_include=Slot:foo", 400),
    ]  # fmt: skip
    for headers, text, status in cases:
        answer = await client.get(f"/fhir/Slot?{text}", headers=headers or {})
        assert answer.status_code == status, (text, answer.text)
        assert answer.headers["content-type"].startswith("application/fhir+json")
        assert answer.json()["resourceType"] == "OperationOutcome"
        assert answer.json()["issue"][0]["diagnostics"]
    elsewhere = await client.get("/fhir/Patient", headers=bearer(sas_key))
    assert (elsewhere.status_code, elsewhere.json()["resourceType"]) == (404, "OperationOutcome")


async def test_joining_the_sas_takes_a_finess(client: httpx.AsyncClient, tenant: Tenant) -> None:
    refused = await client.patch("/v1/cpts/current", json={"sas_enabled": True}, headers=tenant.coordinator)
    assert (refused.status_code, refused.json()["code"]) == (422, "finess_required")
    await join_sas(client, tenant)
    assert (await client.get("/v1/cpts/current", headers=tenant.coordinator)).json()["sas_enabled"] is True


async def test_the_capability_statement_says_what_is_supported(client: httpx.AsyncClient, sas_key: str) -> None:
    answer = await client.get("/fhir/metadata", headers=bearer(sas_key))
    assert answer.status_code == 200
    statement = answer.json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    slot = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Slot")
    assert "Slot:schedule" in slot["searchInclude"]


async def test_the_sas_client_is_created_and_rotated_from_the_command_line(
    client: httpx.AsyncClient, database_url: str, agenda: Agenda
) -> None:
    created = await snp_json(database_url, "sas-client", "create", "--name", "SAS national")
    assert created["api_key"].startswith("snpsas_")
    probe = f"/fhir/Slot?{quote('x', safe='')}=1"
    assert (await client.get(probe, headers=bearer(created["api_key"]))).status_code == 400  # in, and refused
    rotated = await snp_json(database_url, "sas-client", "rotate-key", "--id", created["id"])
    assert (await client.get(probe, headers=bearer(created["api_key"]))).status_code == 401
    assert (await client.get(probe, headers=bearer(rotated["api_key"]))).status_code == 400
