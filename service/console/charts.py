"""Charts drawn on the server as SVG: no chart library, nothing for the Content-Security-Policy to
allow (presentation attributes, no inline style or script), and every chart comes with its numbers
as a table in the page (screen readers, copying). Each function answers the markup of one figure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from service import french

# A sequential blue scale (light to dark), distinguishable in grey and by colour-blind readers.
BLUES = ("#f1f6fb", "#d3e4f3", "#a9cbe6", "#74a9d4", "#3f84bf", "#1c5f9e", "#0b3f73")
INK, MUTED, GRID, ACCENT, WARN = "#1b1f24", "#4a5361", "#c4cad3", "#0b4f8a", "#b34700"


def _svg(width: int, height: int, title: str, description: str, body: list[str], ident: str) -> Markup:
    """The figure: an image with a title and a description (`aria-labelledby`)."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" focusable="false">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(description)}</desc>',
        *body,
        "</svg>",
    ]
    return Markup("".join(parts))  # noqa: S704 - every text is escaped above


def _text(x: float, y: float, text: str, *, anchor: str = "middle", size: int = 11, fill: str = INK) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}">{escape(text)}</text>'
    )


def heatmap(matrix: Sequence[Sequence[int]], rows: Sequence[str], title: str, ident: str) -> Markup:
    """Weekdays (rows) by hour (24 columns): darker where more calls came in."""
    cell, left, top = 22, 78, 22
    width, height = left + 24 * cell + 10, top + len(rows) * cell + 10
    peak = max((max(r) for r in matrix), default=0) or 1
    body = [_text(left + h * cell + cell / 2, top - 7, f"{h}", size=10, fill=MUTED) for h in range(0, 24, 2)]
    for r, label in enumerate(rows):
        y = top + r * cell
        body.append(_text(left - 8, y + cell / 2 + 4, label, anchor="end", fill=MUTED))
        for h, value in enumerate(matrix[r]):
            shade = BLUES[min(len(BLUES) - 1, round(value / peak * (len(BLUES) - 1)))] if value else "#ffffff"
            body.append(
                f'<rect x="{left + h * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" rx="2" fill="{shade}" '
                f'stroke="{GRID}" stroke-width="0.5"><title>{escape(label)} {h} h : {value}</title></rect>'
            )
            if value:
                colour = "#ffffff" if value / peak > 0.55 else INK
                body.append(_text(left + h * cell + (cell - 2) / 2, y + cell / 2 + 3, str(value), size=9, fill=colour))
    total = sum(sum(r) for r in matrix)
    description = f"{total} au total ; le plus : {peak} sur une heure d'un jour de la semaine."
    return _svg(width, height, title, description, body, ident)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as written next to the bar


def bars(items: Sequence[Bar], title: str, ident: str, colour: str = ACCENT) -> Markup:
    """Horizontal bars, longest first as given, each with its value."""
    row, left, right = 26, 200, 60
    width, height = 540, 14 + len(items) * row
    peak = max((b.value for b in items), default=0) or 1
    body = []
    for i, item in enumerate(items):
        y = 8 + i * row
        length = (width - left - right) * item.value / peak
        body.append(_text(left - 8, y + 15, item.label, anchor="end"))
        body.append(f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" rx="2" fill="{colour}"/>')
        body.append(_text(left + length + 6, y + 15, item.shown, anchor="start"))
    description = "; ".join(f"{b.label} : {b.shown}" for b in items)
    return _svg(width, height, title, description, body, ident)


def rate_by_month(points: Sequence[tuple[str, float | None, float | None]], title: str, ident: str) -> Markup:
    """Columns of the rate (0-100 %) month by month, with the target as a dashed line."""
    left, bottom, top, column = 46, 30, 14, 54
    width, height = left + max(1, len(points)) * column + 16, 220
    plot = height - bottom - top
    body = []
    for share in (0, 0.25, 0.5, 0.75, 1):
        y = top + plot * (1 - share)
        body.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" stroke-width="0.6"/>'
        )
        body.append(_text(left - 6, y + 4, french.percent(share), anchor="end", size=10, fill=MUTED))
    for i, (month, rate, target) in enumerate(points):
        x = left + i * column + 8
        if rate is not None:
            y = top + plot * (1 - rate)
            colour = ACCENT if target is None or rate >= target else WARN
            body.append(f'<rect x="{x}" y="{y:.1f}" width="{column - 16}" height="{plot * rate:.1f}" fill="{colour}"/>')
            body.append(_text(x + (column - 16) / 2, y - 4, french.percent(rate), size=10))
        else:
            body.append(_text(x + (column - 16) / 2, top + plot - 4, "—", size=10, fill=MUTED))
        if target is not None:
            ty = top + plot * (1 - target)
            body.append(
                f'<line x1="{x - 6}" x2="{x + column - 10}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="{INK}" '
                'stroke-width="1.5" stroke-dasharray="4 3"/>'
            )
        body.append(_text(x + (column - 16) / 2, height - 10, month[5:] + "/" + month[2:4], size=10, fill=MUTED))
    shown = [f"{m} : {'—' if r is None else french.percent(r)}" for m, r, _ in points]
    targets = {t for _, _, t in points if t is not None}
    description = "; ".join(shown) + (f". Objectif : {french.percent(max(targets))}." if targets else ".")
    return _svg(width, height, title, description, body, ident)


