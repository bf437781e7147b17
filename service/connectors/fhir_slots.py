"""An agenda editor's answer to the SAS's slot search (ANS guide "Service d'Accès aux Soins" 1.1.0,
flows INT_R01 for individual practitioners and INT_R04 for CPTS slots), read back into what the
service publishes: one `PulledSlot` per free slot of the types the CPTS takes, and for every entry
that cannot be read, which element is wrong. Pure: a Bundle (parsed JSON) in, slots out.

How the guide links them: a Slot names its Schedule (`Slot.schedule`), the Schedule its actors, a
Practitioner (identified by its IDNPS) and a PractitionerRole, whose contained Location is the
place of consultation; `meta.security` holds the slot's types (TRE_R314), `serviceType` the
modality (v3-ActCode AMB, VR, HH), `specialty` the TRE_R38 code and `comment` the editor's link to
book the slot on its own agenda.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from service.reference.sas_guide import ACT_CODE, IDNPS_SYSTEM, SPECIALITE, TYPE_CRENEAU, profile


class Flow(StrEnum):
    INT_R01 = "INT_R01"  # individual practitioners' slots (FrSlotAgregateur)
    INT_R04 = "INT_R04"  # CPTS slots (sas-cpts-slot-aggregator)


SLOT_PROFILE = {Flow.INT_R01: "FrSlotAgregateur", Flow.INT_R04: "sas-cpts-slot-aggregator"}
SLOT_TYPES = ("SNP", "CPTS", "PRO", "PUBLIC")  # TRE_R314, the service's visibilities
DEFAULT_SLOT_TYPES = frozenset({"SNP", "CPTS"})
MODALITIES = ("AMB", "VR", "HH")
_EDITOR_SLOT_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # a FHIR id (also a valid external id here)
_HTTP_URL = re.compile(r"^https?://\S{1,2000}$")


@dataclass(frozen=True)
class PulledLocation:
    """Where the practitioner receives, as the editor describes it (PractitionerRole's Location)."""

    address: str | None
    postal_code: str | None
    city: str | None
    editor_id: str | None  # Location.identifier, when the editor gives one


@dataclass(frozen=True)
class PulledSlot:
    editor_slot_id: str  # Slot.id: the slot's external id here, so the editor can reconcile
    idnps: str
    location: PulledLocation
    start: datetime
    end: datetime
    modality: str
    specialty: str | None
    visibility: frozenset[str]
    agenda_url: str | None


@dataclass(frozen=True)
class Skipped:
    """An entry left out, and why: the element at fault, named as the guide names it."""

    entry: str  # "Slot/abc", or "entry[3]" when the entry has no usable id
    element: str  # e.g. "Slot.schedule", "Slot.meta.security"
    problem: str


@dataclass(frozen=True)
class PulledPage:
    slots: list[PulledSlot] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    ignored: int = 0  # free slots of types the CPTS does not take, or not free
    next_url: str | None = None  # Bundle.link "next", when the server pages


class UnreadableBundle(ValueError):
    """The answer as a whole is not a searchset Bundle (or is an OperationOutcome): nothing applies."""

    def __init__(self, element: str, problem: str) -> None:
        super().__init__(f"{element}: {problem}")
        self.element = element
        self.problem = problem


def read_bundle(bundle: Any, flow: Flow, slot_types: Iterable[str] = DEFAULT_SLOT_TYPES) -> PulledPage:
    """The slots of one page of a search answer; a malformed entry is skipped and reported, the
    others are read."""
    if not isinstance(bundle, Mapping):
        raise UnreadableBundle("Bundle", "the answer is not a JSON object")
    if bundle.get("resourceType") == "OperationOutcome":
        raise UnreadableBundle("OperationOutcome", _outcome_text(bundle))
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "searchset":
        raise UnreadableBundle("Bundle.type", "expected a Bundle of type searchset")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise UnreadableBundle("Bundle.entry", "expected a list")
    resources = _index(entries)
    wanted = frozenset(slot_types)
    slots, skipped, ignored = [], [], 0
    for position, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping) or resource.get("resourceType") != "Slot":
            continue
        name = _entry_name(resource, position)
        try:
            pulled = _slot(resource, resources, flow, wanted)
        except _Fault as fault:
            skipped.append(Skipped(name, fault.element, fault.problem))
            continue
        if pulled is None:
            ignored += 1
        else:
            slots.append(pulled)
    return PulledPage(slots, skipped, ignored, _next_url(bundle))


