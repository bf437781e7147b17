"""`snp seed-demo`: a demo CPTS of realistic size around Nantes, created through the same service
functions as the API. Running it again refreshes the credentials instead of duplicating."""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts import repository as accounts_repository
from service.accounts import service as accounts_service
from service.accounts.domain import Role, new_api_key, password_hasher
from service.accounts.models import SoftwareClient
from service.accounts.schemas import ClientCreate, UserCreate
from service.auth import Principal
from service.bookings import service as bookings_service
from service.bookings.schemas import CancelIn, OutcomeIn
from service.clock import utc_now
from service.config import Settings
from service.cpts import repository as cpts_repository
from service.cpts import service as cpts_service
from service.cpts.models import Cpts
from service.cpts.schemas import CptsCreate
from service.destinations import WebhookPolicy
from service.flows import orientation as flows_orientation
from service.orientation import service as requests_service
from service.orientation.schemas import OrientationIn, RequestCreate
from service.practitioners import service as practitioners_service
from service.practitioners.domain import luhn_valid
from service.practitioners.models import Practitioner, Site
from service.practitioners.schemas import PractitionerCreate, SiteIn
from service.slots import service as slots_service
from service.slots.schemas import MAX_BATCH

DEMO_NAME = "CPTS Estuaire de la Loire (démo)"
DEMO_EMAIL_DOMAIN = "demo.snp.invalid"
CLIENT_NAME = "Agenda libéral (démo)"

# Real communes of Loire-Atlantique: INSEE code, postal code, name, latitude, longitude.
COMMUNES = [
    ("44109", "44000", "Nantes", 47.2184, -1.5536),
    ("44162", "44800", "Saint-Herblain", 47.2122, -1.6497),
    ("44143", "44400", "Rezé", 47.1833, -1.5500),
    ("44114", "44700", "Orvault", 47.2711, -1.6228),
    ("44215", "44120", "Vertou", 47.1689, -1.4697),
    ("44026", "44470", "Carquefou", 47.2975, -1.4914),
    ("44190", "44230", "Saint-Sébastien-sur-Loire", 47.2081, -1.5014),
    ("44035", "44240", "La Chapelle-sur-Erdre", 47.2994, -1.5519),
    ("44020", "44340", "Bouguenais", 47.1778, -1.6236),
    ("44047", "44220", "Couëron", 47.2156, -1.7228),
    ("44172", "44980", "Sainte-Luce-sur-Loire", 47.2500, -1.4850),
    ("44009", "44115", "Basse-Goulaine", 47.2122, -1.4661),
    ("44204", "44470", "Thouaré-sur-Loire", 47.2675, -1.4403),
    ("44194", "44880", "Sautron", 47.2636, -1.6700),
    ("44074", "44610", "Indre", 47.1997, -1.6731),
    ("44198", "44840", "Les Sorinières", 47.1481, -1.5289),
    ("44018", "44830", "Bouaye", 47.1428, -1.6939),
    ("44101", "44620", "La Montagne", 47.1881, -1.6853),
    ("44150", "44860", "Saint-Aignan-Grandlieu", 47.1239, -1.6342),
    ("44209", "44119", "Treillières", 47.3317, -1.6258),
]
POPULATION = 182_000  # size 4

# (profession, specialty, how many)
MEMBERS = [
    ("10", "SM54", 14),  # general practitioners
    ("10", "SM40", 3),  # paediatricians
    ("60", None, 8),  # nurses
    ("70", None, 5),  # physiotherapists
    ("50", None, 3),  # midwives
    ("40", None, 3),  # dentists
]
FAMILY_NAMES = [
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent",
    "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David", "Bertrand", "Morel", "Fournier", "Girard",
    "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent", "Muller", "Lefèvre", "Faure", "André",
    "Mercier", "Blanc", "Guérin", "Boyer", "Garnier", "Chevalier", "Le Gall", "Le Goff", "Guillou", "Rivière",
]  # fmt: skip
GIVEN_NAMES = [
    "Camille", "Léa", "Manon", "Chloé", "Sarah", "Julie", "Claire", "Anne", "Sophie", "Élise",
    "Thomas", "Nicolas", "Julien", "Antoine", "Pierre", "Maxime", "Hugo", "Louis", "Mathieu", "Yann",
]  # fmt: skip
STREETS = ["rue de la Paix", "boulevard des Poilus", "rue du Marché", "avenue de la Gare", "place de l'Église"]