def supply_and_demand(days: Sequence[tuple[str, int, int, int]], title: str, ident: str) -> Markup:
    """Day by day: calls (dark) against slots offered (light), and the unmet calls marked."""
    left, bottom, top = 40, 52, 12
    step = 22
    width, height = left + len(days) * step + 12, 240
    plot = height - bottom - top
    peak = max((max(d[1], d[3]) for d in days), default=0) or 1
    body = []
    for share in (0, 0.5, 1):
        y = top + plot * (1 - share)
        body.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" stroke-width="0.6"/>'
        )
        body.append(_text(left - 6, y + 4, french.number(round(peak * share)), anchor="end", size=10, fill=MUTED))
    for i, (day, requests, unmet, offered) in enumerate(days):
        x = left + i * step + 2
        for offset, value, colour in ((0, offered, BLUES[2]), (9, requests, ACCENT)):
            h = plot * value / peak
            body.append(f'<rect x="{x + offset}" y="{top + plot - h:.1f}" width="8" height="{h:.1f}" fill="{colour}"/>')
        if unmet:
            body.append(
                f'<circle cx="{x + 13}" cy="{top + plot - plot * requests / peak - 6:.1f}" r="3" fill="{WARN}"/>'
            )
        if i % 5 == 0:
            body.append(_text(x + 8, top + plot + 16, day[8:] + "/" + day[5:7], size=10, fill=MUTED))
    legend_y = height - 18
    body += [
        f'<rect x="{left + 6}" y="{legend_y}" width="10" height="10" fill="{BLUES[2]}"/>',
        _text(left + 20, legend_y + 9, "créneaux offerts", anchor="start", size=10),
        f'<rect x="{left + 130}" y="{legend_y}" width="10" height="10" fill="{ACCENT}"/>',
        _text(left + 144, legend_y + 9, "demandes", anchor="start", size=10),
        f'<circle cx="{left + 230}" cy="{legend_y + 5}" r="4" fill="{WARN}"/>',
        _text(left + 238, legend_y + 9, "demande non satisfaite", anchor="start", size=10),
    ]
    description = (
        f"{sum(d[1] for d in days)} demandes et {sum(d[3] for d in days)} créneaux offerts sur "
        f"{len(days)} jours ; {sum(d[2] for d in days)} demandes non satisfaites."
    )
    return _svg(width, height, title, description, body, ident)


def _nice(cents: int) -> int:
    """A round ceiling for an axis in euros: 1, 2 or 5 times a power of ten."""
    euros = cents / 100
    power: int = 10 ** (len(str(int(euros))) - 1)
    for step in (1, 2, 5, 10):
        if euros <= step * power:
            return step * power * 100
    return int(euros) * 100


def envelope(months: Sequence[tuple[str, int]], total: int, projected: int, title: str, ident: str) -> Markup:
    """What the envelope paid, cumulated month by month, against the envelope; the projection."""
    left, bottom, top, column = 70, 30, 14, 48
    width, height = left + max(1, len(months)) * column + 16, 220
    plot = height - bottom - top
    ceiling = _nice(max(total, projected, months[-1][1] if months else 0) or 1)
    body = []

    def y_of(cents: int) -> float:
        return top + plot * (1 - cents / ceiling)

    for share in (0, 0.5, 1):
        cents = round(ceiling * share)
        body.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y_of(cents):.1f}" y2="{y_of(cents):.1f}" '
            f'stroke="{GRID}" stroke-width="0.6"/>'
        )
        body.append(
            _text(
                left - 6,
                y_of(cents) + 4,
                french.euros(cents // 100),
                anchor="end",
                size=10,
                fill=MUTED,
            )
        )
    for i, (month, cumulated) in enumerate(months):
        x = left + i * column + 8
        body.append(
            f'<rect x="{x}" y="{y_of(cumulated):.1f}" width="{column - 16}" '
            f'height="{plot * cumulated / ceiling:.1f}" fill="{BLUES[4]}"/>'
        )
        body.append(_text(x + (column - 16) / 2, height - 10, month[5:] + "/" + month[2:4], size=10, fill=MUTED))
    body.append(
        f'<line x1="{left}" x2="{width - 8}" y1="{y_of(total):.1f}" y2="{y_of(total):.1f}" stroke="{INK}" '
        'stroke-width="1.5"/>'
    )
    body.append(_text(width - 10, y_of(total) - 5, "enveloppe", anchor="end", size=10))
    if projected:
        body.append(
            f'<line x1="{left}" x2="{width - 8}" y1="{y_of(projected):.1f}" y2="{y_of(projected):.1f}" '
            f'stroke="{WARN}" stroke-width="1.5" stroke-dasharray="5 4"/>'
        )
        body.append(_text(width - 10, y_of(projected) - 5, "projection", anchor="end", size=10, fill=WARN))
    description = (
        f"Versé à ce jour : {french.euros((months[-1][1] if months else 0) / 100)} sur "
        f"{french.euros(total / 100)} ; projection : {french.euros(projected / 100)}."
    )
    return _svg(width, height, title, description, body, ident)
