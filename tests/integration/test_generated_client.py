"""A client generated from the committed OpenAPI document with openapi-python-client (one answer
type per operation) downloads every export: the activity's default CSV, and the XLSX, CSV and PDF
files of the reports' file operations."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import FastAPI

from tests.builders import Clock, Tenant
from tests.integration.test_reports import PARIS_OCTOBER, _month_of_activity

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "snp_orientation_and_slot_booking_service_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    target = tmp_path_factory.mktemp("client")
    binary = Path(sys.executable).with_name("openapi-python-client")
    run = subprocess.run(  # noqa: S603 - the venv's own tool on the committed document
        [str(binary), "generate", "--path", str(ROOT / "openapi" / "openapi.json"), "--meta", "none"],
        cwd=target, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr + run.stdout
    sys.path.insert(0, str(target))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(target))


def api(generated: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.reports.{name}")


async def test_a_generated_client_downloads_every_export(
    generated: ModuleType, app: FastAPI, client: httpx.AsyncClient, tenant: Tenant, clock: Clock
) -> None:
    await _month_of_activity(client, tenant, clock)
    token = tenant.coordinator["Authorization"].removeprefix("Bearer ")
    generated_client = generated.AuthenticatedClient(base_url="http://snp.test", token=token)
    generated_client.set_async_httpx_client(
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://snp.test",
            headers={"Authorization": f"Bearer {token}"},
        )
    )
    async with generated_client:
        activity = await api(generated, "reports_activity").asyncio_detailed(
            client=generated_client, month=PARIS_OCTOBER
        )
        assert activity.status_code == 200
        assert "Référence de la demande" in activity.content.decode("utf-8-sig")  # the default: CSV, in French
        text = await api(generated, "reports_activity").asyncio(client=generated_client, month=PARIS_OCTOBER)
        assert "Référence de la demande" in text  # parsed as the text it is
        monthly = await api(generated, "reports_monthly_file").asyncio(client=generated_client, month=PARIS_OCTOBER)
        book = openpyxl.load_workbook(io.BytesIO(monthly.payload.read()))
        assert book.sheetnames[0] == "Rapport"
        statement = await api(generated, "reports_compensation_file").asyncio(
            client=generated_client, month=PARIS_OCTOBER, format_=generated.models.ReportsCompensationFileFormat.CSV
        )
        assert statement.payload.read().decode("utf-8-sig").splitlines()[3].startswith("Identifiant du professionnel")
        year = await api(generated, "reports_contract_year_file").asyncio(
            client=generated_client, start=date(2026, 1, 1), format_=generated.models.ReportsContractYearFileFormat.PDF
        )
        assert year.payload.read().startswith(b"%PDF")
        typed = await api(generated, "reports_monthly").asyncio(client=generated_client, month=PARIS_OCTOBER)
        assert typed.requests_total == 7  # the JSON operation stays typed
