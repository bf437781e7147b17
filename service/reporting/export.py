"""Export formats: the activity lines and the reports as CSV and XLSX. No I/O beyond the file or
buffer handed in.

CSV: UTF-8 with a byte-order mark and `;` between fields, so that Excel in a French locale opens
accents and columns correctly; decimals use a point (programs should prefer JSON). XLSX: numbers
stored as numbers, dates as dates, percentages formatted, the header row frozen, widths that fit.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import io
import json
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import date, datetime
from operator import attrgetter
from typing import IO, Any
from zoneinfo import ZoneInfo

import xlsxwriter
from pydantic import BaseModel

from service.money import euros
from service.reporting.indicators import (
    WEEKDAYS,
    RequestFact,
    appointment_status,
    delay_hours,
    motif_first_level,
    orientation_minutes,
    outcome,
    within,
)
from service.reporting.schemas import CompensationStatement, ContractYearReport, MonthlyReport, Section
from service.reporting.stats import round_half_up

CSV_DIALECT = {"delimiter": ";", "lineterminator": "\r\n", "quoting": csv.QUOTE_MINIMAL}
BOM = "\ufeff"


@dataclasses.dataclass(frozen=True, slots=True)
class ActivityLine:
    """One pseudonymised line of the activity export: no name, phone, birth date or INS. Its fields
    are the export's columns, in order."""

    request_ref: str
    patient_pseudonym: str | None
    imported: bool
    received_at: datetime
    received_date: date
    received_hour: int
    received_weekday: str
    deadline_at: datetime
    channel: str
    via_sas: bool
    motif: str
    motif_level1: str
    motif_classification: str
    red_flagged: bool
    needs_profession: str | None
    needs_specialty: str | None
    needs_modalities: str
    patient_age_band: str | None
    patient_sex: str | None
    patient_commune: str | None
    outcome: str
    oriented_at: datetime | None
    time_to_orientation_minutes: float | None
    appointment_start: datetime | None
    appointment_modality: str | None
    practitioner_profession: str | None
    delay_to_appointment_hours: float | None
    within_24h: bool | None
    within_48h: bool | None
    appointment_status: str | None
    handled_by: str | None

    def values(self) -> tuple[Any, ...]:
        values: tuple[Any, ...] = _activity_values(self)
        return values


ACTIVITY_COLUMNS = tuple(f.name for f in dataclasses.fields(ActivityLine))
_activity_values = attrgetter(*ACTIVITY_COLUMNS)


def request_ref(key: bytes, request_id: object) -> str:
    """A stable reference to a request that does not expose its internal id."""
    return hmac.new(key, f"request:{request_id}".encode(), hashlib.sha256).hexdigest()[:16]


def activity_line(fact: RequestFact, cutoff: datetime, tz: ZoneInfo, key: bytes) -> ActivityLine:
    """One pseudonymised line: no name, phone, birth date or INS."""
    received = fact.received_at.astimezone(tz)
    delay = delay_hours(fact)
    minutes = orientation_minutes(fact)
    booked = fact.final_outcome == "booked"
    return ActivityLine(
        request_ref=request_ref(key, fact.request_id),
        patient_pseudonym=fact.patient_pseudonym,
        imported=fact.imported,
        received_at=received,
        received_date=received.date(),
        received_hour=received.hour,
        received_weekday=WEEKDAYS[received.weekday()],
        deadline_at=fact.deadline_at.astimezone(tz),
        channel=fact.channel,
        via_sas=fact.via_sas,
        motif=fact.motif,
        motif_level1=motif_first_level(fact.motif),
        motif_classification=fact.motif_classification,
        red_flagged=fact.red_flagged,
        needs_profession=fact.needs_profession,
        needs_specialty=fact.needs_specialty,
        needs_modalities="|".join(fact.needs_modalities),
        patient_age_band=fact.patient_age_band,
        patient_sex=fact.patient_sex,
        patient_commune=fact.patient_commune,
        outcome=outcome(fact, cutoff),
        oriented_at=fact.oriented_at.astimezone(tz) if fact.oriented_at else None,
        time_to_orientation_minutes=None if minutes is None else round_half_up(minutes, 2),
        appointment_start=fact.appointment_start.astimezone(tz) if booked and fact.appointment_start else None,
        appointment_modality=fact.appointment_modality if booked else None,
        practitioner_profession=fact.practitioner_profession if booked else None,
        delay_to_appointment_hours=None if delay is None else round_half_up(delay, 2),
        within_24h=within(fact, 24) if booked else None,
        within_48h=within(fact, 48) if booked else None,
        appointment_status=appointment_status(fact),
        handled_by=str(fact.oriented_by) if fact.oriented_by else None,
    )


