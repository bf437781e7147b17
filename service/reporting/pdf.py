"""The contract-year report as a PDF the coordinator attaches to the annual review with the
CPAM/ARS: the same figures as the XLSX (`export.contract_year_xlsx`), laid out for reading, in
French. Drawn with reportlab's standard fonts (nothing to embed, nothing fetched)."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from service import french
from service.money import euros
from service.reporting import labels
from service.reporting.labels import Lang
from service.reporting.schemas import ContractYearReport

# The standard PDF fonts cover Latin-1 and the euro sign, not the narrow no-break space Babel puts
# between thousands: a no-break space instead.
_SPACES = str.maketrans({"\u202f": "\u00a0"})
HEADER_BLUE = colors.HexColor("#DDEBF7")


def _money(cents: int) -> str:
    return french.euros(int(cents) / 100).translate(_SPACES) if cents is not None else ""


def _rate(value: float | None) -> str:
    return "—" if value is None else french.percent(value, 1).translate(_SPACES)


def _count(value: int) -> str:
    return french.number(value).translate(_SPACES)


def _day(text: str) -> str:
    return date.fromisoformat(text).strftime("%d/%m/%Y")


_HEADER_CELL = ParagraphStyle("header-cell", fontName="Helvetica-Bold", fontSize=8, leading=9.5, alignment=1)


def _table(rows: list[list[Any]], widths: list[float], header: bool = True) -> Table:
    if header:  # long titles wrap inside their column instead of running into the next one
        rows = [[Paragraph(str(title), _HEADER_CELL) for title in rows[0]], *rows[1:]]
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style: list[Any] = [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
    ]
    if header:
        style += [("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9), ("BACKGROUND", (0, 0), (-1, 0), HEADER_BLUE)]
    table.setStyle(TableStyle(style))
    return table


def contract_year_pdf(report: ContractYearReport) -> bytes:
    """A4 landscape: the cover figures, the targets, the months, the envelopes."""
    buffer = io.BytesIO()
    last_day = (date.fromisoformat(report.end) - timedelta(days=1)).isoformat()
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=1.5 * cm,
        rightMargin=1.5 * cm,
        topMargin=1.5 * cm,
        bottomMargin=1.5 * cm,
        title=f"Rapport d'année contractuelle — {report.cpts_name}",
        author=report.cpts_name,
        subject="Accord conventionnel interprofessionnel (ACI) des CPTS",
    )
    styles = getSampleStyleSheet()
    heading = ParagraphStyle("heading", parent=styles["Heading1"], fontName="Helvetica-Bold", fontSize=16)
    subheading = ParagraphStyle("subheading", parent=styles["Heading2"], fontName="Helvetica-Bold", fontSize=12)
    body = ParagraphStyle("body", parent=styles["Normal"], fontName="Helvetica", fontSize=9)
    story: list[Any] = [
        Paragraph(f"{report.cpts_name} — rapport d'année contractuelle", heading),
        Paragraph(
            f"Année du {_day(report.start)} au {_day(last_day)} · FINESS {report.finess or 'non renseigné'} · "
            f"taille {report.size} (ACI)",
            body,
        ),
        Spacer(1, 0.4 * cm),
    ]
    total = report.total
    summary = [
        ["Demandes", "Rendez-vous", "Taux sous 24 h", "Taux de remplissage", "Indemnisation versée",
         "Enveloppe", "Reste", "Projection fin d'année"],
        [_count(total.requests_total), _count(total.booked), _rate(total.rate_within_24h), _rate(total.fill_rate),
         _money(report.compensation.paid), _money(report.compensation.envelope), _money(report.compensation.remaining),
         _money(report.envelope_progress.projected_year_total)],
    ]  # fmt: skip
    story += [_table(summary, [3.2 * cm] * 8), Spacer(1, 0.4 * cm)]
    if report.targets:
        story.append(Paragraph("Objectifs du contrat", subheading))
        rows = [["Indicateur", "Objectif", "Réalisé", "Atteint"]]
        for target in report.targets:
            ratio = target.indicator.startswith(("rate_", "fill_"))
            shown = _rate if ratio else (lambda v: "—" if v is None else french.number(v, 1).translate(_SPACES))
            sense = "au moins" if target.comparator == "min" else "au plus"
            met = {True: "oui", False: "non", None: "—"}[target.met]
            rows.append([labels.indicator(target.indicator, Lang.fr), f"{sense} {shown(target.target)}",
                         shown(target.value), met])  # fmt: skip
        story += [_table(rows, [9 * cm, 4 * cm, 4 * cm, 3 * cm]), Spacer(1, 0.4 * cm)]
    story.append(Paragraph("Mois par mois", subheading))
    months = [["Mois", "Demandes", "Rendez-vous", "Sous 24 h", "Taux 24 h", "Sans solution", "Transférées au 15",
               "Créneaux publiés", "Remplissage", "Professionnels", "Indemnisation"]]  # fmt: skip
    for month in report.months:
        months.append([
            month.month + (" (provisoire)" if month.provisional else ""),
            _count(month.requests_total), _count(month.booked),
            _count(month.booked_within_24h), _rate(month.rate_within_24h), _count(month.no_solution),
            _count(month.transfer_15), _count(month.slots_published), _rate(month.fill_rate),
            _count(month.participating_professionals), _money(month.compensation_paid),
        ])  # fmt: skip
    months.append([
        "Total", _count(total.requests_total), _count(total.booked), _count(total.booked_within_24h),
        _rate(total.rate_within_24h), _count(total.no_solution), _count(total.transfer_15),
        _count(total.slots_published), _rate(total.fill_rate), _count(total.participating_professionals),
        _money(total.compensation_paid),
    ])  # fmt: skip
    month_table = _table(months, [3.4 * cm] + [2.2 * cm] * 8 + [2.8 * cm] * 2)
    month_table.setStyle(TableStyle([("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 9)]))
    story += [month_table, Spacer(1, 0.4 * cm), Paragraph("Enveloppes de la taille de la CPTS (ACI)", subheading)]
    envelope_rows = [["Ligne", "Montant annuel"]] + [
        [line, _money(amount)] for line, amount in report.envelopes.items()
    ]
    story.append(_table(envelope_rows, [9 * cm, 4 * cm]))
    story.append(Spacer(1, 0.3 * cm))
    story.append(
        Paragraph(
            f"Montants en euros ({euros(report.compensation.paid)} € versés). Les mois provisoires ne sont pas "
            "terminés : leurs chiffres peuvent encore changer.",
            body,
        )
    )
    document.build(story)
    return buffer.getvalue()
