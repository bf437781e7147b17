"""What the load scenarios send, and when: pure code, importable without locust (the smoke test
checks these bodies against the service's own schemas).

Pacing is by arrival rate (an open model): each simulated person has activities that fall due at
Poisson arrival times, whatever the service answers. A late answer delays the next activity, but
its latency is also measured from the instant it was due (`Schedule.intended`), so that slowness
shows instead of being hidden by the requests never sent meanwhile (coordinated omission).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from service.reference.codes import motif_classification

RESULTS = Path(__file__).resolve().parent / "results"
CREDENTIALS = RESULTS / "credentials.json"
TZ = ZoneInfo("Europe/Paris")

# A winter day of a size-4 CPTS, scaled up: for each coordinator, three practice-software
# connections and ten call handlers.
USER_WEIGHTS = {"handler": 10, "software": 3, "coordinator": 1}

# Mean seconds between two occurrences of each activity, per simulated person. Coordinators read
# far more often than in life (a report a day): theirs are the heaviest requests, so a short run
# still exercises them.
# A handler's console also reads the queue between calls.
HANDLER_ACTIVITIES = {"call": 6.0, "queue": 15.0}
SOFTWARE_ACTIVITIES = {"feed": 5.0, "publish": 20.0, "sync": 60.0}
COORDINATOR_ACTIVITIES = {"monthly_report": 30.0, "export": 60.0}

# What a call ends in, once the patient is screened (the share of calls sent to a slot is what
# CPTS report, around 60 %); and the share of bookings cancelled later by the patient.
CALL_ENDINGS = (
    ("book", 0.60),
    ("advice", 0.10),
    ("pharmacy", 0.05),
    ("own_gp", 0.08),
    ("emergency_department", 0.02),
    ("patient_declined", 0.05),
    ("unreachable", 0.05),
    ("red_flag", 0.05),
)
CANCELLED_SHARE = 0.08
# Motifs the handlers type in: those the CPTS may take, and those that must go to the 15.
SNP_MOTIFS = sorted(code for code, kind in motif_classification().items() if kind.value in ("snp", "assess"))
RED_FLAG_MOTIFS = sorted(code for code, kind in motif_classification().items() if kind.value == "transfer_15")
FAMILY_NAMES = ("Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent")
GIVEN_NAMES = ("Camille", "Louis", "Lea", "Gabriel", "Manon", "Jules", "Chloe", "Hugo", "Ines", "Arthur")

# Practice software publish their evening slots beyond the two generated weeks, on a fixed plan:
# publishing the same slot again is "unchanged", never an overlap.
PUBLISH_FIRST_DAY, PUBLISH_DAYS = 16, 30
EVENING_STARTS = (time(20, 0), time(20, 30), time(21, 0), time(21, 30))


@dataclass(frozen=True)
class Practitioner:
    id: str
    site_id: str
    profession: str
    specialty: str | None
    minutes: int
    modality: str


@dataclass(frozen=True)
class Credentials:
    cpts_id: str
    password: str
    handlers: list[str]
    coordinators: list[str]
    api_key: str
    practitioners: list[Practitioner]
    communes: list[str]
    history_month: str | None

    @classmethod
    def load(cls, path: Path = CREDENTIALS) -> Credentials:
        data = json.loads(path.read_text())
        data["practitioners"] = [Practitioner(**p) for p in data["practitioners"]]
        return cls(**data)


@dataclass
class Schedule:
    """Poisson arrivals for each activity of one simulated person."""

    mean_seconds: dict[str, float]
    rng: random.Random
    start: float
    due: dict[str, float] = field(default_factory=dict)
    intended: float = 0.0  # when the activity being run was due

    def __post_init__(self) -> None:
        # A random phase within the first interval: people started together do not act in step,
        # and even a one-minute run sees every activity.
        self.due = {name: self.start + self.rng.uniform(0, mean) for name, mean in self.mean_seconds.items()}

    def wait(self, now: float) -> float:
        """Seconds until the next activity is due (0 when one is overdue)."""
        return max(0.0, min(self.due.values()) - now)

    def take(self) -> str:
        """The activity due first; its next occurrence is drawn from when it was due, not from
        when it ran."""
        name = min(self.due, key=self.due.__getitem__)
        self.intended = self.due[name]
        self.due[name] += self.rng.expovariate(1 / self.mean_seconds[name])
        return name


def pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([name for name, _ in table], weights=[weight for _, weight in table])[0]


def request_body(rng: random.Random, communes: list[str], *, red_flag: bool = False) -> dict[str, Any]:
    """A patient's call as a handler types it in."""
    birth = date(rng.randint(1935, 2024), rng.randint(1, 12), rng.randint(1, 28))
    return {
        "channel": pick(rng, (("phone", 0.85), ("sas", 0.1), ("pharmacy", 0.05))),
        "caller": {"relation": "self"},
        "patient": {
            "family_name": rng.choice(FAMILY_NAMES),
            "given_name": rng.choice(GIVEN_NAMES),
            "birth_date": birth.isoformat(),
            "sex": rng.choice("FM"),
            "phone": "06" + "".join(rng.choice("0123456789") for _ in range(8)),
            "commune_insee": rng.choice(communes),
        },
        "motif": rng.choice(RED_FLAG_MOTIFS if red_flag else SNP_MOTIFS),
        "needs": {"profession": "10"},
    }