_CSV_FORMATS: dict[type, Any] = {
    type(None): lambda _: "",
    bool: lambda v: "true" if v else "false",
    str: lambda v: v,
    datetime: datetime.isoformat,
    date: date.isoformat,
}


def csv_value(value: Any) -> str:
    formatter = _CSV_FORMATS.get(type(value))
    return formatter(value) if formatter is not None else str(value)


class CsvText:
    """Formats one CSV line at a time."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, **CSV_DIALECT)  # type: ignore[arg-type]

    def line(self, values: Sequence[Any]) -> str:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerow([csv_value(v) for v in values])
        return self.buffer.getvalue()


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """CSV text, a line at a time (the first one starts with the byte-order mark)."""
    text = CsvText()
    yield BOM + text.line(header)
    for row in rows:
        yield text.line(row)


class Workbook:
    """XlsxWriter with the house style. `constant_memory` streams rows to disk as they come."""

    def __init__(self, target: IO[bytes] | str, *, constant_memory: bool = False) -> None:
        self.book = xlsxwriter.Workbook(
            target, {"constant_memory": constant_memory, "remove_timezone": True, "in_memory": False}
        )
        self.header = self.book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        self.datetime = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
        self.date = self.book.add_format({"num_format": "yyyy-mm-dd"})
        self.percent = self.book.add_format({"num_format": "0.0%"})
        self.decimal = self.book.add_format({"num_format": "0.00"})
        self.euros = self.book.add_format({"num_format": "#,##0.00 €"})

    def sheet(
        self,
        name: str,
        header: Sequence[str],
        rows: Iterable[Sequence[Any]],
        formats: dict[int, Any] | None = None,
    ) -> None:
        """Write one whole sheet; `formats` maps a column index to a cell format."""
        writer = self.sheet_writer(name, header, formats)
        for row in rows:
            writer.row(row)
        writer.finish()

    def sheet_writer(self, name: str, header: Sequence[str], formats: dict[int, Any] | None = None) -> SheetWriter:
        return SheetWriter(self, name, header, formats or {})

    def _write(self, sheet: Any, row: int, column: int, value: Any, fmt: Any) -> None:
        if value is None:
            sheet.write_blank(row, column, None, fmt)
        elif isinstance(value, bool):
            sheet.write_boolean(row, column, value, fmt)
        elif isinstance(value, datetime):
            sheet.write_datetime(row, column, value.replace(tzinfo=None), fmt or self.datetime)
        elif isinstance(value, date):
            sheet.write_datetime(row, column, datetime.combine(value, datetime.min.time()), fmt or self.date)
        elif isinstance(value, int | float):
            sheet.write_number(row, column, value, fmt)
        else:
            sheet.write_string(row, column, str(value), fmt)

    @staticmethod
    def _width(value: Any) -> int:
        if isinstance(value, datetime):
            return 16
        if isinstance(value, date):
            return 10
        return len(csv_value(value))

    def close(self) -> None:
        self.book.close()


class SheetWriter:
    """Rows written as they come (in `constant_memory` mode they go straight to disk)."""

    def __init__(self, book: Workbook, name: str, header: Sequence[str], formats: dict[int, Any]) -> None:
        self.book, self.formats = book, formats
        self.sheet = book.book.add_worksheet(name[:31])
        self.widths = [len(h) for h in header]
        for column, title in enumerate(header):
            self.sheet.write_string(0, column, title, book.header)
        self.sheet.freeze_panes(1, 0)
        self.count = 0

    def row(self, values: Sequence[Any]) -> None:
        self.count += 1
        for column, value in enumerate(values):
            self.book._write(self.sheet, self.count, column, value, self.formats.get(column))
            if self.count <= 1000:  # widths from the first rows: enough to fit, cheap on big exports
                self.widths[column] = max(self.widths[column], min(60, Workbook._width(value)))

    def finish(self) -> None:
        for column, width in enumerate(self.widths):
            self.sheet.set_column(column, column, width + 2)


MONTHLY_COLUMNS = ("section", "indicator", "category", "value")


def _flatten(key: str, value: Any, category: str = "") -> Iterator[tuple[str, str, Any]]:
    if isinstance(value, dict):
        for sub_key, sub_value in value.items():
            yield from _flatten(key, sub_value, f"{category}.{sub_key}" if category else str(sub_key))
    else:
        yield key, category, value


def monthly_rows(report: MonthlyReport) -> Iterator[tuple[str, str, str, Any]]:
    """(section, indicator, category, value): one figure a row; breakdowns give one row each."""
    for marker, name, value in report.indicators():
        for indicator, category, figure in _flatten(name, value):
            yield marker.section.value, indicator, category, figure


def monthly_csv(report: MonthlyReport) -> Iterator[str]:
    return csv_lines(MONTHLY_COLUMNS, monthly_rows(report))


def monthly_xlsx(report: MonthlyReport, target: IO[bytes]) -> None:
    book = Workbook(target)
    about = [
        ("month", report.month),
        ("timezone", report.timezone),
        ("period_start", report.period_start.isoformat()),
        ("period_end", report.period_end.isoformat()),
        ("cutoff", report.cutoff.isoformat()),
        ("provisional", report.provisional),
    ]
    book.sheet("Report", ("field", "value"), about)
    by_section: dict[Section, list[tuple[str, str, Any, bool]]] = {section: [] for section in Section}
    for marker, name, value in report.indicators():
        for indicator, category, figure in _flatten(name, value):
            by_section[marker.section].append((indicator, category, figure, marker.percent))
    for section, rows in by_section.items():
        sheet = book.book.add_worksheet(section.value.capitalize())
        sheet.freeze_panes(1, 0)
        for column, title in enumerate(("indicator", "category", "value")):
            sheet.write_string(0, column, title, book.header)
        for row, (indicator, category, value, percent) in enumerate(rows, start=1):
            sheet.write_string(row, 0, indicator)
            sheet.write_string(row, 1, category)
            book._write(sheet, row, 2, value, book.percent if percent else None)
        sheet.set_column(0, 0, max(len(r[0]) for r in rows) + 2)
        sheet.set_column(1, 1, max([len(r[1]) for r in rows] + [8]) + 2)
        sheet.set_column(2, 2, 12)
    book.sheet(
        "Handlers",
        ("user_id", "name", "requests_handled", "median_handling_minutes"),
        [(h.user_id, h.name, h.requests_handled, h.median_handling_minutes) for h in report.handlers],
    )
    book.close()


STATEMENT_COLUMNS = (
    "practitioner_id",
    "family_name",
    "given_name",
    "hours_unfilled",
    "hours_filled",
    "gross",
    "capped",
    "scale",
    "paid",
)
SLOT_COLUMNS = ("practitioner_id", "slot_id", "start", "end", "hours", "booked", "rate", "gross", "paid")


def _euros(cents: int) -> float:
    """Cents as a number of euros for a spreadsheet cell (formatted as money there)."""
    return cents / 100


def statement_csv(report: CompensationStatement) -> Iterator[str]:
    rows: list[tuple[Any, ...]] = [
        (
            line.practitioner_id,
            line.family_name,
            line.given_name,
            line.hours_unfilled,
            line.hours_filled,
            euros(line.gross),
            euros(line.capped),
            scale_text(line.scale),
            euros(line.paid),
        )
        for line in report.lines
    ]
    total = ("total", "", "", "", "", euros(report.total_gross), "", scale_text(report.scale), euros(report.total_paid))
    return csv_lines(STATEMENT_COLUMNS, [*rows, total])


def scale_text(scale: float) -> str:
    """The envelope's scaling factor, to six decimals (1 when the envelope covered everything)."""
    return f"{scale:.6f}"


