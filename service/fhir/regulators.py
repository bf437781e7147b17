"""The SAS's regulating physicians as the guide sends them (INT_R02, FrPractitionerRegul): what a
pushed Practitioner says, checked against the guide's profile, and the resource we answer with.
Pure: a resource comes in, facts go out, and back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from service.accounts.domain import RegulatorFacts, StoredRegulator
from service.fhir import conformance
from service.fields import has_unstorable_text
from service.reference.sas_guide import IDNPS_SYSTEM, V2_0203, profile

# The SAS's own identifiers of regulators who have no national one (slice IdentifiantInterne).
SAS_INTERNAL_SYSTEM = "urn:oid:1.2.250.1.213.3.6"
# An RPPS-based IDNPS: the 8 prefix, then the 11-digit RPPS.
_RPPS_IDNPS = re.compile(r"8(\d{11})")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_IDENTIFIER_VALUE = re.compile(r"[0-9A-Za-z/._:-]{1,64}")


class RegulatorInvalid(Exception):
    """The pushed resource is not a regulator we can record: each problem with its FHIRPath."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = problems


def identifiers_of(resource: Mapping[str, Any]) -> set[tuple[str, str]]:
    """Every (system, value) identifier the resource carries."""
    return set(_usable(resource.get("identifier")))


def _usable(identifiers: Any) -> list[tuple[str, str]]:
    return [
        (i["system"], i["value"])
        for i in (identifiers if isinstance(identifiers, list) else [])
        if isinstance(i, Mapping) and isinstance(i.get("system"), str) and isinstance(i.get("value"), str)
    ]


def _identifier(identifiers: Any) -> tuple[str, str] | None:
    """The identifier we keep: the national one (IDNPS) when given, else the SAS's internal one,
    else the first (the guide's slicing is open)."""
    usable = _usable(identifiers)
    for wanted in (IDNPS_SYSTEM, SAS_INTERNAL_SYSTEM):
        for system, value in usable:
            if system == wanted:
                return system, value
    return usable[0] if usable else None


def parse(resource: Any) -> RegulatorFacts:
    """The regulator a pushed FrPractitionerRegul describes, or every reason it cannot be one."""
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "Practitioner":
        raise RegulatorInvalid([("Practitioner", "the body must be a Practitioner resource")])
    if has_unstorable_text(resource):
        raise RegulatorInvalid([("Practitioner", "text with a NUL character or a lone surrogate")])
    problems = [(issue.path, issue.message) for issue in conformance.check(resource, profile("FrPractitionerRegul"))]
    if problems:
        raise RegulatorInvalid(problems)
    if not isinstance(resource.get("active"), bool):
        raise RegulatorInvalid([("Practitioner.active", "true or false")])
    found = _identifier(resource.get("identifier", []))
    if found is None:
        raise RegulatorInvalid([("Practitioner.identifier", "an identifier with its system and value")])
    system, value = found
    if len(system) > 100 or not _IDENTIFIER_VALUE.fullmatch(value):
        problems.append(("Practitioner.identifier", "an identifier value of 1 to 64 letters, digits or / . _ : -"))
    names = [
        n
        for n in resource.get("name", [])
        if isinstance(n, Mapping)
        and isinstance(n.get("family"), str)
        and isinstance(n.get("given"), list)
        and n["given"]
        and isinstance(n["given"][0], str)
    ]
    if not names:
        problems.append(("Practitioner.name", "a regulator has a name (family and given)"))
    emails = [
        t.get("value") for t in resource.get("telecom", []) if isinstance(t, Mapping) and t.get("system") == "email"
    ]
    email = emails[0].lower() if emails and isinstance(emails[0], str) else (emails[0] if emails else None)
    if email is not None and (not isinstance(email, str) or len(email) > 254 or not _EMAIL.fullmatch(email)):
        problems.append(("Practitioner.telecom", "not an e-mail address"))
    if names and (len(names[0]["family"]) > 100 or len(names[0]["given"][0]) > 100):
        problems.append(("Practitioner.name", "a name of at most 100 characters"))
    if problems:
        raise RegulatorInvalid(problems)
    rpps = _RPPS_IDNPS.fullmatch(value) if system == IDNPS_SYSTEM else None
    return RegulatorFacts(
        identifier_system=system,
        identifier_value=value,
        rpps=rpps.group(1) if rpps else None,
        family_name=names[0]["family"],
        given_name=names[0]["given"][0],
        email=email if isinstance(email, str) else None,
        active=resource["active"] is True,
    )


def identifier_type(system: str) -> str:
    return "IDNPS" if system == IDNPS_SYSTEM else "INTRN"


def resource(stored: StoredRegulator) -> dict[str, Any]:
    """The regulator as we hold it, as an FrPractitionerRegul."""
    facts = stored.facts
    body: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": str(stored.id),
        "meta": {
            "versionId": str(stored.version),
            "lastUpdated": stored.updated_at.isoformat(timespec="milliseconds"),
            "profile": [profile("FrPractitionerRegul")],
        },
        "identifier": [
            {
                "type": {"coding": [{"system": V2_0203, "code": identifier_type(facts.identifier_system)}]},
                "system": facts.identifier_system,
                "value": facts.identifier_value,
            }
        ],
        "active": facts.active,
        "name": [{"family": facts.family_name, "given": [facts.given_name]}],
    }
    if facts.email:
        body["telecom"] = [{"system": "email", "value": facts.email}]
    return body


def conditional_identifier(query: str | None) -> tuple[str, str]:
    """`identifier=system|value` of a conditional update; ValueError when it is not that."""
    system, bar, value = (query or "").partition("|")
    if not bar or not system or not value:
        raise ValueError("a conditional update names the regulator as identifier=system|value")
    return system, value
