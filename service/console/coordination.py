"""The coordinators' side of the console: the month at a glance (figures, targets, charts drawn as
SVG with their numbers as tables) and the exports for people. The figures come from the same
report functions as the API's `/v1/reports/*`; the files from the same renderers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from service import french
from service.accounts.domain import Role
from service.auth import Principal
from service.clock import Now
from service.console import charts, labels
from service.console.session import ConsoleUser
from service.console.views import render
from service.db import SessionDep
from service.errors import Forbidden
from service.reporting import labels as report_labels
from service.reporting import router as reports
from service.reporting import service as reporting
from service.reporting.labels import Lang
from service.reporting.periods import Month, anniversary, contract_year_of_month
from service.reporting.schemas import Dashboard, TargetResult

COORDINATING_ROLES = frozenset({Role.coordinator, Role.admin})
WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
OUTCOME_ORDER = (
    "booked",
    "advice",
    "own_gp",
    "pharmacy",
    "transfer_15",
    "emergency_department",
    "no_solution",
    "patient_declined",
    "unreachable",
    "duplicate",
    "open",
    "unresolved_past_deadline",
)


def coordinator_only(principal: Principal) -> None:
    if principal.role not in COORDINATING_ROLES:
        raise Forbidden("forbidden_role", "The dashboard and the exports are the coordinators'.")


def make_router(route_class: type) -> APIRouter:
    router = APIRouter(prefix="/console", route_class=route_class, include_in_schema=False)
    router.add_api_route("/dashboard", dashboard_page, methods=["GET"])
    router.add_api_route("/exports/{report}.{extension}", download, methods=["GET"])
    return router


def _default_month(principal: Principal, now: datetime) -> Month:
    """In its first week, the month that just ended (the new one has little to show yet); later, the
    current one."""
    today = now.astimezone(principal.tz).date()
    current = Month.of(today)
    return current if today.day > 7 else current.plus(-1)


def _rate(value: float | None) -> str:
    return "—" if value is None else french.percent(value, 1)


def _figure(indicator: str, value: float | None) -> str:
    if value is None:
        return "—"
    if indicator.startswith(("rate_", "fill_")):
        return french.percent(value, 1)
    if indicator.endswith("_hours"):
        return f"{french.number(value, 1)} h"
    return french.number(value)


def _target_rows(targets: list[TargetResult]) -> list[dict[str, Any]]:
    return [
        {
            "label": report_labels.indicator(t.indicator, Lang.fr)
            if t.indicator in report_labels.INDICATORS
            else labels_for_target(t.indicator),
            "target": ("au moins " if t.comparator == "min" else "au plus ") + _figure(t.indicator, t.target),
            "value": _figure(t.indicator, t.value),
            "met": t.met,
        }
        for t in targets
    ]


def labels_for_target(indicator: str) -> str:
    return {"delay_to_appointment_median_hours": "Délai médian jusqu'au rendez-vous"}.get(indicator, indicator)


async def dashboard_page(
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
) -> Response:
    coordinator_only(principal)
    chosen = reporting.parse_month(month) if month else _default_month(principal, now)
    period = await reporting.period(session, principal.cpts_id, chosen, now)
    board = await reporting.dashboard(session, period)
    current = Month.of(now.astimezone(principal.tz).date())
    year_start = contract_year_of_month(period.cpts.contract_start_date, chosen)
    return render(
        request,
        "dashboard.html",
        board=board,
        month=chosen,
        month_label=_month_label(chosen),
        choices=[(str(m), _month_label(m)) for m in (current.plus(-i) for i in range(13))],
        kpis=_kpis(board),
        targets=_target_rows(board.report.targets),
        figures=_figures(board),
        tables=_tables(board),
        year_start=year_start.isoformat(),
        year_label=f"{year_start.strftime('%d/%m/%Y')} – "
        f"{anniversary(period.cpts.contract_start_date, year_start.year + 1).strftime('%d/%m/%Y')}",
        active="dashboard",
    )


def _month_label(month: Month) -> str:
    return f"{report_labels_month(month.month)} {month.year}"


def report_labels_month(number: int) -> str:
    from service.reporting.export import MONTHS_FR

    return MONTHS_FR[number - 1]


def _kpis(board: Dashboard) -> list[dict[str, str]]:
    r = board.report
    targets = {t.indicator: t for t in r.targets}

    def against(indicator: str) -> str:
        target = targets.get(indicator)
        if target is None:
            return ""
        sense = "≥" if target.comparator == "min" else "≤"
        state = {True: "objectif atteint", False: "objectif non atteint", None: ""}[target.met]
        return f"objectif {sense} {_figure(indicator, target.target)} — {state}".rstrip(" —")

    delay = r.delay_to_appointment_hours
    return [
        {"label": "Demandes reçues", "value": french.number(r.requests_total), "note": f"dont {r.via_sas} via le SAS"},
        {
            "label": "Rendez-vous pris",
            "value": french.number(r.booked),
            "note": f"{r.needing_consultation} demandes nécessitant une consultation",
        },
        {"label": "Rendez-vous sous 24 h", "value": _rate(r.rate_within_24h), "note": against("rate_within_24h")},
        {"label": "Rendez-vous sous 48 h", "value": _rate(r.rate_within_48h), "note": against("rate_within_48h")},
        {
            "label": "Délai jusqu'au rendez-vous",
            "value": "—" if delay.median is None else f"{french.number(delay.median, 1)} h",
            "note": "médiane" + ("" if delay.p90 is None else f" ; 90 % en moins de {french.number(delay.p90, 1)} h"),
        },
        {
            "label": "Demande non satisfaite",
            "value": french.number(r.unmet_demand.total),
            "note": f"{r.no_solution} sans solution, {r.unresolved_past_deadline} sans réponse à l'échéance",
        },
        {
            "label": "Taux de remplissage des créneaux",
            "value": _rate(r.fill_rate),
            "note": f"{r.slots_booked} pourvus sur {r.slots_published.count} publiés",
        },
        {
            "label": "Professionnels participants",
            "value": french.number(r.participating_professionals.total),
            "note": against("participating_professionals"),
        },
    ]


def _figures(board: Dashboard) -> dict[str, Any]:
    r = board.report
    outcome_bars = [
        charts.Bar(labels.OUTCOMES.get(o, report_labels.CATEGORIES.get(o, o)), n, french.number(n))
        for o in OUTCOME_ORDER
        if (n := r.by_outcome.get(o, 0))
    ]
    today = board.report.cutoff.date()
    paid = [(m.month, m.paid_to_date) for m in board.envelope.months if m.month <= f"{today:%Y-%m}"]
    return {
        "demand": charts.heatmap(
            board.demand_by_weekday_hour, WEEKDAYS_FR, "Demandes par jour et heure", "heat-demand"
        ),
        "unmet": charts.heatmap(
            board.unmet_by_weekday_hour, WEEKDAYS_FR, "Demande non satisfaite par jour et heure", "heat-unmet"
        ),
        "rates": charts.rate_by_month(
            [(p.month, p.rate_within_24h, p.target) for p in board.contract_year],
            "Rendez-vous sous 24 h, mois par mois",
            "rates",
        ),
        "outcomes": charts.bars(outcome_bars, "Orientation des demandes", "outcomes"),
        "days": charts.supply_and_demand(
            [(d.day, d.requests, d.unmet, d.slots_offered) for d in board.days],
            "Offre et demande, jour par jour",
            "days",
        ),
        "envelope": charts.envelope(
            paid or [(m.month, 0) for m in board.envelope.months[:1]],
            board.envelope.envelope,
            board.envelope.projected_year_total,
            "Enveloppe d'indemnisation",
            "envelope",
        ),
    }


def _tables(board: Dashboard) -> dict[str, Any]:
    r = board.report
    return {
        "demand": list(zip(WEEKDAYS_FR, board.demand_by_weekday_hour, strict=True)),
        "unmet": list(zip(WEEKDAYS_FR, board.unmet_by_weekday_hour, strict=True)),
        "rates": [(p.month, _rate(p.rate_within_24h), _rate(p.target)) for p in board.contract_year],
        "outcomes": [
            (labels.OUTCOMES.get(o, report_labels.CATEGORIES.get(o, o)), r.by_outcome.get(o, 0))
            for o in OUTCOME_ORDER
            if r.by_outcome.get(o, 0)
        ],
        "days": [
            (date.fromisoformat(d.day).strftime("%d/%m"), d.requests, d.unmet, d.slots_offered, d.slots_booked)
            for d in board.days
        ],
        "envelope": [
            (m.month, french.euros(m.paid / 100), french.euros(m.paid_to_date / 100), french.euros(m.remaining / 100))
            for m in board.envelope.months
        ],
        "envelope_total": board.envelope,
    }


# The files a coordinator downloads: (report, extension) -> how to make it with the API's functions.
DOWNLOADS = {
    ("indicateurs", "xlsx"),
    ("indicateurs", "csv"),
    ("indemnisation", "xlsx"),
    ("indemnisation", "csv"),
    ("activite", "csv"),
    ("activite", "xlsx"),
    ("annee", "xlsx"),
    ("annee", "pdf"),
}


async def download(
    report: str,
    extension: str,
    request: Request,
    principal: ConsoleUser,
    session: SessionDep,
    now: Now,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
    start: Annotated[date | None, Query()] = None,
) -> Response:
    """The exports in French, as the API's file operations make them (and audit them)."""
    coordinator_only(principal)
    if (
        (report, extension) not in DOWNLOADS
        or (report != "annee" and month is None)
        or (report == "annee" and not start)
    ):
        return Response("Export inconnu.", status_code=404, media_type="text/plain; charset=utf-8")
    fmt: Any = extension
    if report == "indicateurs":
        answer: Response = await reports.monthly(principal, session, now, month or "", fmt, Lang.fr)
    elif report == "indemnisation":
        answer = await reports.compensation(principal, session, now, month or "", fmt, Lang.fr)
    elif report == "activite":
        answer = await reports.activity(request, principal, session, now, month or "", fmt, Lang.fr)
    else:
        assert start is not None
        answer = await reports.contract_year(principal, session, now, start, fmt, Lang.fr)
    return answer
