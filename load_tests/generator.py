"""A realistic CPTS for load tests and benchmarks, reproducible from a seed.

A large CPTS (size 4): about 200 practitioners of the SNP professions over real communes of
Loire-Atlantique, two weeks of slots, and a month of requests whose arrivals follow the daily
and weekly shape of unscheduled care (Monday and Saturday morning peaks, an evening shoulder,
quiet nights). The structure goes through the service's own code; the volume is bulk-loaded with
COPY, so that a million requests take seconds, not hours.
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.demo import COMMUNES, rpps_with_key
from service.fields import new_reference
from service.orientation.domain import age_band, identity_key, pseudonym
from service.reference.codes import motif_classification
from service.reporting.periods import Month

TZ = "Europe/Paris"
# (profession TRE_G15, specialty TRE_R38, share of members, slot minutes, modality)
PROFESSIONS = (
    ("10", "SM54", 0.45, 20, "AMB"),
    ("10", "SM40", 0.06, 20, "AMB"),
    ("60", None, 0.20, 30, "HH"),
    ("70", None, 0.12, 30, "AMB"),
    ("50", None, 0.07, 30, "AMB"),
    ("40", None, 0.10, 30, "AMB"),
)
# Relative arrivals by local hour: quiet nights, a morning peak, an evening shoulder.
HOURLY = (
    0.2,
    0.1,
    0.1,
    0.1,
    0.1,
    0.2,
    0.5,
    1.2,
    2.6,
    3.0,
    2.8,
    2.4,
    1.8,
    1.6,
    1.8,
    1.9,
    2.0,
    2.1,
    2.3,
    1.9,
    1.2,
    0.8,
    0.5,
    0.3,
)
# Monday .. Sunday.
DAILY = (1.45, 1.0, 1.0, 0.95, 1.05, 1.15, 0.55)
OUTCOMES = (
    ("booked", 0.58),
    ("advice", 0.08),
    ("pharmacy", 0.04),
    ("own_gp", 0.05),
    ("transfer_15", 0.04),
    ("emergency_department", 0.03),
    ("no_solution", 0.06),
    ("patient_declined", 0.03),
    ("unreachable", 0.03),
    ("duplicate", 0.02),
    (None, 0.04),  # never resolved
)
CHANNELS = (("phone", 0.8), ("sas", 0.1), ("pharmacy", 0.05), ("professional", 0.04), ("other", 0.01))
SNP_MOTIFS = sorted(code for code, cls in motif_classification().items() if cls.value in ("snp", "assess"))
RED_MOTIFS = sorted(code for code, cls in motif_classification().items() if cls.value == "transfer_15")


def arrival_weight(local: datetime) -> float:
    """How busy the line is at this local hour."""
    weight = HOURLY[local.hour] * DAILY[local.weekday()]
    if local.weekday() == 0 and 8 <= local.hour < 12:
        weight *= 1.3  # Monday morning: the weekend's backlog
    if local.weekday() == 5:
        weight *= 1.5 if local.hour < 13 else 0.5  # Saturday: mornings, GP practices close after
    return weight


def arrivals(rng: random.Random, start: datetime, end: datetime, count: int, tz: ZoneInfo) -> list[datetime]:
    """`count` arrival instants in [start, end), following the weekly and daily shape."""
    hours: list[datetime] = []
    cursor = start
    while cursor < end:
        hours.append(cursor)
        cursor += timedelta(hours=1)
    weights = [arrival_weight(h.astimezone(tz)) for h in hours]
    picked = rng.choices(hours, weights=weights, k=count)
    return sorted(h + timedelta(seconds=rng.randrange(3600)) for h in picked)


@dataclass
class Member:
    id: uuid.UUID
    site_id: uuid.UUID
    profession: str
    specialty: str | None
    minutes: int
    modality: str
    communes: list[str]


@dataclass
class GeneratedCpts:
    cpts_id: uuid.UUID
    members: list[Member] = field(default_factory=list)
    handler_ids: list[uuid.UUID] = field(default_factory=list)
    client_id: uuid.UUID | None = None
    credentials: dict[str, Any] = field(default_factory=dict)


def _pick(rng: random.Random, table: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([value for value, _ in table], weights=[weight for _, weight in table])[0]


async def create_members(conn: asyncpg.Connection, cpts_id: uuid.UUID, count: int, rng: random.Random) -> list[Member]:
    members: list[Member] = []
    practitioner_rows, site_rows = [], []
    now = datetime.now(UTC)
    shares = [p[2] for p in PROFESSIONS]
    for index in range(count):
        profession, specialty, _, minutes, modality = rng.choices(PROFESSIONS, weights=shares)[0]
        insee, postal, town, lat, lon = rng.choice(COMMUNES)
        member = Member(
            uuid.uuid4(), uuid.uuid4(), profession, specialty, minutes, modality,
            sorted({insee, *(c[0] for c in rng.sample(COMMUNES, 3))}),
        )  # fmt: skip
        rpps = rpps_with_key(rng)
        practitioner_rows.append(
            (
                member.id,
                cpts_id,
                "rpps",
                rpps,
                "8" + rpps,
                f"Membre{index:03d}",
                "Test",
                profession,
                specialty,
                True,
                now,
                now,
            )
        )
        site_rows.append(
            (member.site_id, cpts_id, member.id, f"Cabinet {index}", f"{index} rue du Port, {town}", postal, insee,
             round(lat + rng.uniform(-0.01, 0.01), 5), round(lon + rng.uniform(-0.01, 0.01), 5), member.communes, now)
        )  # fmt: skip
        members.append(member)
    await conn.copy_records_to_table(
        "practitioner",
        records=practitioner_rows,
        columns=["id", "cpts_id", "id_type", "national_id", "idnps", "family_name", "given_name", "profession",
                 "specialty", "active", "created_at", "updated_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "site",
        records=site_rows,
        columns=["id", "cpts_id", "practitioner_id", "name", "address", "postal_code", "commune_insee", "latitude",
                 "longitude", "home_visit_communes", "created_at"],
    )  # fmt: skip
    return members


@dataclass
class SlotRow:
    id: uuid.UUID
    member: Member
    start: datetime
    end: datetime


def plan_slots(
    rng: random.Random, members: Sequence[Member], first_day: date, days: int, per_day: int, tz: ZoneInfo
) -> list[SlotRow]:
    """About `per_day` slots a day over the practitioners' working hours (8:00-19:40), never
    overlapping for one practitioner."""
    slots: list[SlotRow] = []
    per_member = per_day / max(1, len(members))
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        if day.weekday() == 6:
            continue
        for member in members:
            target = per_member if day.weekday() < 5 else per_member / 2
            count = int(target) + (1 if rng.random() < target - int(target) else 0)
            step = member.minutes
            starts = sorted(rng.sample(range(8 * 60, 19 * 60 + 40, step), min(count, (11 * 60 + 40) // step)))
            for minute in starts:
                start = datetime.combine(day, time(minute // 60, minute % 60), tz).astimezone(UTC)
                slots.append(SlotRow(uuid.uuid4(), member, start, start + timedelta(minutes=member.minutes)))
    return slots


async def copy_slots(
    conn: asyncpg.Connection,
    cpts_id: uuid.UUID,
    publisher_id: uuid.UUID,
    client_id: uuid.UUID | None,
    slots: Sequence[SlotRow],
    booked: set[uuid.UUID],
    published_at: datetime,
    prefix: str,
) -> None:
    rows = [
        (s.id, cpts_id, publisher_id, client_id, f"{prefix}-{i}", s.member.id, s.member.site_id, s.start, s.end,
         s.member.modality, ["CPTS", "SNP"], s.member.specialty,
         s.member.communes if s.member.modality == "HH" else [], "booked" if s.id in booked else "free", 1,
         min(published_at, s.start - timedelta(days=2)), published_at)
        for i, s in enumerate(slots)
    ]  # fmt: skip
    await conn.copy_records_to_table(
        "slot",
        records=rows,
        columns=["id", "cpts_id", "publisher_id", "client_id", "external_id", "practitioner_id", "site_id",
                 "start_at", "end_at", "modality", "visibility", "specialty", "home_visit_communes", "status",
                 "version", "published_at", "updated_at"],
    )  # fmt: skip


@dataclass
class MonthPlan:
    requests: list[tuple[Any, ...]]
    bookings: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    booked_slots: set[uuid.UUID]


def plan_month(
    rng: random.Random,
    generated: GeneratedCpts,
    month: Month,
    count: int,
    slots: Sequence[SlotRow],
    pseudonym_key: bytes,
) -> MonthPlan:
    """`count` resolved requests received in `month`; a booking goes to the earliest free GP slot
    at least 30 minutes after reception (within 72 h, else no solution)."""
    tz = ZoneInfo(TZ)
    start, end = month.bounds(tz)
    free = deque(sorted((s for s in slots if s.member.profession == "10"), key=lambda s: s.start))
    booked: set[uuid.UUID] = set()
    requests: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    bookings: list[tuple[Any, ...]] = []
    for received in arrivals(rng, start, end, count, tz):
        request_id = uuid.uuid4()
        outcome = _pick(rng, OUTCOMES)
        slot = None
        if outcome == "booked":
            while free and free[0].start < received + timedelta(minutes=30):
                free.popleft()  # too early for this patient: stays unfilled
            if free and free[0].start < received + timedelta(hours=72):
                slot = free.popleft()
            else:
                outcome = "no_solution"
        birth = date(rng.randint(1930, 2025), rng.randint(1, 12), rng.randint(1, 28))
        family, given = f"Patient{rng.randrange(count // 3 + 1)}", "Test"
        red = outcome in ("transfer_15", "emergency_department") and rng.random() < 0.8
        motif = rng.choice(RED_MOTIFS if red else SNP_MOTIFS)
        handler = rng.choice(generated.handler_ids)
        requests.append(
            (request_id, generated.cpts_id, received, received + timedelta(hours=24), _pick(rng, CHANNELS),
             rng.random() < 0.1, "self", family, given, birth, "0600000000",
             pseudonym(pseudonym_key, identity_key(family, given, birth, None, None)),
             rng.choice("FM"), age_band(birth, received.astimezone(tz).date()), rng.choice(COMMUNES)[0], "PROV",
             motif, motif_classification()[motif].value, [], "10", "SM54", ["AMB", "HH", "VR"],
             "closed" if outcome not in ("booked", None) else ("booked" if outcome == "booked" else "open"),
             "user", handler, received, received)
        )  # fmt: skip
        if outcome is None:
            continue
        decided = received + timedelta(minutes=rng.randint(2, 25))
        booking_id = None
        if slot is not None:
            booking_id = uuid.uuid4()
            booked.add(slot.id)
            outcome_status = "fulfilled" if rng.random() < 0.9 else "noshow"
            bookings.append(
                (booking_id, generated.cpts_id, request_id, slot.id, "booked", new_reference(), handler, decided,
                 handler, outcome_status, slot.end, decided)
            )  # fmt: skip
        events.append((generated.cpts_id, request_id, outcome, decided, "user", handler, booking_id))
    return MonthPlan(requests, bookings, events, booked)


async def copy_month(conn: asyncpg.Connection, plan: MonthPlan) -> None:
    """Requests, bookings and events, in that order (their slots must exist already)."""
    await conn.copy_records_to_table(
        "care_request",
        records=plan.requests,
        columns=["id", "cpts_id", "received_at", "deadline_at", "channel", "via_sas", "caller_relation",
                 "patient_family_name", "patient_given_name", "patient_birth_date", "patient_phone",
                 "patient_pseudonym", "patient_sex", "patient_age_band", "patient_commune_insee", "identity_status",
                 "motif", "motif_classification", "red_flags", "needs_profession", "needs_specialty",
                 "needs_modalities", "status", "created_by_kind", "created_by_id", "created_at", "updated_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "booking",
        records=plan.bookings,
        columns=["id", "cpts_id", "request_id", "slot_id", "status", "reference", "held_by_id", "booked_at",
                 "booked_by_id", "outcome", "outcome_at", "created_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "orientation_event",
        records=plan.events,
        columns=["cpts_id", "request_id", "kind", "at", "actor_kind", "actor_id", "booking_id"],
    )


PASSWORD = "load test password"  # noqa: S105 - generated test accounts


async def create_structure(
    database_url: str, name: str, practitioners: int, rng: random.Random, handlers: int = 4
) -> GeneratedCpts:
    """The CPTS, its staff and its software client through the service's own code; the members
    by COPY."""
    from service.accounts import service as accounts_service
    from service.accounts.domain import password_hasher
    from service.accounts.schemas import ClientCreate, UserCreate
    from service.cpts import service as cpts_service
    from service.cpts.schemas import CptsCreate
    from service.db import create_engine, create_sessionmaker, session_scope
    from service.destinations import WebhookPolicy

    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    hasher = password_hasher(1, 64)
    suffix = uuid.uuid4().hex[:6]
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            cpts = await cpts_service.create(
                session,
                CptsCreate(
                    name=name,
                    population=250_000,
                    contract_start_date=date(2025, 1, 1),
                    territory=[c[0] for c in COMMUNES],
                ),
                datetime.now(UTC),
            )
            generated = GeneratedCpts(cpts.id)
            staff = [("coordinator", "coordinator"), ("admin", "admin")] + [
                (f"handler{i}", "handler") for i in range(handlers)
            ]
            for login, role in staff:
                email = f"{login}.{suffix}@load.test"
                user = await accounts_service.create_user(
                    session,
                    hasher,
                    cpts.id,
                    UserCreate.model_validate(
                        {"email": email, "display_name": login, "role": role, "password": PASSWORD}
                    ),
                )
                generated.credentials.setdefault(role, []).append(email)
                if role == "handler":
                    generated.handler_ids.append(user.id)
            key = cpts.pseudonym_key
        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            generated.members = await create_members(conn, generated.cpts_id, practitioners, rng)
        finally:
            await conn.close()
        async with session_scope(create_sessionmaker(engine)) as session:
            client = await accounts_service.create_client(
                session,
                generated.cpts_id,
                ClientCreate(name="Agenda (load)", practitioner_ids=[m.id for m in generated.members]),
                WebhookPolicy(),  # no webhook URL
            )
            generated.client_id = client.id
            generated.credentials["api_key"] = client.api_key
        generated.credentials["pseudonym_key"] = key
        return generated
    finally:
        await engine.dispose()


async def generate(
    database_url: str,
    *,
    seed: int = 7,
    name: str = "CPTS Estuaire (load)",
    practitioners: int = 200,
    history: Month | None = None,
    history_requests: int = 10_000,
    history_slots: int = 20_000,
    future_days: int = 14,
    future_slots_per_day: int = 1200,
) -> GeneratedCpts:
    """A large CPTS: members, a resolved month of history (requests, bookings, slots) and free
    slots for the coming days."""
    rng = random.Random(seed)
    tz = ZoneInfo(TZ)
    generated = await create_structure(database_url, name, practitioners, rng)
    assert generated.client_id is not None
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        now = datetime.now(UTC)
        if history is not None:
            days = (history.next().first_day - history.first_day).days
            working_days = sum(1 for d in range(days) if (history.first_day + timedelta(days=d)).weekday() != 6)
            slots = plan_slots(rng, generated.members, history.first_day, days, history_slots // working_days, tz)
            plan = plan_month(rng, generated, history, history_requests, slots, generated.credentials["pseudonym_key"])
            await copy_slots(
                conn,
                generated.cpts_id,
                generated.client_id,
                generated.client_id,
                slots,
                plan.booked_slots,
                now,
                f"h{history}",
            )
            await copy_month(conn, plan)
        if future_days:
            tomorrow = (now.astimezone(tz) + timedelta(days=1)).date()
            future = plan_slots(rng, generated.members, tomorrow, future_days, future_slots_per_day, tz)
            await copy_slots(conn, generated.cpts_id, generated.client_id, generated.client_id, future, set(), now, "f")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return generated


def credentials_document(generated: GeneratedCpts, history: Month | None) -> dict[str, Any]:
    """What the load scenarios need to act as the CPTS's staff and practice software (no patient
    data, no pseudonym key)."""
    return {
        "cpts_id": str(generated.cpts_id),
        "password": PASSWORD,
        "handlers": generated.credentials.get("handler", []),
        "coordinators": generated.credentials.get("coordinator", []),
        "api_key": generated.credentials["api_key"],
        "practitioners": [
            {
                "id": str(m.id),
                "site_id": str(m.site_id),
                "profession": m.profession,
                "specialty": m.specialty,
                "minutes": m.minutes,
                "modality": m.modality,
            }
            for m in generated.members
        ],
        "communes": sorted({c[0] for c in COMMUNES}),
        "history_month": str(history) if history else None,
    }


def main() -> None:
    """Generate a large CPTS in the service's database (DATABASE_URL, or the embedded server that
    `make run` uses) and write the credentials the locust scenarios read."""
    import argparse
    import asyncio
    import json
    import os
    from pathlib import Path

    from service import migrate
    from service.cli import database
    from service.config import get_settings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--practitioners", type=int, default=200)
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "results" / "credentials.json")
    args = parser.parse_args()
    history = Month.of(datetime.now(UTC).date()).plus(-1)
    with database(get_settings()) as url:
        migrate.upgrade(url)
        generated = asyncio.run(generate(url, seed=args.seed, practitioners=args.practitioners, history=history))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(credentials_document(generated, history), indent=2))
    os.chmod(args.output, 0o600)  # an API key and passwords, if only for load-test accounts
    print(f"CPTS {generated.cpts_id}: {len(generated.members)} practitioners; credentials in {args.output}")


if __name__ == "__main__":
    main()