def rpps_with_key(rng: random.Random) -> str:
    """An 11-digit RPPS-like number whose last digit is a valid Luhn key."""
    body = "10" + "".join(str(rng.randrange(10)) for _ in range(8))
    for key in range(10):
        candidate = body + str(key)
        if luhn_valid(candidate):
            return candidate
    raise AssertionError("unreachable: one Luhn key always fits")


def adeli_number(rng: random.Random) -> str:
    return "44" + "".join(str(rng.randrange(10)) for _ in range(7))


def demo_practitioners(seed: int = 44) -> list[PractitionerCreate]:
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    people: list[PractitionerCreate] = []
    for profession, specialty, count in MEMBERS:
        for _ in range(count):
            insee, postal, _town, lat, lon = rng.choice(COMMUNES[:10])
            family, given = rng.choice(FAMILY_NAMES), rng.choice(GIVEN_NAMES)
            national = {"rpps": rpps_with_key(rng)} if profession in ("10", "40", "50", "60", "70") else {}
            # Nurses and physiotherapists visit patients at home in their commune and the next ones.
            neighbours = [c[0] for c in rng.sample(COMMUNES[:10], 3)] if profession in ("60", "70", "10") else []
            street = f"{rng.randint(1, 120)} {rng.choice(STREETS)}"  # the town comes with the postal code
            latitude = round(lat + rng.uniform(-0.01, 0.01), 5)
            longitude = round(lon + rng.uniform(-0.01, 0.01), 5)
            phone = f"02 40 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
            site = SiteIn(
                name=f"Cabinet {family}",
                address=street,
                postal_code=postal,
                commune_insee=insee,
                latitude=latitude,
                longitude=longitude,
                home_visit_communes=sorted({insee, *neighbours}),
                phone=phone,  # the practice's number, read to the patient
            )
            people.append(
                PractitionerCreate(
                    **national,
                    family_name=family,
                    given_name=given,
                    profession=profession,
                    specialty=specialty,
                    phone=phone,
                    sites=[site],
                )
            )
    return people


# Per profession: (slot minutes, modality, daily starts as (hour, minute)).
DAILY_SLOTS = {
    "10": (20, "AMB", [(8, 40), (11, 40), (14, 0), (17, 40), (18, 20)]),
    "60": (30, "HH", [(7, 30), (12, 0), (17, 0)]),
    "70": (30, "AMB", [(12, 30), (18, 30)]),
    "50": (30, "AMB", [(9, 0), (16, 0)]),
    "40": (30, "AMB", [(11, 30), (17, 30)]),
}
DEMO_DAYS = 14


