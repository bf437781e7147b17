"""Export formats: the activity lines and the reports as CSV and XLSX. No I/O beyond the file or
buffer handed in.

Two languages (`labels.Lang`). French (the default for people): French column titles and sheet
names, a title with the CPTS, the period and the cut-off, and in CSV a decimal comma, dates as
JJ/MM/AAAA and "oui"/"non". English: the field names and machine-friendly values (ISO dates,
decimal points), as before. CSV is UTF-8 with a byte-order mark and `;` between fields either way,
so that Excel in a French locale opens accents and columns correctly. XLSX: numbers stored as
numbers, dates as dates, percentages and euros formatted, the header row frozen, widths that fit.
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
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import IO, Any
from zoneinfo import ZoneInfo

import xlsxwriter
from pydantic import BaseModel

from service.money import euros
from service.reporting import labels
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
from service.reporting.labels import Lang
from service.reporting.schemas import (
    CompensationStatement,
    ContractYearReport,
    MonthlyReport,
    ReportHeader,
    Section,
)
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


class Money(int):
    """Cents to show as euros: "45.00" in English CSV, "45,00" in French, a number of euros in XLSX."""


class Scale(float):
    """The envelope's scaling factor, shown to six decimals."""


def _decimal(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


_CSV_EN: dict[type, Any] = {
    type(None): lambda _: "",
    bool: lambda v: "true" if v else "false",
    str: lambda v: v,
    datetime: datetime.isoformat,
    date: date.isoformat,
    Money: euros,
    Scale: lambda v: f"{v:.6f}",
}
_CSV_FR: dict[type, Any] = {
    type(None): lambda _: "",
    bool: lambda v: "oui" if v else "non",
    str: lambda v: v,
    datetime: lambda v: v.strftime("%d/%m/%Y %H:%M"),
    date: lambda v: v.strftime("%d/%m/%Y"),
    Money: lambda v: euros(v).replace(".", ","),
    Scale: lambda v: f"{v:.6f}".replace(".", ","),
    float: lambda v: _decimal(v).replace(".", ","),
}


def csv_value(value: Any, lang: Lang = Lang.en) -> str:
    """A cell of the CSV: in French, decimal commas, dates as JJ/MM/AAAA, "oui"/"non"."""
    formats = _CSV_FR if lang is Lang.fr else _CSV_EN
    formatter = formats.get(type(value))
    return formatter(value) if formatter is not None else str(value)


@dataclasses.dataclass(frozen=True)
class Title:
    """What a French export says above its table: the CPTS, the report, the period, the cut-off."""

    cpts: str
    report: str
    period: str
    cutoff: datetime | None = None
    provisional: bool = False

    def lines(self) -> list[list[str]]:
        state = "provisoire" if self.provisional else "définitif"
        about = [f"Période : {self.period}"]
        if self.cutoff is not None:
            about += [f"Arrêté au {self.cutoff.strftime('%d/%m/%Y %H:%M')}", state.capitalize()]
        return [[f"{self.cpts} — {self.report}"], about, []]


def month_title(header: ReportHeader, report: str) -> Title:
    last_day = (header.period_end - timedelta(days=1)).date()
    period = f"du {header.period_start.strftime('%d/%m/%Y')} au {last_day.strftime('%d/%m/%Y')}"
    return Title(header.cpts_name, f"{report} — {_month_name(header.month)}", period, header.cutoff, header.provisional)


def _month_name(month: str) -> str:
    year, number = month.split("-")
    return f"{MONTHS_FR[int(number) - 1]} {year}"


MONTHS_FR = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
             "novembre", "décembre")  # fmt: skip


class CsvText:
    """Formats one CSV line at a time."""

    def __init__(self, lang: Lang = Lang.en) -> None:
        self.lang = lang
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, **CSV_DIALECT)  # type: ignore[arg-type]

    def line(self, values: Sequence[Any]) -> str:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerow([csv_value(v, self.lang) for v in values])
        return self.buffer.getvalue()