def statement_xlsx(report: CompensationStatement, target: IO[bytes]) -> None:
    book = Workbook(target)
    money = {5: book.euros, 6: book.euros, 8: book.euros}
    lines = [
        (
            line.practitioner_id,
            line.family_name,
            line.given_name,
            line.hours_unfilled,
            line.hours_filled,
            _euros(line.gross),
            _euros(line.capped),
            line.scale,
            _euros(line.paid),
        )
        for line in report.lines
    ]
    book.sheet("Statement", STATEMENT_COLUMNS, lines, money)
    slots = [
        (
            line.practitioner_id,
            s.slot_id,
            s.start,
            s.end,
            s.hours,
            s.booked,
            _euros(s.rate),
            _euros(s.gross),
            _euros(s.paid),
        )
        for line in report.lines
        for s in line.slots
    ]
    book.sheet("Slots", SLOT_COLUMNS, slots, {6: book.euros, 7: book.euros, 8: book.euros})
    envelope = report.envelope
    book.sheet(
        "Envelope",
        ("month", "annual", "remaining_before", "paid_this_month", "scale", "provisional"),
        [
            (
                report.month,
                _euros(envelope.annual),
                _euros(envelope.remaining_before),
                _euros(envelope.paid_this_month),
                report.scale,
                report.provisional,
            )
        ],
        {1: book.euros, 2: book.euros, 3: book.euros},
    )
    book.close()