def demo_slot_items(
    practitioners: list[Practitioner],
    sites: dict[uuid.UUID, uuid.UUID],
    tz: str,
    now: datetime,
    days: int = DEMO_DAYS,
    first_day: date | None = None,
    seed: int = 7,
    share: float = 0.75,
) -> list[dict[str, Any]]:
    """Slots from `first_day` (default: today) for `days` more days in each member's own agenda, in
    local time, starting after `now` (the moment they are published). Stable external ids, so that
    running the seed again leaves existing slots unchanged."""
    rng = random.Random(seed)  # noqa: S311 - demo data
    zone = ZoneInfo(tz)
    today = first_day or now.astimezone(zone).date()
    items: list[dict[str, Any]] = []
    for index, practitioner in enumerate(sorted(practitioners, key=lambda p: p.idnps)):
        minutes, modality, starts = DAILY_SLOTS[practitioner.profession]
        for offset in range(days + 1):
            day = today + timedelta(days=offset)
            if day.weekday() == 6 or (day.weekday() == 5 and index % 3):
                continue  # Sundays off; a third of members also work on Saturday mornings
            for hour, minute in starts:
                if day.weekday() == 5 and hour >= 13:
                    continue
                if rng.random() >= share:
                    continue  # not every member opens every slot every day
                start = datetime.combine(day, time(hour, minute), zone)
                if start <= now:
                    continue
                external_id = f"demo-{practitioner.idnps}-{start:%Y%m%d%H%M}"
                items.append(
                    {
                        "external_id": external_id,
                        "practitioner_id": str(practitioner.id),
                        "site_id": str(sites[practitioner.id]),
                        "start": start.isoformat(),
                        "end": (start + timedelta(minutes=minutes)).isoformat(),
                        "modality": modality,
                        # The demo agenda software's own page of the slot (.invalid: it never resolves).
                        "agenda_url": f"https://agenda.demo.snp.invalid/rdv/{external_id}",
                    }
                )
    return items


async def _publisher(
    session: AsyncSession, cpts: Cpts, client_id: uuid.UUID
) -> tuple[Principal, list[Practitioner], dict[uuid.UUID, uuid.UUID]]:
    """The demo software client as a principal, its practitioners and their first sites."""
    practitioners = list(await session.scalars(select(Practitioner).where(Practitioner.cpts_id == cpts.id)))
    sites = {
        row[0]: row[1]
        for row in await session.execute(
            select(Site.practitioner_id, func.min(cast(Site.id, Text)))
            .where(Site.cpts_id == cpts.id)
            .group_by(Site.practitioner_id)
        )
    }
    principal = Principal(
        kind="client",
        id=client_id,
        cpts_id=cpts.id,
        role=Role.software,
        timezone=cpts.timezone,
        practitioner_ids=frozenset(p.id for p in practitioners),
    )
    return principal, practitioners, {k: uuid.UUID(v) for k, v in sites.items()}


async def publish_demo_slots(session: AsyncSession, cpts: Cpts, client_id: uuid.UUID, now: datetime) -> dict[str, int]:
    """Publish the demo agenda as the demo software client would, through the same code path."""
    principal, practitioners, sites = await _publisher(session, cpts, client_id)
    items = demo_slot_items(practitioners, sites, cpts.timezone, now)
    counts: dict[str, int] = {}
    for chunk in range(0, len(items), MAX_BATCH):
        for result in await slots_service.publish(session, principal, items[chunk : chunk + MAX_BATCH], now):
            counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    return counts


@dataclass
class DemoResult:
    cpts_id: uuid.UUID
    created: bool
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # role -> (email, password)
    client_id: uuid.UUID | None = None
    api_key: str = ""
    practitioners: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "cpts_id": str(self.cpts_id),
            "created": self.created,
            "users": {role: {"email": e, "password": p} for role, (e, p) in self.users.items()},
            "client": {"id": str(self.client_id), "api_key": self.api_key},
            "practitioners": self.practitioners,
            **self.extra,
        }

    def lines(self) -> list[str]:
        verb = "Created" if self.created else "Refreshed"
        out = [
            f"{verb} demo CPTS {self.cpts_id} ({self.practitioners} practitioners).",
            "Staff (POST /v1/auth/token with username=e-mail, password):",
        ]
        out += [f"  {role:<12} {email}  password: {password}" for role, (email, password) in self.users.items()]
        out.append(f"Software client {self.client_id}: API key {self.api_key}")
        out += [f"{key}: {value}" for key, value in self.extra.items()]
        return out


