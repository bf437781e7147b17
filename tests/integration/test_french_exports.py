"""Exports for people, in French: read back as a person's tools would (Python's csv module with `;`
and decimal commas, openpyxl, a PDF reader) and compared with the JSON. Targets and the envelope's
progress, which the dashboard and the contract-year report show."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import openpyxl
import pypdfium2
import pytest
from pypdf import PdfReader

from tests.browser.harness import SCREENSHOT_DIR
from tests.builders import Clock, Tenant, new_agenda, publish, slot_item
from tests.integration.test_reports import PARIS_OCTOBER, _month_of_activity, at


def french_number(text: str) -> Decimal:
    """What a French spreadsheet reads: "1234,5" (no thousands separator in CSV)."""
    return Decimal(text.replace(",", "."))


def csv_rows(answer: httpx.Response) -> list[list[str]]:
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))


async def get(client: httpx.AsyncClient, tenant: Tenant, path: str, **params: str) -> httpx.Response:
    answer = await client.get(f"/v1/reports/{path}", params=params, headers=tenant.coordinator)
    assert answer.status_code == 200, answer.text
    return answer


async def test_the_french_monthly_csv_reads_back_with_decimal_commas(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await _month_of_activity(client, tenant, clock)
    report = (await get(client, tenant, "monthly", month=PARIS_OCTOBER)).json()
    rows = csv_rows(await get(client, tenant, "monthly", month=PARIS_OCTOBER, format="csv"))
    assert rows[0][0].endswith("Indicateurs du mois — octobre 2026")
    assert rows[0][0].startswith(report["cpts_name"])
    assert rows[1][0] == "Période : du 01/10/2026 au 31/10/2026"
    assert rows[1][1].startswith("Arrêté au ")
    assert rows[3] == ["Rubrique", "Indicateur", "Catégorie", "Valeur"]
    values = {(r[1], r[2]): r[3] for r in rows[4:]}
    assert int(values[("Demandes reçues", "")]) == report["requests_total"]
    assert french_number(values[("Taux de rendez-vous sous 24 h", "")]) == pytest.approx(
        Decimal(str(report["rate_within_24h"]))
    )
    assert "," in values[("Taux de rendez-vous sous 24 h", "")] or report["rate_within_24h"] in (0, 1)
    assert int(values[("Demandes par jour de la semaine", "lundi")]) == report["by_day_of_week"]["monday"]
    assert french_number(values[("Délai jusqu'au rendez-vous (h)", "médiane")]) == pytest.approx(
        Decimal(str(report["delay_to_appointment_hours"]["median"]))
    )


async def test_the_french_activity_export_writes_dates_the_french_way(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await _month_of_activity(client, tenant, clock)
    rows = csv_rows(await get(client, tenant, "activity", month=PARIS_OCTOBER))  # CSV, French, by default
    header = rows[3]
    assert header[:3] == ["Référence de la demande", "Pseudonyme du patient", "Importée"]
    lines = [dict(zip(header, r, strict=True)) for r in rows[4:]]
    assert lines
    assert all(line["Importée"] in ("oui", "non") for line in lines)
    for line in lines:
        day, month, year = line["Date de réception"].split("/")
        assert (len(day), len(month), year) == (2, 2, "2026")
    english = csv_rows(await get(client, tenant, "activity", month=PARIS_OCTOBER, lang="en"))
    assert english[0][0] == "request_ref"  # machines keep the field names and ISO dates


async def test_the_compensation_workbook_is_ready_to_pay_and_reconciles_to_the_cent(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await at(tenant, clock, datetime(2026, 10, 1, 8, 0, tzinfo=UTC))
    agenda = await new_agenda(tenant, practitioners=3)
    items = [
        slot_item(f"s{i}-{p}", agenda.practitioners[p], datetime(2026, 10, 10 + i, 7, 0, tzinfo=UTC), minutes=50)
        for p in range(3)
        for i in range(1 + p)
    ]
    await publish(agenda, items)
    await at(tenant, clock, datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
    statement = (await get(client, tenant, "compensation", month=PARIS_OCTOBER)).json()
    answer = await get(client, tenant, "compensation", month=PARIS_OCTOBER, format="xlsx")
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    assert book.sheetnames[:3] == ["Relevé", "Créneaux", "Enveloppe"]
    assert len(book.sheetnames) == 3 + len(statement["lines"])  # one sheet per professional
    sheet = book["Relevé"]
    assert str(sheet["A1"].value).startswith(statement["cpts_name"])
    header = [c.value for c in sheet[4]]
    assert header[:8] == ["Identifiant du professionnel", "Type d'identifiant", "RPPS / ADELI", "Nom", "Prénom",
                          "Profession", "Lieu d'exercice", "Créneaux comptés"]  # fmt: skip
    lines = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=5, values_only=True)]
    *people, total = lines
    assert total["Identifiant du professionnel"] == "Total"
    by_id = {line["practitioner_id"]: line for line in statement["lines"]}
    for person in people:
        expected = by_id[person["Identifiant du professionnel"]]
        assert person["RPPS / ADELI"] == expected["national_id"]
        assert len(person["RPPS / ADELI"]) == 11  # an RPPS
        assert person["Profession"] == "Médecin"
        assert isinstance(person["Montant à verser (€)"], int | float)  # numbers, not text
        assert Decimal(str(person["Montant à verser (€)"])) == Decimal(expected["paid"])
        assert person["Créneaux comptés"] == len(expected["slots"])
    paid = sum(Decimal(str(p["Montant à verser (€)"])) for p in people)
    assert paid == Decimal(str(total["Montant à verser (€)"])) == Decimal(statement["total_paid"])
    assert sheet.cell(row=5, column=16).number_format == "#,##0.00 €"
    # The treasurer's CSV holds the same, in French numbers.
    rows = csv_rows(await get(client, tenant, "compensation", month=PARIS_OCTOBER, format="csv"))
    assert rows[-1][0] == "Total"
    assert french_number(rows[-1][-1]) == Decimal(statement["total_paid"])


async def test_targets_are_effective_dated_and_judged_in_the_reports(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await _month_of_activity(client, tenant, clock)  # October 2026; the clock is then in November
    path = "/v1/cpts/current"
    october = {"targets": {"values": {"rate_within_24h": 0.8}, "effective_from": "2026-10-01"}}
    retroactive = await client.patch(path, json=october, headers=tenant.coordinator)
    assert (retroactive.status_code, retroactive.json()["code"]) == (422, "retroactive_target")
    for bad in ({"values": {"rate_within_24h": 80}}, {"values": {"happiness": 1}}):
        assert (await client.patch(path, json={"targets": bad}, headers=tenant.coordinator)).status_code == 422
    targets = {"rate_within_24h": 0.8, "participating_professionals": 1, "unresolved_past_deadline": 0}
    changed = await client.patch(path, json={"targets": {"values": targets}}, headers=tenant.coordinator)
    assert changed.status_code == 200, changed.text
    assert changed.json()["targets"] == targets
    assert (await get(client, tenant, "monthly", month=PARIS_OCTOBER)).json()["targets"] == []  # before them
    november = (await get(client, tenant, "monthly", month="2026-11")).json()
    judged = {t["indicator"]: t for t in november["targets"]}
    assert set(judged) == set(targets)
    assert judged["rate_within_24h"]["comparator"] == "min"
    assert judged["unresolved_past_deadline"]["comparator"] == "max"
    assert judged["participating_professionals"]["met"] is (november["participating_professionals"]["total"] >= 1)
    year = (await get(client, tenant, "contract-year", start="2026-01-01")).json()
    assert {t["indicator"] for t in year["targets"]} == set(targets)
    progress = year["envelope_progress"]
    assert Decimal(progress["paid_to_date"]) == sum(Decimal(m["paid"]) for m in progress["months"])
    assert Decimal(progress["remaining"]) == Decimal(progress["envelope"]) - Decimal(progress["paid_to_date"])
    assert 0 < progress["elapsed_share"] < 1


async def test_the_contract_year_pdf_says_what_the_json_says(
    client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await _month_of_activity(client, tenant, clock)
    year: dict[str, Any] = (await get(client, tenant, "contract-year", start="2026-01-01")).json()
    answer = await get(client, tenant, "contract-year", start="2026-01-01", format="pdf")
    assert answer.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(answer.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert year["cpts_name"] in text
    assert "du 01/01/2026 au 31/12/2026" in text
    october = next(m for m in year["months"] if m["month"] == "2026-10")
    cells = [line.strip() for line in text.splitlines()]  # the reader gives a table cell a line
    at_october = cells.index("2026-10")
    assert cells[at_october + 1 : at_october + 3] == [str(october["requests_total"]), str(october["booked"])]
    assert reader.metadata is not None
    assert reader.metadata.title == f"Rapport d'année contractuelle — {year['cpts_name']}"
    # A page as people see it (looked at when this test was written: docs/screenshots/).
    page = pypdfium2.PdfDocument(answer.content)[0]
    image = page.render(scale=1.2).to_pil()
    assert image.width > 800
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    image.save(SCREENSHOT_DIR / "20-rapport-annuel-pdf.png")


async def test_the_openapi_document_describes_the_files_it_answers(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path in ("/v1/reports/monthly", "/v1/reports/compensation", "/v1/reports/activity"):
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        assert content["text/csv"]["schema"] == {"type": "string"}, path
        xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        assert content[xlsx]["schema"] == {"type": "string", "format": "binary"}, path
    year = document["paths"]["/v1/reports/contract-year"]["get"]["responses"]["200"]["content"]
    assert year["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    # File-only operations: bytes first, for clients that read one answer type per operation.
    for path in ("monthly", "activity", "compensation", "contract-year"):
        content = document["paths"][f"/v1/reports/{path}/file"]["get"]["responses"]["200"]["content"]
        assert next(iter(content)) == "application/octet-stream", path
