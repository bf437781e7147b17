"""The slot search exactly as the SAS aggregator sends it (INT_R04), parsed from the raw query
string: repeated `start` with `ge`/`le`/`gt`/`lt` prefixes, Paris time without an offset (CPTS
flow) or with one (`+` decoded as a space in the individual flow), `status`, the practitioners'
national ids with or without their 8/0 prefix, the `_include`s, `_count`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from service.reference.sas_guide import IDNPS_SYSTEM

PARIS = ZoneInfo("Europe/Paris")
MAX_PRACTITIONERS = 25
MAX_COUNT = 1000
# The SAS asks for a few days; a wider window is a mistake, not a search.
MAX_WINDOW_DAYS = 31
INCLUDES = frozenset({"Slot:schedule", "Slot:service-type-reference"})
ITERATED_INCLUDES = frozenset({"Schedule:actor", "HealthcareService:organization"})
KNOWN = frozenset(
    {"_include", "_include:iterate", "start", "status", "schedule.actor:Practitioner.identifier", "_count", "_format"}
)
_OFFSET_AS_SPACE = re.compile(r" (\d{2}:\d{2})$")
_RPPS, _ADELI = re.compile(r"^\d{11}$"), re.compile(r"^(?:\d{2}|2[AB])\d{7}$")


class SearchError(Exception):
    """A search the server cannot run: a 400 OperationOutcome says why."""


@dataclass(frozen=True)
class SlotSearch:
    start_from: datetime
    start_to: datetime
    idnps: tuple[str, ...]
    status: str
    count: int
    includes: frozenset[str] = field(default_factory=frozenset)
    iterated: frozenset[str] = field(default_factory=frozenset)


def parse_instant(text: str) -> datetime:
    """`2024-06-12T16:20:00` (Paris time), `2024-06-12T16:20:00.000+02:00`, or `...000 00:00` (a `+`
    that travelled unencoded and became a space)."""
    text = _OFFSET_AS_SPACE.sub(r"+\1", text.strip())
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SearchError(f"start: '{text}' is not a FHIR dateTime") from exc
    return value.replace(tzinfo=PARIS) if value.tzinfo is None else value


def national_id(value: str) -> str:
    """The IDNPS of an id the SAS sends: prefixed (8 + RPPS, 0 + ADELI) or not; always answered prefixed."""
    value = value.strip()
    if (value.startswith("8") and _RPPS.match(value[1:])) or (value.startswith("0") and _ADELI.match(value[1:])):
        return value
    if _RPPS.match(value):
        return "8" + value
    if _ADELI.match(value):
        return "0" + value
    raise SearchError(f"schedule.actor:Practitioner.identifier: '{value}' is neither an RPPS nor an ADELI number")


def parse(params: list[tuple[str, str]]) -> SlotSearch:
    unknown = sorted({k for k, _ in params} - KNOWN)
    if unknown:
        raise SearchError(f"unsupported search parameter(s): {', '.join(unknown)}")
    start_from: datetime | None = None
    start_to: datetime | None = None
    for key, value in params:
        if key != "start":
            continue
        prefix, moment = value[:2], value[2:]
        if prefix not in ("ge", "gt", "le", "lt"):
            raise SearchError("start takes the prefixes ge, gt, le or lt")
        if prefix in ("ge", "gt"):
            start_from = parse_instant(moment)
        else:
            start_to = parse_instant(moment)
    if start_from is None or start_to is None:
        raise SearchError("the search needs a window: start=ge... and start=le...")
    if start_to < start_from:
        raise SearchError("start: the end of the window is before its beginning")
    if (start_to - start_from).days > MAX_WINDOW_DAYS:
        raise SearchError(f"start: a window of at most {MAX_WINDOW_DAYS} days")
    identifiers = [v for k, v in params if k == "schedule.actor:Practitioner.identifier"]
    if len(identifiers) != 1:
        raise SearchError("the search needs one schedule.actor:Practitioner.identifier parameter")
    system, _, values = identifiers[0].rpartition("|")
    if system != IDNPS_SYSTEM:
        raise SearchError(f"schedule.actor:Practitioner.identifier: the system is {IDNPS_SYSTEM}")
    ids = [national_id(v) for v in values.split(",") if v.strip()]
    if not 1 <= len(ids) <= MAX_PRACTITIONERS:
        raise SearchError(f"schedule.actor:Practitioner.identifier: 1 to {MAX_PRACTITIONERS} national ids")
    statuses = [v for k, v in params if k == "status"]
    counts = [v for k, v in params if k == "_count"]
    try:
        count = min(int(counts[-1]), MAX_COUNT) if counts else MAX_COUNT
    except ValueError as exc:
        raise SearchError("_count is a number") from exc
    if count < 0:
        raise SearchError("_count is a number")
    includes = frozenset(v for k, v in params if k == "_include")
    iterated = frozenset(v for k, v in params if k == "_include:iterate")
    if includes - INCLUDES or iterated - ITERATED_INCLUDES:
        raise SearchError(f"supported _include: {', '.join(sorted(INCLUDES | ITERATED_INCLUDES))}")
    return SlotSearch(
        start_from=start_from,
        start_to=start_to,
        idnps=tuple(dict.fromkeys(ids)),
        status=statuses[-1] if statuses else "free",
        count=count,
        includes=includes,
        iterated=iterated,
    )
