from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import date
from typing import IO, Annotated, Any, Literal

from fastapi import Query, Request, Response
from fastapi.responses import StreamingResponse

from service.audit import service as audit
from service.auth import Coordinator
from service.clock import Now
from service.db import SessionDep
from service.reporting import export, pdf, service
from service.reporting.labels import Lang
from service.reporting.schemas import CompensationStatement, ContractYearReport, Dashboard, MonthlyReport
from service.routing import api_router

router = api_router(prefix="/v1/reports", tags=["reports"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv; charset=utf-8"
PDF = "application/pdf"
MonthQuery = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM, in the CPTS's timezone")]
Format = Literal["json", "csv", "xlsx"]
LangQuery = Annotated[
    Lang,
    Query(
        description="CSV and XLSX for people: fr (default) has French titles, a title row, decimal commas and "
        "JJ/MM/AAAA dates in CSV; en keeps the field names and ISO values. JSON is the same either way."
    ),
]
# Files are binary strings in the OpenAPI document: a generated client downloads them as bytes.
BINARY = {"schema": {"type": "string", "format": "binary"}}
TEXT = {"schema": {"type": "string"}}  # CSV is text (UTF-8 with a byte-order mark)
FILES: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": TEXT, XLSX: BINARY}}}


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
    principal: Coordinator,
    session: SessionDep,
    now: Now,
    month: MonthQuery,
    format: Format = "json",
    lang: LangQuery = Lang.fr,
) -> Any:
    """Every indicator of the month (docs/indicators.md), in the CPTS's timezone."""
    period = await service.period(session, principal.cpts_id, service.parse_month(month), now)
    report = await service.monthly(session, period)
    name = f"snp-indicators-{month}"
    if format == "csv":
        return csv_response(export.monthly_csv(report, lang), f"{name}.csv")
    if format == "xlsx":
        return xlsx_response(lambda target: export.monthly_xlsx(report, target, lang), f"{name}.xlsx")
    return report


@router.get("/dashboard", operation_id="reports-dashboard")
async def dashboard(principal: Coordinator, session: SessionDep, now: Now, month: MonthQuery) -> Dashboard:
    """The month at a glance (what the coordinators' console draws): the monthly report, demand and
    unmet demand by weekday and hour, supply and demand by day, the rate within 24 h over the
    contract year so far, the compensation envelope's progress."""
    period = await service.period(session, principal.cpts_id, service.parse_month(month), now)
    return await service.dashboard(session, period)


@router.get(
    "/activity",
    operation_id="reports-activity",
    response_class=Response,
    responses={
        200: {
            # The default answer (CSV) first: a generated client reads what a plain call returns.
            "content": {
                "text/csv": TEXT,
                XLSX: BINARY,
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
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
    lang: LangQuery = Lang.fr,
) -> Response:
    """One pseudonymised line per request of the month: no name, phone, birth date or INS. The
    patient pseudonym is a keyed HMAC of the CPTS, stable across months."""
    period = await service.period(session, principal.cpts_id, service.parse_month(month), now)
    await audit.record(session, principal, "export.activity", "report", [None], now, request, {"month": month})
    lines = service.activity_lines(request.app.state.sessionmaker, period)
    name = f"snp-activity-{month}"
    title = export.month_title(service.header(period), "Activité pseudonymisée")
    if format == "json":
        return StreamingResponse(export.activity_json_chunks(lines), media_type="application/json")
    if format == "xlsx":
        return StreamingResponse(
            export.activity_xlsx_chunks(lines, lang, title), media_type=XLSX, headers=_attachment(f"{name}.xlsx")
        )
    chunks = export.activity_csv_chunks(lines, lang, title)
    return StreamingResponse(chunks, media_type=CSV, headers=_attachment(f"{name}.csv"))


@router.get("/compensation", operation_id="reports-compensation", response_model=CompensationStatement, responses=FILES)
async def compensation(
    principal: Coordinator,
    session: SessionDep,
    now: Now,
    month: MonthQuery,
    format: Format = "json",
    lang: LangQuery = Lang.fr,
) -> Any:
    """The month's statement per professional and per slot, paid from the contract year's envelope."""
    period = await service.period(session, principal.cpts_id, service.parse_month(month), now)
    report = await service.compensation(session, period)
    name = f"snp-compensation-{month}"
    if format == "csv":
        return csv_response(export.statement_csv(report, lang), f"{name}.csv")
    if format == "xlsx":
        return xlsx_response(lambda target: export.statement_xlsx(report, target, lang), f"{name}.xlsx")
    return report


@router.get(
    "/contract-year",
    operation_id="reports-contract_year",
    response_model=ContractYearReport,
    responses={200: {"content": {**FILES[200]["content"], PDF: BINARY}}},
)
async def contract_year(
    principal: Coordinator,
    session: SessionDep,
    now: Now,
    start: Annotated[date, Query(description="The anniversary that opens the contract year, YYYY-MM-DD")],
    format: Literal["json", "csv", "xlsx", "pdf"] = "json",
    lang: LangQuery = Lang.fr,
) -> Any:
    """The contract year for the CPAM/ARS: month by month and in total, with the envelopes."""
    report = await service.contract_year(session, principal.cpts_id, start, now)
    name = f"snp-contract-year-{start.isoformat()}"
    if format == "csv":
        return csv_response(export.contract_year_csv(report, lang), f"{name}.csv")
    if format == "xlsx":
        return xlsx_response(lambda target: export.contract_year_xlsx(report, target, lang), f"{name}.xlsx")
    if format == "pdf":
        return Response(pdf.contract_year_pdf(report), media_type=PDF, headers=_attachment(f"{name}.pdf"))
    return report


# The same files from operations that only answer files: a client generated from the OpenAPI
# document (one answer type per operation) downloads them as bytes, whatever their format.
FILE_ONLY: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file (see Content-Type and Content-Disposition)",
        "content": {"application/octet-stream": BINARY, "text/csv": TEXT, XLSX: BINARY, PDF: BINARY},
    }
}
FileFormat = Literal["xlsx", "csv"]


@router.get("/monthly/file", operation_id="reports-monthly_file", response_class=Response, responses=FILE_ONLY)
async def monthly_file(
    principal: Coordinator,
    session: SessionDep,
    now: Now,
    month: MonthQuery,
    format: FileFormat = "xlsx",
    lang: LangQuery = Lang.fr,
) -> Response:
    """The month's indicators as a file to open (XLSX by default)."""
    answer: Response = await monthly(principal, session, now, month, format, lang)
    return answer


@router.get("/activity/file", operation_id="reports-activity_file", response_class=Response, responses=FILE_ONLY)
async def activity_file(
    request: Request,
    principal: Coordinator,
    session: SessionDep,
    now: Now,
    month: MonthQuery,
    format: FileFormat = "xlsx",
    lang: LangQuery = Lang.fr,
) -> Response:
    """The pseudonymised activity of the month as a file to open (XLSX by default)."""
    return await activity(request, principal, session, now, month, format, lang)


@router.get(
    "/compensation/file", operation_id="reports-compensation_file", response_class=Response, responses=FILE_ONLY
)
async def compensation_file(
    principal: Coordinator,
    session: SessionDep,
    now: Now,
    month: MonthQuery,
    format: FileFormat = "xlsx",
    lang: LangQuery = Lang.fr,
) -> Response:
    """The month's compensation statement as a file to open (XLSX by default)."""
    answer: Response = await compensation(principal, session, now, month, format, lang)
    return answer


@router.get(
    "/contract-year/file", operation_id="reports-contract_year_file", response_class=Response, responses=FILE_ONLY
)
async def contract_year_file(
    principal: Coordinator,
    session: SessionDep,
    now: Now,
    start: Annotated[date, Query(description="The anniversary that opens the contract year, YYYY-MM-DD")],
    format: Literal["xlsx", "csv", "pdf"] = "xlsx",
    lang: LangQuery = Lang.fr,
) -> Response:
    """The contract year for the CPAM/ARS as a file: XLSX (by default), CSV or PDF."""
    answer: Response = await contract_year(principal, session, now, start, format, lang)
    return answer