async def seed(session: AsyncSession, settings: Settings) -> DemoResult:
    now = utc_now()
    hasher = password_hasher(settings.argon2_time_cost, settings.argon2_memory_kib)
    cpts = await session.scalar(select(Cpts).where(Cpts.name == DEMO_NAME))
    created = cpts is None
    if cpts is None:
        cpts = await cpts_service.create(
            session,
            CptsCreate(
                name=DEMO_NAME,
                population=POPULATION,
                timezone="Europe/Paris",
                contract_start_date=date(now.year - 1, 7, 1),
                territory=[c[0] for c in COMMUNES[:10]],
            ),
            now,
        )
        for data in demo_practitioners():
            await practitioners_service.create(session, cpts.id, data, now)
    practitioner_ids = list(await session.scalars(select(Practitioner.id).where(Practitioner.cpts_id == cpts.id)))
    result = DemoResult(cpts_id=cpts.id, created=created, practitioners=len(practitioner_ids))

    handler_id = None
    for role in ("handler", "regulator", "coordinator", "admin"):
        email = f"{role}@{DEMO_EMAIL_DOMAIN}"
        password = secrets.token_urlsafe(12)
        user = await accounts_repository.user_in_cpts_by_email(session, cpts.id, email)
        if user is None:
            rpps = rpps_with_key(random.Random(role)) if role == "regulator" else None  # noqa: S311 - demo data
            user_data = UserCreate.model_validate(
                {"email": email, "display_name": f"Demo {role}", "role": role, "password": password, "rpps": rpps}
            )
            user = await accounts_service.create_user(session, hasher, cpts.id, user_data)
        else:
            user.password_hash = hasher.hash(password)
            user.active = True
        result.users[role] = (email, password)
        if role == "handler":
            handler_id = user.id

    client = await session.scalar(
        select(SoftwareClient).where(SoftwareClient.cpts_id == cpts.id, SoftwareClient.name == CLIENT_NAME)
    )
    if client is None:
        created_client = await accounts_service.create_client(
            session, cpts.id, ClientCreate(name=CLIENT_NAME, practitioner_ids=practitioner_ids), WebhookPolicy()
        )
        result.client_id, result.api_key = created_client.id, created_client.api_key
    else:
        key = new_api_key()
        client.key_prefix, client.key_digest, client.key_rotated_at = key.prefix, key.digest, now
        result.client_id, result.api_key = client.id, key.key
    await session.flush()
    counts = await publish_demo_slots(session, cpts, result.client_id, now)
    result.extra["slots"] = counts
    if created and handler_id is not None:
        assert result.client_id is not None
        result.extra["history"] = await demo_history(session, cpts, handler_id, result.client_id, now)
        result.extra["requests"] = await demo_queue(session, cpts, handler_id, now)
    return result


HISTORY_DAYS = 60
# Of the agenda's usual slots, the share opened for SNP in the past months (a fill rate near a third).
HISTORY_SHARE = 0.18
# What people call about, with how often (motifs of unscheduled care without a sign of severity).
HISTORY_MOTIFS = (
    ("M19.05.00", 30), ("M11.03.04", 14), ("M17.02.01", 10), ("M17.04.02", 9), ("M13.06.05", 9),
    ("M17.01.03", 7), ("M17.05.01", 5), ("M14.02.02", 3), ("M12.05.01", 4), ("M09.03.01", 3),
)  # fmt: skip
# Calls come in the morning and at the end of the day: (hour, weight).
HISTORY_HOURS = (
    (8, 9), (9, 10), (10, 8), (11, 6), (12, 4), (13, 4), (14, 5), (15, 5), (16, 6), (17, 8), (18, 9), (19, 5),
    (20, 3),
)  # fmt: skip
HISTORY_OTHER_OUTCOMES = (("advice", 30), ("own_gp", 20), ("pharmacy", 15), ("no_solution", 25), ("unreachable", 10))


def _pick(rng: random.Random, weighted: tuple[tuple[Any, int], ...]) -> Any:
    return rng.choices([value for value, _ in weighted], [weight for _, weight in weighted])[0]