def csv_lines(
    header: Sequence[str], rows: Iterable[Sequence[Any]], lang: Lang = Lang.en, title: Title | None = None
) -> Iterator[str]:
    """CSV text, a line at a time (the first one starts with the byte-order mark). In French: the
    title lines first, then the French column titles."""
    text = CsvText(lang)
    lines = [*(title.lines() if title and lang is Lang.fr else []), [labels.column(h, lang) for h in header]]
    yield BOM + text.line(lines[0])
    for line in lines[1:]:
        yield text.line(line)
    for row in rows:
        yield text.line(row)


class Workbook:
    """XlsxWriter with the house style. `constant_memory` streams rows to disk as they come. In
    French, sheets and columns have French names and each sheet opens with the title lines."""

    def __init__(
        self,
        target: IO[bytes] | str,
        *,
        constant_memory: bool = False,
        lang: Lang = Lang.en,
        title: Title | None = None,
    ) -> None:
        self.lang = lang
        self.title = title if lang is Lang.fr else None
        self.book = xlsxwriter.Workbook(
            target, {"constant_memory": constant_memory, "remove_timezone": True, "in_memory": False}
        )
        self.header = self.book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        self.heading = self.book.add_format({"bold": True, "font_size": 13})
        self.bold = self.book.add_format({"bold": True})
        french = lang is Lang.fr
        self.datetime = self.book.add_format({"num_format": "dd/mm/yyyy hh:mm" if french else "yyyy-mm-dd hh:mm"})
        self.date = self.book.add_format({"num_format": "dd/mm/yyyy" if french else "yyyy-mm-dd"})
        self.percent = self.book.add_format({"num_format": "0.0%"})
        self.decimal = self.book.add_format({"num_format": "0.00"})
        self.euros = self.book.add_format({"num_format": "#,##0.00 €"})
        self.scale = self.book.add_format({"num_format": "0.000000"})
        self.total_euros = self.book.add_format({"num_format": "#,##0.00 €", "bold": True, "top": 1})
        self.total = self.book.add_format({"bold": True, "top": 1})

    @property
    def first_row(self) -> int:
        """Where a sheet's header goes: under the title lines, if any."""
        return len(self.title.lines()) if self.title else 0

    def add_sheet(self, name: str) -> Any:
        sheet = self.book.add_worksheet(labels.sheet(name, self.lang)[:31])
        if self.title:
            for row, line in enumerate(self.title.lines()):
                for column, text in enumerate(line):
                    sheet.write_string(row, column, text, self.heading if row == 0 else None)
        return sheet

    def sheet(
        self,
        name: str,
        header: Sequence[str],
        rows: Iterable[Sequence[Any]],
        formats: dict[int, Any] | None = None,
    ) -> SheetWriter:
        """Write one whole sheet; `formats` maps a column index to a cell format."""
        writer = self.sheet_writer(name, header, formats)
        for row in rows:
            writer.row(row)
        writer.finish()
        return writer

    def sheet_writer(self, name: str, header: Sequence[str], formats: dict[int, Any] | None = None) -> SheetWriter:
        return SheetWriter(self, name, header, formats or {})

    def _write(self, sheet: Any, row: int, column: int, value: Any, fmt: Any) -> None:
        if value is None:
            sheet.write_blank(row, column, None, fmt)
        elif isinstance(value, bool):
            if self.lang is Lang.fr:
                sheet.write_string(row, column, labels.TRUE_FALSE[value], fmt)
            else:
                sheet.write_boolean(row, column, value, fmt)
        elif isinstance(value, datetime):
            sheet.write_datetime(row, column, value.replace(tzinfo=None), fmt or self.datetime)
        elif isinstance(value, date):
            sheet.write_datetime(row, column, datetime.combine(value, datetime.min.time()), fmt or self.date)
        elif isinstance(value, Money):
            sheet.write_number(row, column, value / 100, fmt or self.euros)
        elif isinstance(value, Scale):
            sheet.write_number(row, column, float(value), fmt or self.scale)
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
        self.sheet = book.add_sheet(name)
        titles = [labels.column(h, book.lang) for h in header]
        self.widths = [min(len(t), 30) for t in titles]
        self.top = book.first_row
        for column, title in enumerate(titles):
            self.sheet.write_string(self.top, column, title, book.header)
        self.sheet.freeze_panes(self.top + 1, 0)
        self.count = 0

    def row(self, values: Sequence[Any], fmt: Any = None) -> None:
        self.count += 1
        for column, value in enumerate(values):
            cell = self.formats.get(column)
            if fmt is not None:  # a totals row: bold, money stays money
                cell = self.book.total_euros if isinstance(value, Money) else fmt
            self.book._write(self.sheet, self.top + self.count, column, value, cell)
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