class _Fault(Exception):
    def __init__(self, element: str, problem: str) -> None:
        super().__init__(element)
        self.element = element
        self.problem = problem


def _slot(
    slot: Mapping[str, Any], resources: Mapping[str, Mapping[str, Any]], flow: Flow, wanted: frozenset[str]
) -> PulledSlot | None:
    slot_id = slot.get("id")
    if not isinstance(slot_id, str) or not _EDITOR_SLOT_ID.match(slot_id):
        raise _Fault("Slot.id", "missing or not a FHIR id")
    meta = _object(slot.get("meta"))
    expected = profile(SLOT_PROFILE[flow])
    if expected not in (meta.get("profile") or []):
        raise _Fault("Slot.meta.profile", f"expected {expected} ({flow.value})")
    types = {
        str(c["code"])
        for c in meta.get("security") or []
        if isinstance(c, Mapping) and c.get("system") == TYPE_CRENEAU and c.get("code") in SLOT_TYPES
    }
    if not types:
        raise _Fault("Slot.meta.security", "no slot type of TRE_R314")
    if slot.get("status") != "free" or not types & wanted:
        return None
    start, end = _instant(slot, "start"), _instant(slot, "end")
    if end <= start:
        raise _Fault("Slot.end", "not after Slot.start")
    schedule = _referenced(slot.get("schedule"), resources, "Schedule", "Slot.schedule")
    actors = [a for a in schedule.get("actor") or [] if isinstance(a, Mapping)]
    practitioner = _first_actor(actors, resources, "Practitioner")
    idnps = next(
        (
            i.get("value")
            for i in practitioner.get("identifier") or []
            if isinstance(i, Mapping) and i.get("system") == IDNPS_SYSTEM and isinstance(i.get("value"), str)
        ),
        None,
    )
    if not idnps:
        raise _Fault("Practitioner.identifier", f"no IDNPS ({IDNPS_SYSTEM})")
    role = _first_actor(actors, resources, "PractitionerRole")
    return PulledSlot(
        editor_slot_id=slot_id,
        idnps=idnps,
        location=_location(role),
        start=start,
        end=end,
        modality=_modality(slot),
        specialty=_code(slot.get("specialty"), SPECIALITE),
        visibility=frozenset(types),
        agenda_url=_agenda_url(slot.get("comment")),
    )


def _instant(slot: Mapping[str, Any], name: str) -> datetime:
    value = slot.get(name)
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise _Fault(f"Slot.{name}", "missing, or an instant without its offset")
    return parsed


def _referenced(
    reference: Any, resources: Mapping[str, Mapping[str, Any]], kind: str, element: str
) -> Mapping[str, Any]:
    target = reference.get("reference") if isinstance(reference, Mapping) else None
    if not isinstance(target, str) or not target.startswith(f"{kind}/"):
        raise _Fault(element, f"no reference to a {kind}")
    found = resources.get(target)
    if found is None:
        raise _Fault(element, f"{target} is not in the Bundle (the search's _include)")
    return found


def _first_actor(
    actors: list[Mapping[str, Any]], resources: Mapping[str, Mapping[str, Any]], kind: str
) -> Mapping[str, Any]:
    for actor in actors:
        target = actor.get("reference")
        if isinstance(target, str) and target.startswith(f"{kind}/"):
            return _referenced(actor, resources, kind, "Schedule.actor")
    raise _Fault("Schedule.actor", f"no {kind} among the actors")