async def demo_history(
    session: AsyncSession, cpts: Cpts, handler_id: uuid.UUID, client_id: uuid.UUID, now: datetime
) -> dict[str, int]:
    """The past two months of a working CPTS, played through the service's own code at the times
    they happened: slots published two days ahead, calls taken, screened and booked (or oriented
    elsewhere), appointments reported by the practice software, a few cancellations. So the
    dashboard, the reports and the compensation of a new demo have something to show."""
    rng = random.Random(2026)  # noqa: S311 - demo data
    zone = ZoneInfo(cpts.timezone)
    today = now.astimezone(zone).date()
    publisher, practitioners, sites = await _publisher(session, cpts, client_id)
    handler = Principal(kind="user", id=handler_id, cpts_id=cpts.id, role=Role.handler, timezone=cpts.timezone)
    first = today - timedelta(days=HISTORY_DAYS)
    published = 0
    for offset in range(HISTORY_DAYS):
        day = first + timedelta(days=offset)
        at = datetime.combine(day - timedelta(days=2), time(18, 0), zone)
        items = demo_slot_items(
            practitioners, sites, cpts.timezone, at, days=0, first_day=day, seed=day.toordinal(), share=HISTORY_SHARE
        )
        published += len(await slots_service.publish(session, publisher, items, at))
    # The contract's targets since the first month shown (the demo may date them back; the API may not).
    demo_targets = {"rate_within_24h": 0.8, "participating_professionals": 30, "unresolved_past_deadline": 5}
    await cpts_repository.put_targets(session, cpts.id, first.replace(day=1), demo_targets, now)
    counts = {"requests": 0, "booked": 0, "reported": 0, "cancelled": 0}
    for offset in range(HISTORY_DAYS):
        day = first + timedelta(days=offset)
        calls = rng.randint(3, 6) if day.weekday() == 6 else rng.randint(8, 15)
        moments = sorted(
            datetime.combine(day, time(_pick(rng, HISTORY_HOURS), rng.randrange(60)), zone) for _ in range(calls)
        )
        for received in moments:
            await _history_call(session, rng, handler, publisher, received, now, counts)
    return {"slots": published, **counts}


async def _history_call(
    session: AsyncSession,
    rng: random.Random,
    handler: Principal,
    publisher: Principal,
    received: datetime,
    now: datetime,
    counts: dict[str, int],
) -> None:
    insee, _, _, _, _ = rng.choice(COMMUNES)
    age = rng.choice((rng.randint(0, 15), rng.randint(16, 64), rng.randint(16, 64), rng.randint(65, 92)))
    birth = received.date().replace(year=received.year - age, day=1) - timedelta(days=rng.randint(0, 300))
    phone = f"06 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
    flagged = rng.random() < 0.04
    data = RequestCreate.model_validate(
        {
            "received_at": received,
            "caller": {"relation": "parent" if age < 16 else "self", "phone": phone},
            "patient": {
                "family_name": rng.choice(FAMILY_NAMES), "given_name": rng.choice(GIVEN_NAMES),
                "birth_date": birth.isoformat(), "sex": rng.choice(("F", "M")), "phone": phone, "commune_insee": insee,
            },
            "motif": "M17.03.00" if flagged else _pick(rng, HISTORY_MOTIFS),
            "red_flags": ["chest_pain"] if flagged else [],
        }
    )  # fmt: skip
    care_request = await requests_service.create(session, handler, data, received)
    counts["requests"] += 1
    decided = received + timedelta(minutes=rng.randint(3, 12))
    if flagged:
        await flows_orientation.orient(session, handler, care_request.id, OrientationIn(outcome="transfer_15"), decided)
        return
    if rng.random() < 0.78:
        offered = await bookings_service.suggestions(session, handler, care_request.id, 3, decided)
        in_time = [item for item in offered.items if item.within_deadline]
        if in_time:
            choice = rng.choice(in_time[: 2 if rng.random() < 0.5 else 1])
            booking = await bookings_service.take_slot(
                session, handler, care_request.id, choice.slot_id, decided, confirm=True
            )
            counts["booked"] += 1
            start = booking.slot.start
            if rng.random() < 0.06 and decided + timedelta(hours=1) < start:
                cancel = CancelIn(reason="Le patient va mieux", cancelled_by="patient")
                await bookings_service.cancel(
                    session, handler, booking.booking_id, cancel, decided + timedelta(hours=1)
                )
                counts["cancelled"] += 1
                await flows_orientation.orient(
                    session, handler, care_request.id, OrientationIn(outcome="advice"), decided + timedelta(hours=1)
                )
                return
            reported = booking.slot.end + timedelta(hours=2)
            if reported < now:
                outcome = OutcomeIn(outcome="fulfilled" if rng.random() < 0.92 else "noshow")
                await bookings_service.report_outcome(session, publisher, booking.booking_id, outcome, reported)
                counts["reported"] += 1
            return
    if decided < now and rng.random() > 0.02:  # a few are left without an answer
        outcome = _pick(rng, HISTORY_OTHER_OUTCOMES)
        await flows_orientation.orient(session, handler, care_request.id, OrientationIn(outcome=outcome), decided)


