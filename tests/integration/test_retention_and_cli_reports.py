from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openpyxl

from tests.builders import Clock, Tenant, new_agenda, open_request, publish, slot_item
from tests.integration.test_cli import snp


async def test_purge_erases_identities_and_keeps_the_indicators(
    client: httpx.AsyncClient, tenant: Tenant, database_url: str, clock: Clock
) -> None:
    clock.now = datetime(2026, 10, 14, 8, 0, tzinfo=UTC)
    await tenant.relogin()
    patient = {
        "family_name": "Oubli",
        "given_name": "Droit",
        "birth_date": "1950-03-03",
        "sex": "F",
        "phone": "0611223344",
        "commune_insee": "44109",
        "address": "4 allée des Tilleuls",
        "email": "droit.oubli@example.org",
        "identity_status": "QUAL",
        "ins": "269054958815780",
    }
    request = await open_request(tenant, patient=patient, note="rappeler Mme Oubli")
    path = f"/v1/requests/{request['id']}"
    note = await client.post(f"{path}/notes", json={"text": "Mme Oubli au 06 11 22 33 44"}, headers=tenant.handler)
    assert note.status_code == 201
    due = (clock.now + timedelta(hours=1)).isoformat()
    callback = await client.post(
        f"{path}/callbacks", json={"due_at": due, "reason": "rappeler Mme Oubli"}, headers=tenant.handler
    )
    assert callback.status_code == 201
    await client.post(
        f"/v1/requests/{request['id']}/orientations",
        json={"outcome": "advice", "note": "Mme Oubli rassurée"},
        headers=tenant.handler,
    )
    clock.now = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
    await tenant.relogin()
    before = (await client.get("/v1/reports/monthly", params={"month": "2026-10"}, headers=tenant.coordinator)).json()
    pseudonyms = [
        line["patient_pseudonym"]
        for line in (
            await client.get(
                "/v1/reports/activity", params={"month": "2026-10", "format": "json"}, headers=tenant.coordinator
            )
        ).json()
    ]

    code, out, err = await snp(database_url, "purge", "--before", "2026-10-15", "--cpts", str(tenant.cpts_id), "--json")
    assert code == 0, err
    assert json.loads(out)["requests"] == 1

    detail = (await client.get(f"/v1/requests/{request['id']}", headers=tenant.coordinator)).json()
    assert detail["identity_purged"] is True
    assert detail["patient"] == {
        "family_name": None,
        "given_name": None,
        "birth_date": None,
        "sex": "F",
        "phone": None,
        "commune_insee": "44109",
        "address": None,
        "email": None,
        "identity_status": "PROV",
        "ins": None,
        "age_band": "75+",
    }
    assert (detail["note"], detail["caller"]["phone"]) == (None, None)
    assert [e["note"] for e in detail["events"]] == [None]
    assert [n["text"] for n in detail["notes"]] == [None]
    assert [c["reason"] for c in detail["callbacks"]] == [None]
    # The search keys went with the identity: neither the phone nor the name finds the request.
    for typed in ("06 11 22 33 44", "Oubli"):
        found = await client.get("/v1/requests", params={"q": typed}, headers=tenant.handler)
        assert (found.status_code, found.json()["items"]) == (200, [])
    after = (await client.get("/v1/reports/monthly", params={"month": "2026-10"}, headers=tenant.coordinator)).json()
    assert {k: v for k, v in after.items() if k != "cutoff"} == {k: v for k, v in before.items() if k != "cutoff"}
    again = (
        await client.get(
            "/v1/reports/activity", params={"month": "2026-10", "format": "json"}, headers=tenant.coordinator
        )
    ).json()
    assert [line["patient_pseudonym"] for line in again] == pseudonyms
    code, out, _ = await snp(database_url, "purge", "--before", "2026-10-15", "--cpts", str(tenant.cpts_id), "--json")
    assert json.loads(out)["requests"] == 0


async def test_purge_erases_the_free_text_of_a_cancelled_booking(
    client: httpx.AsyncClient, tenant: Tenant, database_url: str, clock: Clock
) -> None:
    clock.now = datetime(2026, 10, 14, 8, 0, tzinfo=UTC)
    await tenant.relogin()
    agenda = await new_agenda(tenant, practitioners=1)
    [slot_id] = await publish(agenda, [slot_item("p", agenda.practitioners[0], clock.now + timedelta(days=1))])
    request = await open_request(tenant)
    booking = (
        await client.post(f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler)
    ).json()
    reason = "la patiente rappellera au 06 99 88 77 66"
    await client.post(
        f"/v1/bookings/{booking['booking_id']}/cancel",
        json={"reason": reason, "cancelled_by": "patient"},
        headers=tenant.handler,
    )
    feed = (await client.get("/v1/bookings/feed", headers=agenda.headers)).json()["items"]
    assert feed[-1]["booking"]["cancel_reason"] == reason
    clock.now = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
    await tenant.relogin()
    code, _, err = await snp(database_url, "purge", "--before", "2026-10-15", "--cpts", str(tenant.cpts_id))
    assert code == 0, err
    detail = (await client.get(f"/v1/requests/{request['id']}", headers=tenant.coordinator)).json()
    assert [b["cancel_reason"] for b in detail["bookings"]] == [None]
    assert "06 99" not in json.dumps(detail)
    feed = (await client.get("/v1/bookings/feed", headers=agenda.headers)).json()["items"]
    assert "06 99" not in json.dumps(feed)


async def test_reports_from_the_command_line(
    client: httpx.AsyncClient, tenant: Tenant, database_url: str, clock: Clock, tmp_path: Path
) -> None:
    clock.now = datetime(2026, 10, 14, 8, 0, tzinfo=UTC)
    await tenant.relogin()
    await open_request(tenant)
    await open_request(tenant, channel="pharmacy")
    cpts = str(tenant.cpts_id)

    code, out, err = await snp(database_url, "report", "monthly", "--cpts", cpts, "--month", "2026-10")
    assert code == 0, err
    assert json.loads(out)["requests_total"] == 2
    target = tmp_path / "indicators.xlsx"
    code, _, err = await snp(
        database_url,
        "report",
        "monthly",
        "--cpts",
        cpts,
        "--month",
        "2026-10",
        "--format",
        "xlsx",
        "--output",
        str(target),
    )
    assert code == 0, err
    assert openpyxl.load_workbook(target).sheetnames[0] == "Rapport"  # French by default
    code, out, err = await snp(database_url, "report", "activity", "--cpts", cpts, "--month", "2026-10", "--lang", "en")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out.removeprefix("\ufeff")), delimiter=";"))
    assert sorted(r["channel"] for r in rows) == ["pharmacy", "phone"]
    code, out, err = await snp(
        database_url, "report", "compensation", "--cpts", cpts, "--month", "2026-10", "--format", "csv"
    )
    assert code == 0, err
    assert "Relevé d'indemnisation des professionnels" in out.splitlines()[0]
    assert "RPPS / ADELI" in out
    code, _, err = await snp(
        database_url, "report", "monthly", "--cpts", cpts, "--month", "2026-10", "--format", "xlsx"
    )
    assert code != 0
    assert "--output" in err
    code, _, err = await snp(database_url, "report", "monthly", "--cpts", cpts, "--month", "10-2026")
    assert code != 0
    assert "YYYY-MM" in err
