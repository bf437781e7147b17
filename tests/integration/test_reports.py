from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest

from tests.builders import Agenda, Clock, Tenant, new_agenda, open_request, publish, slot_item

PARIS_OCTOBER = "2026-10"


async def at(tenant: Tenant, clock: Clock, when: datetime) -> None:
    clock.now = when
    await tenant.relogin()


async def monthly(client: httpx.AsyncClient, tenant: Tenant, month: str, **params: str) -> httpx.Response:
    return await client.get("/v1/reports/monthly", params={"month": month, **params}, headers=tenant.coordinator)


async def book(client: httpx.AsyncClient, tenant: Tenant, request: dict[str, Any], slot_id: str) -> None:
    response = await client.post(
        f"/v1/requests/{request['id']}/book", json={"slot_id": slot_id}, headers=tenant.handler
    )
    assert response.status_code == 201, response.text


async def orient(client: httpx.AsyncClient, tenant: Tenant, request: dict[str, Any], outcome: str) -> None:
    response = await client.post(
        f"/v1/requests/{request['id']}/orientations", json={"outcome": outcome}, headers=tenant.handler
    )
    assert response.status_code == 201, response.text


async def test_a_request_at_half_past_midnight_on_the_first_belongs_to_the_new_month(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await at(tenant, clock, datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
    await open_request(tenant, received_at="2026-11-01T00:30:00+01:00")  # 23:30 UTC on 31 October
    november = (await monthly(client, tenant, "2026-11")).json()
    october = (await monthly(client, tenant, "2026-10")).json()
    assert (november["requests_total"], october["requests_total"]) == (1, 0)
    assert november["by_hour"]["00"] == 1
    assert november["by_day_of_week"]["sunday"] == 1
    assert november["period_start"] == "2026-11-01T00:00:00+01:00"
    assert november["provisional"] is True
    assert october["provisional"] is False


@pytest.mark.parametrize(
    ("received", "starts", "within"),
    [
        # Autumn: clocks go back at 03:00 on 25 October. 09:30 the next morning is 24 h 30 later.
        ("2026-10-24T10:00:00+02:00", ["2026-10-25T08:59:00+01:00", "2026-10-25T09:30:00+01:00"], 1),
        # Spring: clocks go forward at 02:00 on 29 March. 10:30 the next morning is only 23 h 30 later.
        ("2026-03-28T10:00:00+01:00", ["2026-03-29T10:30:00+02:00", "2026-03-29T11:30:00+02:00"], 1),
    ],
)
async def test_the_24_hour_measure_is_elapsed_time_across_clock_changes(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock, received: str, starts: list[str], within: int
) -> None:
    received_at = datetime.fromisoformat(received)
    await at(tenant, clock, received_at.astimezone(UTC))
    agenda = await new_agenda(tenant, practitioners=2)
    slots = await publish(
        agenda,
        [slot_item(f"dst-{i}", agenda.practitioners[i], datetime.fromisoformat(s)) for i, s in enumerate(starts)],
    )
    for slot_id in slots:
        await book(client, tenant, await open_request(tenant), slot_id)
    await at(tenant, clock, received_at.astimezone(UTC) + timedelta(days=40))
    answer = await monthly(client, tenant, received[:7])
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["booked"] == 2
    assert report["booked_within_24h"] == within
    assert report["booked_within_48h"] == 2
    assert report["rate_within_24h"] == within / 2
    hours = sorted([23.98, 24.5] if received.startswith("2026-10") else [23.5, 24.5])
    assert report["delay_to_appointment_hours"]["median"] == pytest.approx(sum(hours) / 2, abs=0.01)


async def _month_of_activity(client: httpx.AsyncClient, tenant: Tenant, clock: Clock) -> Agenda:
    """October 2026: bookings within and after 24 h, an orientation, no solution, an unresolved
    request, a red-flag transfer and a booking cancelled by the patient (its request reopened and
    was never booked again: unresolved once its deadline passed)."""
    t0 = datetime(2026, 10, 12, 7, 0, tzinfo=UTC)
    await at(tenant, clock, t0)
    agenda = await new_agenda(tenant, practitioners=3)
    doctor, other, third = agenda.practitioners
    slots = await publish(
        agenda,
        [
            slot_item("soon", doctor, t0 + timedelta(hours=5)),
            slot_item("tomorrow", other, t0 + timedelta(hours=30)),
            slot_item("video", third, t0 + timedelta(hours=3), modality="VR"),
            slot_item("spare", doctor, t0 + timedelta(hours=50)),
        ],
    )
    patient = {
        "family_name": "Secretname",
        "given_name": "Unique",
        "birth_date": "1932-02-29",
        "phone": "0699887766",
        "commune_insee": "44143",
        "sex": "M",
    }
    await book(client, tenant, await open_request(tenant, patient=patient), slots[0])
    await book(client, tenant, await open_request(tenant, channel="sas", via_sas=True), slots[1])
    cancelled = await open_request(tenant)
    await book(client, tenant, cancelled, slots[2])
    detail = (await client.get(f"/v1/requests/{cancelled['id']}", headers=tenant.handler)).json()
    await client.post(
        f"/v1/bookings/{detail['bookings'][0]['booking_id']}/cancel",
        json={"reason": "better", "cancelled_by": "patient"},
        headers=tenant.handler,
    )
    await orient(client, tenant, await open_request(tenant), "advice")
    await orient(client, tenant, await open_request(tenant, motif="M17.03.00"), "transfer_15")
    clock.advance(minutes=40)
    await orient(client, tenant, await open_request(tenant), "no_solution")
    await open_request(tenant)  # never resolved
    await at(tenant, clock, datetime(2026, 11, 10, 9, 0, tzinfo=UTC))
    return agenda


async def test_the_monthly_indicators_are_recomputable_from_the_activity_export(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await _month_of_activity(client, tenant, clock)
    report = (await monthly(client, tenant, PARIS_OCTOBER)).json()
    exported = await client.get(
        "/v1/reports/activity",
        params={"month": PARIS_OCTOBER, "format": "csv", "lang": "en"},
        headers=tenant.coordinator,
    )
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    text = exported.content.decode("utf-8")
    assert text.startswith("\ufeff")
    for secret in ("Secretname", "Unique", "0699887766", "1932-02-29"):
        assert secret not in text
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";"))

    # Recomputed from the export alone, independently of the service's code.
    outcomes = [r["outcome"] for r in rows]
    booked = [r for r in rows if r["outcome"] == "booked"]
    needing = sum(1 for o in outcomes if o in ("booked", "no_solution", "unresolved_past_deadline"))
    within_24 = sum(1 for r in booked if float(r["delay_to_appointment_hours"]) <= 24)
    assert report["requests_total"] == len(rows) == 7
    for key in ("booked", "advice", "transfer_15", "no_solution", "unresolved_past_deadline", "open"):
        assert report[key] == outcomes.count(key), key
    assert report["needing_consultation"] == needing == 5
    # The cancelled appointment (3 h after reception) no longer counts as booked within 24 h.
    assert (report["booked"], report["unresolved_past_deadline"]) == (2, 2)
    assert report["booked_within_24h"] == within_24 == 1
    assert report["rate_within_24h"] == round(within_24 / needing, 4)
    assert report["via_sas"] == sum(1 for r in rows if r["via_sas"] == "true") == 1
    assert (
        report["cancelled_by_patient"] == sum(1 for r in rows if r["appointment_status"] == "cancelled_by_patient") == 1
    )
    assert report["by_commune"]["44143"] == sum(1 for r in rows if r["patient_commune"] == "44143") == 1
    assert report["by_age_band"]["75+"] == 1
    assert len({r["patient_pseudonym"] for r in rows}) == 2  # the default test patient, and one other
    assert report["slots_published"]["count"] == 4
    assert report["slots_booked"] == 2
    assert report["fill_rate"] == 0.5
    assert report["handlers"][0]["requests_handled"] == 5  # the reopened request has no final orientation


async def test_the_pseudonym_is_stable_across_months_and_not_the_identity(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    patient = {"family_name": "Lefèvre-Dupont", "given_name": "Élise", "birth_date": "1990-01-01"}
    await at(tenant, clock, datetime(2026, 9, 30, 12, 0, tzinfo=UTC))
    await open_request(tenant, patient=patient)
    await at(tenant, clock, datetime(2026, 10, 2, 12, 0, tzinfo=UTC))
    await open_request(tenant, patient={**patient, "family_name": "LEFEVRE DUPONT", "given_name": "elise"})
    await open_request(tenant, patient={**patient, "given_name": "Marie"})
    refs: dict[str, list[str]] = {}
    for month in ("2026-09", "2026-10"):
        exported = await client.get(
            "/v1/reports/activity", params={"month": month, "format": "json"}, headers=tenant.coordinator
        )
        refs[month] = [line["patient_pseudonym"] for line in exported.json()]
    # The same patient spelt differently a month later gets the same pseudonym; another does not.
    assert refs["2026-09"][0] in refs["2026-10"]
    assert len(set(refs["2026-10"])) == 2
    assert len(refs["2026-09"][0]) == 32
    assert "LEFEVRE" not in str(refs)


async def test_the_xlsx_holds_the_same_figures_as_the_json(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await _month_of_activity(client, tenant, clock)
    report = (await monthly(client, tenant, PARIS_OCTOBER)).json()
    answer = await monthly(client, tenant, PARIS_OCTOBER, format="xlsx", lang="en")
    assert answer.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    assert book.sheetnames == ["Report", "Demand", "Response", "Appointments", "Supply", "Handlers"]
    figures: dict[tuple[str, str], Any] = {}
    for name in ("Demand", "Response", "Appointments", "Supply"):
        sheet = book[name]
        assert sheet.freeze_panes == "A2"
        assert [c.value for c in sheet[1]] == ["indicator", "category", "value"]
        assert sheet.column_dimensions["A"].width > 10
        for indicator, category, value in sheet.iter_rows(min_row=2, values_only=True):
            figures[(indicator, category or "")] = value
    assert figures[("requests_total", "")] == report["requests_total"]
    assert isinstance(figures[("requests_total", "")], int | float)
    assert figures[("by_channel", "sas")] == report["by_channel"]["sas"]
    assert figures[("rate_within_24h", "")] == pytest.approx(report["rate_within_24h"])
    assert figures[("delay_to_appointment_hours", "median")] == pytest.approx(
        report["delay_to_appointment_hours"]["median"]
    )
    assert figures[("slots_published", "hours")] == pytest.approx(report["slots_published"]["hours"])
    rate_cell = next(row[2] for row in book["Response"].iter_rows(min_row=2) if row[0].value == "rate_within_24h")
    assert rate_cell.number_format == "0.0%"
    cutoff = next(row[1].value for row in book["Report"].iter_rows(min_row=2) if row[0].value == "cutoff")
    assert cutoff == report["cutoff"]


async def test_the_csv_round_trips(client: httpx.AsyncClient, tenant: Tenant, clock: Clock) -> None:
    await _month_of_activity(client, tenant, clock)
    report = (await monthly(client, tenant, PARIS_OCTOBER)).json()
    answer = await monthly(client, tenant, PARIS_OCTOBER, format="csv", lang="en")
    assert answer.headers["content-disposition"] == 'attachment; filename="snp-indicators-2026-10.csv"'
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["section", "indicator", "category", "value"]
    values = {(r[1], r[2]): r[3] for r in rows[1:]}
    assert values[("requests_total", "")] == str(report["requests_total"])
    assert values[("by_day_of_week", "monday")] == str(report["by_day_of_week"]["monday"])
    assert values[("rate_within_24h", "")] == str(report["rate_within_24h"])
    assert values[("fill_rate", "")] == str(report["fill_rate"])


async def test_the_activity_export_in_xlsx_stores_dates_and_numbers(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await _month_of_activity(client, tenant, clock)
    answer = await client.get(
        "/v1/reports/activity",
        params={"month": PARIS_OCTOBER, "format": "xlsx", "lang": "en"},
        headers=tenant.coordinator,
    )
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content))["Activity"]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert len(rows) == 7
    assert isinstance(rows[0]["received_at"], datetime)
    # Excel has no timezones: the local (Paris, summer) wall-clock time is stored.
    received = datetime(2026, 10, 12, 7, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    assert rows[0]["received_at"] == received.replace(tzinfo=None)  # 09:00
    assert isinstance(rows[0]["received_hour"], int)
    assert sheet.freeze_panes == "A2"


async def test_compensation_scales_pro_rata_to_exhaust_the_envelope_to_the_cent(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await at(tenant, clock, datetime(2026, 10, 5, 8, 0, tzinfo=UTC))
    patch = await client.patch(
        "/v1/cpts/current",
        json={"compensation": {"hourly_rate_unfilled": "45.00", "annual_envelope": "100.00"}},
        headers=tenant.coordinator,
    )
    assert patch.status_code == 200, patch.text
    assert patch.json()["compensation"]["annual_envelope"] == "100.00"
    agenda = await new_agenda(tenant, practitioners=3)
    start = datetime(2026, 10, 20, 8, 0, tzinfo=UTC)
    await publish(agenda, [slot_item(f"c{i}", p, start, minutes=60) for i, p in enumerate(agenda.practitioners)])
    await at(tenant, clock, datetime(2026, 11, 10, 9, 0, tzinfo=UTC))
    statement = (
        await client.get("/v1/reports/compensation", params={"month": PARIS_OCTOBER}, headers=tenant.coordinator)
    ).json()
    assert statement["provisional"] is False
    assert statement["envelope"] == {"annual": "100.00", "remaining_before": "100.00", "paid_this_month": "100.00"}
    assert statement["total_gross"] == "135.00"  # 3 x 1 h x 45 EUR
    assert statement["total_paid"] == "100.00"
    assert sorted(line["paid"] for line in statement["lines"]) == ["33.33", "33.33", "33.34"]
    assert statement["scale"] == "0.740741"
    for line in statement["lines"]:
        assert line["gross"] == "45.00"
        assert line["hours_unfilled"] == 1.0
        assert [s["paid"] for s in line["slots"]] == [line["paid"]]
    november = (
        await client.get("/v1/reports/compensation", params={"month": "2026-11"}, headers=tenant.coordinator)
    ).json()
    assert november["envelope"]["remaining_before"] == "0.00"
    assert november["provisional"] is True


async def test_a_rate_change_leaves_earlier_months_unchanged(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await at(tenant, clock, datetime(2026, 10, 5, 8, 0, tzinfo=UTC))
    agenda = await new_agenda(tenant, practitioners=1)
    await publish(
        agenda, [slot_item("oct", agenda.practitioners[0], datetime(2026, 10, 20, 8, 0, tzinfo=UTC), minutes=60)]
    )
    await at(tenant, clock, datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    before = (
        await client.get("/v1/reports/compensation", params={"month": PARIS_OCTOBER}, headers=tenant.coordinator)
    ).json()
    assert before["total_gross"] == "45.00"  # the default rate

    retroactive = await client.patch(
        "/v1/cpts/current",
        json={"compensation": {"hourly_rate_unfilled": "60.00", "effective_from": "2026-10-15"}},
        headers=tenant.coordinator,
    )
    assert (retroactive.status_code, retroactive.json()["code"]) == (422, "retroactive_rate")
    changed = await client.patch(
        "/v1/cpts/current", json={"compensation": {"hourly_rate_unfilled": "60.00"}}, headers=tenant.coordinator
    )
    assert changed.json()["compensation"]["hourly_rate_unfilled"] == "60.00"
    assert changed.json()["compensation"]["effective_from"] == "2026-11-01"
    await publish(
        agenda, [slot_item("nov", agenda.practitioners[0], datetime(2026, 11, 20, 8, 0, tzinfo=UTC), minutes=60)]
    )

    after = (
        await client.get("/v1/reports/compensation", params={"month": PARIS_OCTOBER}, headers=tenant.coordinator)
    ).json()
    assert after["lines"] == before["lines"]
    assert after["total_paid"] == "45.00"
    november = (
        await client.get("/v1/reports/compensation", params={"month": "2026-11"}, headers=tenant.coordinator)
    ).json()
    assert november["total_gross"] == "60.00"
    assert november["envelope"]["remaining_before"] == "11955.00"  # 12 000 EUR (size 2) minus October's 45


async def test_compensation_counts_only_slots_published_with_notice(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await at(tenant, clock, datetime(2026, 10, 19, 9, 0, tzinfo=UTC))
    agenda = await new_agenda(tenant, practitioners=1)
    doctor = agenda.practitioners[0]
    ids = await publish(
        agenda,
        [
            slot_item("early", doctor, datetime(2026, 10, 21, 8, 0, tzinfo=UTC), minutes=30),
            slot_item("late", doctor, datetime(2026, 10, 19, 20, 0, tzinfo=UTC), minutes=30),  # 11 h notice
            slot_item("gone", doctor, datetime(2026, 10, 22, 8, 0, tzinfo=UTC), minutes=30),
        ],
    )
    await client.delete("/v1/slots/gone", headers=agenda.headers)
    await at(tenant, clock, datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
    statement = (
        await client.get("/v1/reports/compensation", params={"month": PARIS_OCTOBER}, headers=tenant.coordinator)
    ).json()
    [line] = statement["lines"]
    assert [s["slot_id"] for s in line["slots"]] == [ids[0]]
    assert line["gross"] == "22.50"
    csv_answer = await client.get(
        "/v1/reports/compensation",
        params={"month": PARIS_OCTOBER, "format": "csv", "lang": "en"},
        headers=tenant.coordinator,
    )
    rows = list(csv.reader(io.StringIO(csv_answer.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[-1][0] == "total"
    assert rows[-1][-1] == "22.50"
    xlsx = await client.get(
        "/v1/reports/compensation",
        params={"month": PARIS_OCTOBER, "format": "xlsx", "lang": "en"},
        headers=tenant.coordinator,
    )
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["Statement", "Slots", "Envelope"]
    assert book["Statement"]["P2"].value == pytest.approx(22.5)  # paid
    assert book["Statement"]["C2"].value == line["national_id"]


async def test_an_import_replayed_twice_counts_once(client: httpx.AsyncClient, tenant: Tenant, clock: Clock) -> None:
    await at(tenant, clock, datetime(2026, 11, 10, 9, 0, tzinfo=UTC))
    doctor = await tenant.add_practitioner()
    records = [
        {
            "external_ref": "xls-0001",
            "received_at": "2026-10-03T09:15:00+02:00",
            "channel": "phone",
            "patient": {"birth_date": "2015-06-01", "sex": "F", "commune_insee": "44109"},
            "motif": "M19.05.00",
            "outcome": "booked",
            "oriented_at": "2026-10-03T09:20:00+02:00",
            "appointment": {
                "practitioner_id": doctor["id"],
                "start": "2026-10-03T17:00:00+02:00",
                "end": "2026-10-03T17:20:00+02:00",
                "outcome": "fulfilled",
            },
        },
        {
            "external_ref": "xls-0002",
            "received_at": "2026-10-04T11:00:00+02:00",
            "motif": "M19.04.00",
            "outcome": "advice",
            "oriented_at": "2026-10-04T11:05:00+02:00",
        },
        {"external_ref": "xls-0003", "received_at": "2026-10-05T11:00:00+02:00", "motif": "M19.04.00"},
    ]
    first = await client.post("/v1/imports/activity", json={"records": records}, headers=tenant.coordinator)
    assert first.status_code == 200, first.text
    assert [r["outcome"] for r in first.json()["results"]] == ["created"] * 3
    second = await client.post("/v1/imports/activity", json={"records": records}, headers=tenant.coordinator)
    assert [r["outcome"] for r in second.json()["results"]] == ["unchanged"] * 3
    assert [r["request_id"] for r in second.json()["results"]] == [r["request_id"] for r in first.json()["results"]]
    report = (await monthly(client, tenant, PARIS_OCTOBER)).json()
    assert (report["requests_total"], report["imported"]) == (3, 3)
    assert (report["booked"], report["advice"], report["unresolved_past_deadline"]) == (1, 1, 1)
    assert (report["booked_within_24h"], report["fulfilled"]) == (1, 1)
    assert report["by_age_band"]["3-15"] == 1
    detail = (
        await client.get(f"/v1/requests/{first.json()['results'][0]['request_id']}", headers=tenant.coordinator)
    ).json()
    assert (detail["imported"], detail["status"], [e["kind"] for e in detail["events"]]) == (True, "booked", ["booked"])


async def test_import_validates_like_live_data(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, clock: Clock
) -> None:
    await at(tenant, clock, datetime(2026, 11, 10, 9, 0, tzinfo=UTC))
    foreign = await other_tenant.add_practitioner()
    good = {"external_ref": "ok", "received_at": "2026-10-03T09:15:00+02:00", "motif": "M19.04.00"}
    records = [
        good,
        {**good, "external_ref": "naive", "received_at": "2026-10-03T09:15:00"},
        {**good, "external_ref": "motif", "motif": "M00.00.00"},
        {**good, "external_ref": "before", "outcome": "advice", "oriented_at": "2026-10-03T09:00:00+02:00"},
        {**good, "external_ref": "future", "received_at": "2026-12-03T09:15:00+01:00"},
        {
            **good,
            "external_ref": "foreign",
            "outcome": "booked",
            "oriented_at": "2026-10-03T09:20:00+02:00",
            "appointment": {
                "practitioner_id": foreign["id"],
                "start": "2026-10-03T17:00:00+02:00",
                "end": "2026-10-03T17:20:00+02:00",
            },
        },
        {
            **good,
            "external_ref": "early-appt",
            "outcome": "booked",
            "oriented_at": "2026-10-03T09:20:00+02:00",
            "appointment": {"start": "2026-10-02T17:00:00+02:00", "end": "2026-10-02T17:20:00+02:00"},
        },
        good,  # twice in one import
        {**good, "external_ref": "unknown-field", "patient": {"family_name": "No"}},
    ]
    answer = await client.post("/v1/imports/activity", json={"records": records}, headers=tenant.coordinator)
    codes = [(r["outcome"], (r["problem"] or {}).get("code")) for r in answer.json()["results"]]
    assert codes == [
        ("created", None),
        ("rejected", "validation_error"),
        ("rejected", "validation_error"),
        ("rejected", "validation_error"),
        ("rejected", "received_in_future"),
        ("rejected", "practitioner_not_found"),
        ("rejected", "validation_error"),
        ("rejected", "duplicate_external_ref"),
        ("rejected", "validation_error"),
    ]
    changed = await client.post(
        "/v1/imports/activity", json={"records": [{**good, "motif": "M19.05.00"}]}, headers=tenant.coordinator
    )
    assert changed.json()["results"][0]["problem"]["code"] == "external_ref_exists"
    assert (await monthly(client, tenant, PARIS_OCTOBER)).json()["requests_total"] == 1


async def test_the_contract_year_report(client: httpx.AsyncClient, tenant: Tenant, clock: Clock) -> None:
    await _month_of_activity(client, tenant, clock)
    answer = await client.get("/v1/reports/contract-year", params={"start": "2026-01-01"}, headers=tenant.coordinator)
    assert answer.status_code == 200, answer.text
    year = answer.json()
    assert [m["month"] for m in year["months"]] == [f"2026-{m:02d}" for m in range(1, 13)]
    october = next(m for m in year["months"] if m["month"] == "2026-10")
    assert (october["requests_total"], october["booked"]) == (7, 2)
    assert year["total"]["requests_total"] == 7
    assert year["size"] == 2
    assert year["envelopes"]["access_to_care.snp_professional_compensation"] == "12000.00"
    assert year["envelopes"]["access_to_care.snp_orientation_earmarked"] == "45000.00"
    assert year["compensation"]["envelope"] == "12000.00"
    wrong = await client.get("/v1/reports/contract-year", params={"start": "2026-02-01"}, headers=tenant.coordinator)
    assert (wrong.status_code, wrong.json()["code"]) == (422, "not_a_contract_year")
    xlsx = await client.get(
        "/v1/reports/contract-year",
        params={"start": "2026-01-01", "format": "xlsx", "lang": "en"},
        headers=tenant.coordinator,
    )
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["Months", "Envelopes"]
    assert book["Months"].max_row == 14  # header, 12 months, total


async def test_reports_are_for_coordinators_of_the_cpts(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, clock: Clock
) -> None:
    await _month_of_activity(client, tenant, clock)
    agenda = await new_agenda(tenant, practitioners=1)
    for path in ("monthly", "activity", "compensation"):
        for headers in (tenant.handler, agenda.headers):
            answer = await client.get(f"/v1/reports/{path}", params={"month": PARIS_OCTOBER}, headers=headers)
            assert answer.status_code == 403, path
    await other_tenant.relogin()
    theirs = (await monthly(client, other_tenant, PARIS_OCTOBER)).json()
    assert theirs["requests_total"] == 0
    for month in ("2026-13", "0000-01", "9999-12"):
        bad = await monthly(client, tenant, month)
        assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")
    far = await client.get("/v1/reports/contract-year", params={"start": "9999-01-01"}, headers=tenant.coordinator)
    assert far.status_code == 422


async def test_a_request_the_15_sent_back_counts_as_open_not_as_a_transfer(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await at(tenant, clock, datetime(2026, 10, 5, 9, 0, tzinfo=UTC))
    sent_back = await open_request(tenant, motif="M17.03.00")  # chest pain: transfer_15
    await orient(client, tenant, sent_back, "transfer_15")
    lifted = await client.post(f"/v1/requests/{sent_back['id']}/override", json={}, headers=tenant.as_role("regulator"))
    assert lifted.status_code == 201
    stays = await open_request(tenant, motif="M17.03.00")
    await orient(client, tenant, stays, "transfer_15")
    report = (await monthly(client, tenant, "2026-10")).json()
    assert (report["transfer_15"], report["open"]) == (1, 1)
    assert report["by_outcome"]["transfer_15"] == 1