# Calls in the queue of a new demo CPTS: (minutes ago, caller, patient, motif, red flags).
DEMO_CALLS: list[tuple[int, dict[str, Any], dict[str, Any], str, list[str]]] = [
    (20, {"relation": "self", "phone": "06 12 45 78 90"},
     {"family_name": "Martin", "given_name": "Chloé", "birth_date": "1991-03-14", "sex": "F",
      "phone": "06 12 45 78 90", "commune_insee": "44109"}, "M19.05.00", []),
    (35, {"relation": "relative", "phone": "06 33 21 54 87"},
     {"family_name": "Robert", "given_name": "Paul", "birth_date": "1958-11-02", "sex": "M",
      "phone": "02 40 33 21 54", "commune_insee": "44143"}, "M17.03.00", ["chest_pain"]),
    (21 * 60, {"relation": "parent", "phone": "07 81 22 43 65"},
     {"family_name": "Leroy", "given_name": "Emma", "birth_date": "2023-06-09", "sex": "F",
      "phone": "07 81 22 43 65", "commune_insee": "44162"}, "M11.03.04", []),
]  # fmt: skip
# Booked, then cancelled by the practitioner: the request reopens with a callback due.
DEMO_REOPENED = (
    {"relation": "self", "phone": "06 98 76 12 34"},
    {"family_name": "Bernard", "given_name": "Louise", "birth_date": "1979-08-23", "sex": "F",
     "phone": "06 98 76 12 34", "commune_insee": "44190"},
    "M09.03.01",
)  # fmt: skip


async def demo_queue(session: AsyncSession, cpts: Cpts, handler_id: uuid.UUID, now: datetime) -> int:
    """A few calls waiting in the queue, as a handler would have taken them (the same service code):
    an ordinary one, a red flag, one close to its deadline, one reopened by a cancellation."""
    handler = Principal(kind="user", id=handler_id, cpts_id=cpts.id, role=Role.handler, timezone=cpts.timezone)
    for minutes, caller, patient, motif, flags in DEMO_CALLS:
        data = RequestCreate.model_validate(
            {"received_at": now - timedelta(minutes=minutes), "caller": caller, "patient": patient,
             "motif": motif, "red_flags": flags, "note": None}
        )  # fmt: skip
        await requests_service.create(session, handler, data, now)
    caller, patient, motif = DEMO_REOPENED
    reopened = await requests_service.create(
        session, handler, RequestCreate.model_validate({"caller": caller, "patient": patient, "motif": motif}), now
    )
    offered = await bookings_service.suggestions(session, handler, reopened.id, 1, now)
    if offered.items:
        booked = await bookings_service.take_slot(session, handler, reopened.id, offered.items[0].slot_id, now,
                                                  confirm=True)  # fmt: skip
        cancel = CancelIn(reason="Praticien absent (démo)", cancelled_by="practitioner")
        await bookings_service.cancel(session, handler, booked.booking_id, cancel, now)
    return len(DEMO_CALLS) + 1