def orientation_body(outcome: str) -> dict[str, Any]:
    return {"outcome": outcome}


def cancel_body() -> dict[str, Any]:
    return {"reason": "The patient no longer needs the appointment.", "cancelled_by": "patient"}


def _evening_slot(practitioner: Practitioner, day: date, start: time) -> dict[str, Any]:
    begins = datetime.combine(day, start, TZ)
    return {
        "external_id": f"load-{practitioner.id[:8]}-{day.isoformat()}-{start.strftime('%H%M')}",
        "practitioner_id": practitioner.id,
        "site_id": practitioner.site_id,
        "start": begins.isoformat(),
        "end": (begins + timedelta(minutes=min(practitioner.minutes, 30))).isoformat(),
        "modality": practitioner.modality,
    }


def publish_batch(rng: random.Random, practitioners: list[Practitioner], today: date, size: int = 50) -> dict[str, Any]:
    """A batch as an agenda sends it: the evening slots of a few practitioners over some days."""
    slots: dict[str, dict[str, Any]] = {}
    while len(slots) < size:
        practitioner = rng.choice(practitioners)
        day = today + timedelta(days=PUBLISH_FIRST_DAY + rng.randrange(PUBLISH_DAYS))
        for start in EVENING_STARTS:
            item = _evening_slot(practitioner, day, start)
            slots[item["external_id"]] = item
    return {"slots": list(slots.values())[:size]}


def sync_body(rng: random.Random, practitioners: list[Practitioner], today: date) -> dict[str, Any]:
    """A full re-send of one evening hour: every practitioner's planned slots in the window, so
    that nothing is withdrawn and the service answers created or unchanged."""
    day = today + timedelta(days=PUBLISH_FIRST_DAY + rng.randrange(PUBLISH_DAYS))
    window_start = datetime.combine(day, EVENING_STARTS[0], TZ)
    window_end = datetime.combine(day, EVENING_STARTS[2], TZ)  # 20:00-21:00, two starts each
    return {
        "window_start": window_start.isoformat(),
        "window_end": window_end.isoformat(),
        "slots": [_evening_slot(p, day, start) for p in practitioners for start in EVENING_STARTS[:2]],
    }


def idempotency_key() -> dict[str, str]:
    """A fresh key per logical operation, as integrators are asked to send."""
    return {"Idempotency-Key": str(uuid.uuid4())}