def monthly_rows(report: MonthlyReport, lang: Lang = Lang.en) -> Iterator[tuple[str, str, str, Any]]:
    """(section, indicator, category, value): one figure a row; breakdowns give one row each."""
    for marker, name, value in report.indicators():
        for indicator, category, figure in _flatten(name, value):
            yield (
                labels.section(marker.section.value, lang),
                labels.indicator(indicator, lang),
                labels.category(category, lang),
                figure,
            )


def monthly_csv(report: MonthlyReport, lang: Lang = Lang.en) -> Iterator[str]:
    return csv_lines(MONTHLY_COLUMNS, monthly_rows(report, lang), lang, month_title(report, "Indicateurs du mois"))


def monthly_xlsx(report: MonthlyReport, target: IO[bytes], lang: Lang = Lang.en) -> None:
    book = Workbook(target, lang=lang, title=month_title(report, "Indicateurs du mois"))
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
            by_section[marker.section].append(
                (labels.indicator(indicator, lang), labels.category(category, lang), figure, marker.percent)
            )
    for section, rows in by_section.items():
        writer = book.sheet_writer(section.value.capitalize(), ("indicator", "category", "value"))
        for indicator, category, value, percent in rows:
            writer.row((indicator, category, value))
            if percent:  # the same cell again, as a percentage
                book._write(writer.sheet, writer.top + writer.count, 2, value, book.percent)
        writer.finish()
    if report.targets:
        book.sheet(
            "Targets",
            ("indicator", "comparator", "target", "value", "met"),
            [(labels.indicator(t.indicator, lang), t.comparator, t.target, t.value, t.met) for t in report.targets],
        )
    book.sheet(
        "Handlers",
        ("user_id", "name", "requests_handled", "median_handling_minutes"),
        [(h.user_id, h.name, h.requests_handled, h.median_handling_minutes) for h in report.handlers],
    )
    book.close()


STATEMENT_COLUMNS = (
    "practitioner_id",
    "id_type",
    "national_id",
    "family_name",
    "given_name",
    "profession",
    "site",
    "slots_counted",
    "hours_unfilled",
    "hours_filled",
    "rate_unfilled",
    "rate_filled",
    "gross",
    "capped",
    "scale",
    "paid",
)
SLOT_COLUMNS = ("practitioner_id", "slot_id", "start", "end", "hours", "booked", "rate", "gross", "paid")


def statement_rows(report: CompensationStatement, lang: Lang) -> list[tuple[Any, ...]]:
    """One row per professional, then the totals row."""
    rows: list[tuple[Any, ...]] = [
        (
            line.practitioner_id,
            line.id_type.upper(),
            line.national_id,
            line.family_name,
            line.given_name,
            line.profession_label if lang is Lang.fr else line.profession,
            line.site,
            line.slots_counted,
            line.hours_unfilled,
            line.hours_filled,
            Money(line.rate_unfilled),
            Money(line.rate_filled),
            Money(line.gross),
            Money(line.capped),
            Scale(line.scale),
            Money(line.paid),
        )
        for line in report.lines
    ]
    total = (
        "Total" if lang is Lang.fr else "total", "", "", "", "", "", "",
        sum(line.slots_counted for line in report.lines),
        round(sum(line.hours_unfilled for line in report.lines), 2),
        round(sum(line.hours_filled for line in report.lines), 2),
        None, None,
        Money(report.total_gross),
        Money(sum(line.capped for line in report.lines)),
        Scale(report.scale),
        Money(report.total_paid),
    )  # fmt: skip
    return [*rows, total]