def _location(role: Mapping[str, Any]) -> PulledLocation:
    contained = {
        f"#{r.get('id')}": r
        for r in role.get("contained") or []
        if isinstance(r, Mapping) and r.get("resourceType") == "Location"
    }
    wanted = [ref.get("reference") for ref in role.get("location") or [] if isinstance(ref, Mapping)]
    location = next((contained[w] for w in wanted if w in contained), None)
    if location is None:
        raise _Fault("PractitionerRole.location", "no contained Location")
    address = _object(location.get("address"))
    lines = [line for line in address.get("line") or [] if isinstance(line, str) and line.strip()]
    identifier = next(
        (i.get("value") for i in location.get("identifier") or [] if isinstance(i, Mapping) and i.get("value")), None
    )
    postal_code = address.get("postalCode")
    city = address.get("city")
    return PulledLocation(
        address=" ".join(lines)[:300] or None,
        postal_code=postal_code if isinstance(postal_code, str) and re.fullmatch(r"\d{5}", postal_code) else None,
        city=city.strip()[:120] if isinstance(city, str) and city.strip() else None,
        editor_id=str(identifier)[:200] if identifier else None,
    )


def _modality(slot: Mapping[str, Any]) -> str:
    for service_type in slot.get("serviceType") or []:
        code = _code([service_type], ACT_CODE)
        if code in MODALITIES:
            return code
    raise _Fault("Slot.serviceType", "no modality (v3-ActCode AMB, VR or HH)")


def _code(concepts: Any, system: str) -> str | None:
    for concept in concepts or []:
        for coding in concept.get("coding") or [] if isinstance(concept, Mapping) else []:
            if isinstance(coding, Mapping) and coding.get("system") == system and isinstance(coding.get("code"), str):
                return str(coding["code"])
    return None


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _agenda_url(comment: Any) -> str | None:
    """The editor's link to book the slot on its agenda (the guide puts it in `Slot.comment`)."""
    return comment if isinstance(comment, str) and _HTTP_URL.match(comment) else None


def _index(entries: list[Any]) -> dict[str, Mapping[str, Any]]:
    """`Type/id` -> resource, for the references between entries."""
    found: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and isinstance(resource.get("id"), str):
            found[f"{resource.get('resourceType')}/{resource['id']}"] = resource
    return found


def _entry_name(resource: Mapping[str, Any], position: int) -> str:
    slot_id = resource.get("id")
    return f"Slot/{slot_id}" if isinstance(slot_id, str) and _EDITOR_SLOT_ID.match(slot_id) else f"entry[{position}]"


def _next_url(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, Mapping) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _outcome_text(outcome: Mapping[str, Any]) -> str:
    issues = [i for i in outcome.get("issue") or [] if isinstance(i, Mapping)]
    texts = [str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code") or "") for i in issues]
    return "; ".join(t for t in texts if t)[:500] or "an OperationOutcome without details"


# The SAS writes the window in French local time, without an offset.
_PARIS = ZoneInfo("Europe/Paris")


def _local(value: datetime) -> str:
    return value.astimezone(_PARIS).strftime("%Y-%m-%dT%H:%M:%S")


def search_query(flow: Flow, idnps: list[str], start: datetime, end: datetime) -> list[tuple[str, str]]:
    """The parameters of `GET [base]/Slot` as the SAS sends them for 1 to 25 practitioners (the
    guide's search: the practitioners' national ids, the window, free slots, and the includes that
    bring the Schedule, the Practitioner and the PractitionerRole)."""
    if not 1 <= len(idnps) <= 25:
        raise ValueError("the SAS asks for 1 to 25 practitioners at a time")
    params = [
        ("_include", "Slot:schedule"),
        ("_include:iterate", "Schedule:actor"),
        ("start", f"ge{_local(start)}"),
        ("start", f"le{_local(end)}"),
        ("status", "free"),
        ("schedule.actor:Practitioner.identifier", f"{IDNPS_SYSTEM}|{','.join(idnps)}"),
    ]
    if flow is Flow.INT_R04:
        params[2:2] = [
            ("_include", "Slot:service-type-reference"),
            ("_include:iterate", "HealthcareService:organization"),
        ]
    return params