CONTRACT_YEAR_COLUMNS = (
    "month",
    "provisional",
    "requests_total",
    "booked",
    "needing_consultation",
    "booked_within_24h",
    "rate_within_24h",
    "booked_within_48h",
    "unresolved_past_deadline",
    "no_solution",
    "transfer_15",
    "slots_published",
    "slots_booked",
    "fill_rate",
    "participating_professionals",
    "compensation_paid",
)


def contract_year_rows(report: ContractYearReport, money: Any = euros) -> list[tuple[Any, ...]]:
    """One row a month, then the totals; `money` renders the cents."""

    def row(values: BaseModel, month: str) -> tuple[Any, ...]:
        fields = values.model_dump(mode="python")
        fields["month"] = month
        fields["compensation_paid"] = money(fields["compensation_paid"])
        return tuple(fields.get(c) for c in CONTRACT_YEAR_COLUMNS)

    return [*(row(m, m.month) for m in report.months), row(report.total, "total")]


def contract_year_csv(report: ContractYearReport) -> Iterator[str]:
    return csv_lines(CONTRACT_YEAR_COLUMNS, contract_year_rows(report))


def contract_year_xlsx(report: ContractYearReport, target: IO[bytes]) -> None:
    book = Workbook(target)
    rows = contract_year_rows(report, _euros)
    book.sheet("Months", CONTRACT_YEAR_COLUMNS, rows, {6: book.percent, 13: book.percent, 15: book.euros})
    envelopes = [(name, _euros(amount)) for name, amount in report.envelopes.items()]
    envelopes += [
        ("compensation.envelope", _euros(report.compensation.envelope)),
        ("compensation.paid", _euros(report.compensation.paid)),
        ("compensation.remaining", _euros(report.compensation.remaining)),
    ]
    book.sheet("Envelopes", ("line", "euros"), envelopes, {1: book.euros})
    book.close()


CHUNK = 1 << 16


async def activity_csv_chunks(lines: AsyncIterator[ActivityLine]) -> AsyncIterator[bytes]:
    text = CsvText()
    chunk = [BOM + text.line(ACTIVITY_COLUMNS)]
    size = 0
    async for line in lines:
        row = text.line(line.values())
        chunk.append(row)
        size += len(row)
        if size >= CHUNK:
            yield "".join(chunk).encode()
            chunk, size = [], 0
    yield "".join(chunk).encode()


async def activity_json_chunks(lines: AsyncIterator[ActivityLine]) -> AsyncIterator[bytes]:
    chunk, size, separator = ["["], 0, ""
    async for line in lines:
        item = separator + json.dumps({k: _json(v) for k, v in zip(ACTIVITY_COLUMNS, line.values(), strict=True)})
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


async def activity_xlsx_chunks(lines: AsyncIterator[ActivityLine]) -> AsyncIterator[bytes]:
    """Rows go to a temporary file as they come (constant memory), then the file is streamed."""
    with tempfile.TemporaryFile() as handle:
        book = Workbook(handle, constant_memory=True)
        sheet = book.sheet_writer("Activity", ACTIVITY_COLUMNS)
        async for line in lines:
            sheet.row(line.values())
        sheet.finish()
        book.close()
        handle.seek(0)
        while chunk := handle.read(CHUNK):
            yield chunk