def statement_csv(report: CompensationStatement, lang: Lang = Lang.en) -> Iterator[str]:
    title = month_title(report, "Relevé d'indemnisation des professionnels")
    return csv_lines(STATEMENT_COLUMNS, statement_rows(report, lang), lang, title)


def scale_text(scale: float) -> str:
    """The envelope's scaling factor, to six decimals (1 when the envelope covered everything)."""
    return f"{scale:.6f}"


def statement_xlsx(report: CompensationStatement, target: IO[bytes], lang: Lang = Lang.en) -> None:
    """The statement, the slots, the envelope; in French also one sheet per professional (what a
    treasurer sends each one, or merges into letters)."""
    book = Workbook(target, lang=lang, title=month_title(report, "Relevé d'indemnisation des professionnels"))
    rows = statement_rows(report, lang)
    writer = book.sheet_writer("Statement", STATEMENT_COLUMNS)
    for row in rows[:-1]:
        writer.row(row)
    writer.row(rows[-1], fmt=book.total)
    writer.finish()
    slots = [
        (line.practitioner_id, s.slot_id, s.start, s.end, s.hours, s.booked, Money(s.rate), Money(s.gross),
         Money(s.paid))
        for line in report.lines
        for s in line.slots
    ]  # fmt: skip
    book.sheet("Slots", SLOT_COLUMNS, slots)
    envelope = report.envelope
    book.sheet(
        "Envelope",
        ("month", "annual", "remaining_before", "paid_this_month", "scale", "provisional"),
        [
            (
                report.month,
                Money(envelope.annual),
                Money(envelope.remaining_before),
                Money(envelope.paid_this_month),
                Scale(report.scale),
                report.provisional,
            )
        ],
    )
    if lang is Lang.fr:
        used: set[str] = set()
        for line in report.lines:
            name = _sheet_name(f"{line.family_name} {line.given_name[:1]}.", line.national_id, used)
            per = book.sheet_writer(name, ("start", "end", "hours", "booked", "rate", "gross", "paid"))
            who = f"{line.given_name} {line.family_name} — {line.id_type.upper()} {line.national_id}"
            per.sheet.write_string(per.top - 1, 0, f"{who} — {line.profession_label} — {line.site}", book.bold)
            for s in line.slots:
                per.row((s.start, s.end, s.hours, s.booked, Money(s.rate), Money(s.gross), Money(s.paid)))
            per.row(("Total", "", round(sum(s.hours for s in line.slots), 2), "", None, Money(line.gross),
                     Money(line.paid)), fmt=book.total)  # fmt: skip
            per.finish()
    book.close()


def _sheet_name(base: str, national_id: str, used: set[str]) -> str:
    """A sheet name Excel accepts (31 characters, none of []:*?/\\), unique in the workbook."""
    clean = "".join(c for c in base if c not in "[]:*?/\\")[:24].strip() or national_id
    name = clean
    if name in used:
        name = f"{clean[:20]} {national_id[-4:]}"
    used.add(name)
    return name[:31]


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


def contract_year_rows(report: ContractYearReport, lang: Lang = Lang.en) -> list[tuple[Any, ...]]:
    """One row a month, then the totals."""

    def row(values: BaseModel, month: str) -> tuple[Any, ...]:
        fields = values.model_dump(mode="python")
        fields["month"] = month
        fields["compensation_paid"] = Money(fields["compensation_paid"])
        return tuple(fields.get(c) for c in CONTRACT_YEAR_COLUMNS)

    total = "Total" if lang is Lang.fr else "total"
    return [*(row(m, m.month) for m in report.months), row(report.total, total)]


