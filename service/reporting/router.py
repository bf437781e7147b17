from __future__ import annotations

import io
import json
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from typing import IO, Annotated, Any, Literal

from fastapi import Query, Request, Response
from fastapi.responses import StreamingResponse

from service.audit import service as audit
from service.auth import Coordinator
from service.clock import Now
from service.db import SessionDep
from service.reporting import export, service
from service.reporting.export import ACTIVITY_COLUMNS, BOM, CsvText, Workbook, csv_value
from service.reporting.schemas import CompensationStatement, ContractYearReport, MonthlyReport
from service.routing import api_router

router = api_router(prefix="/v1/reports", tags=["reports"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"
MonthQuery = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM, in the CPTS's timezone")]
Format = Literal["json", "csv", "xlsx"]
FILES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            XLSX: {"schema": {"type": "string", "format": "binary"}},
        }
    }
}


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def csv_response(lines: Iterator[str], filename: str) -> StreamingResponse:
    return StreamingResponse((line.encode() for line in lines), media_type=CSV, headers=_attachment(filename))


def xlsx_response(write: Callable[[IO[bytes]], None], filename: str) -> Response:
    buffer = io.BytesIO()
    write(buffer)
    return Response(buffer.getvalue(), media_type=XLSX, headers=_attachment(filename))


@router.get("/monthly", operation_id="reports-monthly", response_model=MonthlyReport, responses=FILES)
async def monthly(
    principal: Coordinator, session: SessionDep, now: Now, month: MonthQuery, format: Format = "json"
) -> Any:
    """Every indicator of the month (INDICATORS.md), in the CPTS's timezone."""
    period = await service.period(session, principal.cpts_id, service.parse_month(month), now)
    report = await service.monthly(session, period)
    name = f"snp-indicators-{month}"
    if format == "csv":
        return csv_response(export.monthly_csv(report), f"{name}.csv")
    if format == "xlsx":
        return xlsx_response(lambda target: export.monthly_xlsx(report, target), f"{name}.xlsx")
    return report


CHUNK = 1 << 16


async def _activity_csv(lines: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    text = CsvText()
    chunk = [BOM + text.line(ACTIVITY_COLUMNS)]
    size = 0
    async for line in lines:
        row = text.line([line[c] for c in ACTIVITY_COLUMNS])
        chunk.append(row)
        size += len(row)
        if size >= CHUNK:
            yield "".join(chunk).encode()
            chunk, size = [], 0
    yield "".join(chunk).encode()


async def _activity_json(lines: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    chunk, size, separator = ["["], 0, ""
    async for line in lines:
        item = separator + json.dumps({k: _json(v) for k, v in line.items()})
        chunk.append(item)
        size += len(item)
        separator = ","
        if size >= CHUNK:
            yield "".join(chunk).encode()
            chunk, size = [], 0
    chunk.append("]")
    yield "".join(chunk).encode()


def _json(value: Any) -> Any:
    return csv_value(value) if isinstance(value, date) else value


async def _activity_xlsx(lines: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Rows go to a temporary file as they come (constant memory), then the file is streamed."""
    with tempfile.TemporaryFile() as handle:
        book = Workbook(handle, constant_memory=True)
        sheet = book.sheet_writer("Activity", ACTIVITY_COLUMNS)
        async for line in lines:
            sheet.row([line[c] for c in ACTIVITY_COLUMNS])
        sheet.finish()
        book.close()
        handle.seek(0)
        while chunk := handle.read(CHUNK):
            yield chunk


@router.get(
    "/activity",
    operation_id="reports-activity",
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                **FILES[200]["content"],
            }
        }
    },
)
async def activity(
    request: Request,
    principal: Coordinator,
    session: SessionDep,
    now: Now,
    month: MonthQuery,
    format: Format = "csv",
) -> Response:
    """One pseudonymised line per request of the month: no name, phone, birth date or INS. The
    patient pseudonym is a keyed HMAC of the CPTS, stable across months."""
    period = await service.period(session, principal.cpts_id, service.parse_month(month), now)
    await audit.record(session, principal, "export.activity", "report", [None], now, request, {"month": month})
    lines = service.activity_lines(request.app.state.sessionmaker, period)
    name = f"snp-activity-{month}"
    if format == "json":
        return StreamingResponse(_activity_json(lines), media_type="application/json")
    if format == "xlsx":
        return StreamingResponse(_activity_xlsx(lines), media_type=XLSX, headers=_attachment(f"{name}.xlsx"))
    return StreamingResponse(_activity_csv(lines), media_type=CSV, headers=_attachment(f"{name}.csv"))


@router.get("/compensation", operation_id="reports-compensation", response_model=CompensationStatement, responses=FILES)
async def compensation(
    principal: Coordinator, session: SessionDep, now: Now, month: MonthQuery, format: Format = "json"
) -> Any:
    """The month's statement per professional and per slot, paid from the contract year's envelope."""
    period = await service.period(session, principal.cpts_id, service.parse_month(month), now)
    report = service.compensation_json(await service.compensation(session, period))
    name = f"snp-compensation-{month}"
    if format == "csv":
        return csv_response(export.statement_csv(report), f"{name}.csv")
    if format == "xlsx":
        return xlsx_response(lambda target: export.statement_xlsx(report, target), f"{name}.xlsx")
    return report


@router.get("/contract-year", operation_id="reports-contract_year", response_model=ContractYearReport, responses=FILES)
async def contract_year(
    principal: Coordinator,
    session: SessionDep,
    now: Now,
    start: Annotated[date, Query(description="The anniversary that opens the contract year, YYYY-MM-DD")],
    format: Format = "json",
) -> Any:
    """The contract year for the CPAM/ARS: month by month and in total, with the envelopes."""
    report = await service.contract_year(session, principal.cpts_id, start, now)
    name = f"snp-contract-year-{start.isoformat()}"
    if format == "csv":
        return csv_response(export.contract_year_csv(report), f"{name}.csv")
    if format == "xlsx":
        return xlsx_response(lambda target: export.contract_year_xlsx(report, target), f"{name}.xlsx")
    return report