def contract_year_title(report: ContractYearReport) -> Title:
    start, end = date.fromisoformat(report.start), date.fromisoformat(report.end) - timedelta(days=1)
    period = f"du {start.strftime('%d/%m/%Y')} au {end.strftime('%d/%m/%Y')}"
    return Title(report.cpts_name, "Rapport d'année contractuelle (ACI)", period)


def contract_year_csv(report: ContractYearReport, lang: Lang = Lang.en) -> Iterator[str]:
    return csv_lines(CONTRACT_YEAR_COLUMNS, contract_year_rows(report, lang), lang, contract_year_title(report))


def contract_year_cover(report: ContractYearReport) -> list[tuple[str, Any]]:
    """What the CPAM/ARS reads first: who, which year, which size, which envelopes."""
    return [
        ("CPTS", report.cpts_name),
        ("FINESS", report.finess or "non renseigné"),
        ("Taille (ACI)", report.size),
        ("Année contractuelle", f"du {date.fromisoformat(report.start).strftime('%d/%m/%Y')} au "
                                f"{(date.fromisoformat(report.end) - timedelta(days=1)).strftime('%d/%m/%Y')}"),
        ("Demandes", report.total.requests_total),
        ("Taux de rendez-vous sous 24 h", report.total.rate_within_24h),
        ("Indemnisation versée", Money(report.compensation.paid)),
        ("Enveloppe d'indemnisation", Money(report.compensation.envelope)),
        ("Reste de l'enveloppe", Money(report.compensation.remaining)),
        ("Projection à la fin de l'année", Money(report.envelope_progress.projected_year_total)),
    ]  # fmt: skip


def contract_year_xlsx(report: ContractYearReport, target: IO[bytes], lang: Lang = Lang.en) -> None:
    book = Workbook(target, lang=lang, title=contract_year_title(report))
    if lang is Lang.fr:
        cover = book.sheet("Cover", ("field", "value"), contract_year_cover(report))
        book._write(cover.sheet, cover.top + 6, 1, report.total.rate_within_24h, book.percent)
    book.sheet("Months", CONTRACT_YEAR_COLUMNS, contract_year_rows(report, lang), {6: book.percent, 13: book.percent})
    envelopes: list[tuple[str, Any]] = [(name, Money(amount)) for name, amount in report.envelopes.items()]
    envelopes += [
        ("compensation.envelope", Money(report.compensation.envelope)),
        ("compensation.paid", Money(report.compensation.paid)),
        ("compensation.remaining", Money(report.compensation.remaining)),
    ]
    book.sheet("Envelopes", ("line", "euros"), envelopes)
    if report.targets:
        book.sheet(
            "Targets",
            ("indicator", "comparator", "target", "value", "met"),
            [(labels.indicator(t.indicator, lang), t.comparator, t.target, t.value, t.met) for t in report.targets],
        )
    book.close()


CHUNK = 1 << 16


async def activity_csv_chunks(
    lines: AsyncIterator[ActivityLine], lang: Lang = Lang.en, title: Title | None = None
) -> AsyncIterator[bytes]:
    text = CsvText(lang)
    head = [*(title.lines() if title and lang is Lang.fr else []), [labels.column(c, lang) for c in ACTIVITY_COLUMNS]]
    chunk = [BOM + text.line(head[0]), *(text.line(line) for line in head[1:])]
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


async def activity_xlsx_chunks(
    lines: AsyncIterator[ActivityLine], lang: Lang = Lang.en, title: Title | None = None
) -> AsyncIterator[bytes]:
    """Rows go to a temporary file as they come (constant memory), then the file is streamed."""
    with tempfile.TemporaryFile() as handle:
        book = Workbook(handle, constant_memory=True, lang=lang, title=title)
        sheet = book.sheet_writer("Activity", ACTIVITY_COLUMNS)
        async for line in lines:
            sheet.row(line.values())
        sheet.finish()
        book.close()
        handle.seek(0)
        while chunk := handle.read(CHUNK):
            yield chunk
