"""The resources the SAS reads, built as the ANS guide "Service d'Accès aux Soins" 1.1.0 describes
them (CPTS flow, INT_R04): plain JSON-ready dicts, no empty element, phones as +33..., instants in
the CPTS's offset with milliseconds. Pure: the rows come in, the resources go out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache, cached_property
from typing import Any
from zoneinfo import ZoneInfo

from service import problems
from service.reference.sas_guide import (
    ACT_CODE,
    IDNPS_SYSTEM,
    IDNST_SYSTEM,
    SPECIALITE,
    TYPE_CRENEAU,
    V2_0203,
    profile,
)

LOCATION_ID_TYPE = "http://interopsante.org/fhir/CodeSystem/fr-location-identifier-type"
CATEGORIE_ETABLISSEMENT = (
    "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/TRE-R66-CategorieEtablissement"
)
CPTS_CATEGORY = "604"
V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"
SERVICE_TYPE_EXTENSION = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
# Our sites' identifiers (Location.identifier, type INTRN): a URN of the site's UUID.
SITE_SYSTEM = "urn:ietf:rfc:3986"


def instant(value: datetime, tz: ZoneInfo) -> str:
    """2024-06-12T16:40:00.000+02:00: the CPTS's offset, milliseconds, never Z."""
    return value.astimezone(tz).isoformat(timespec="milliseconds")


def e164(phone: str | None) -> str | None:
    """A French number as +33XXXXXXXXX; None when it is not one."""
    if not phone:
        return None
    digits = "".join(c for c in phone if c.isdigit())
    if phone.strip().startswith("+"):
        return "+" + digits if len(digits) >= 8 else None
    if digits.startswith("0033"):
        digits = digits[4:]
    elif digits.startswith("0"):
        digits = digits[1:]
    return "+33" + digits if len(digits) == 9 else None


def _clean_resource(resource: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = _clean(resource)
    return cleaned


def _clean(value: Any) -> Any:
    """No empty element: drop None, empty strings, lists and objects, at every depth."""
    if isinstance(value, dict):
        cleaned = {k: _clean(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        items = [_clean(v) for v in value]
        return [v for v in items if v not in (None, "", [], {})]
    return value


@dataclass(frozen=True)
class CptsFacts:
    id: uuid.UUID
    name: str
    finess: str
    phone: str | None
    timezone: str


@dataclass(frozen=True)
class SiteFacts:
    """A practitioner at one of their sites, in their CPTS: what the slots of that site share."""

    practitioner_id: uuid.UUID
    idnps: str
    family_name: str
    given_name: str
    practitioner_phone: str | None
    site_id: uuid.UUID
    site_address: str | None
    site_postal_code: str | None
    site_city: str | None
    site_phone: str | None
    latitude: float | None
    longitude: float | None
    cpts: CptsFacts

    @cached_property
    def schedule_reference(self) -> dict[str, str]:
        return {"reference": f"Schedule/{self.site_id}"}

    @cached_property
    def service_types(self) -> tuple[dict[str, Any], ...]:
        """The TRE_R66 604 service type pointing at the CPTS's HealthcareService, by modality."""
        return (
            {
                "extension": [
                    {
                        "url": SERVICE_TYPE_EXTENSION,
                        "valueReference": {"reference": f"HealthcareService/{self.cpts.id}"},
                    }
                ],
                "coding": [{"system": CATEGORIE_ETABLISSEMENT, "code": CPTS_CATEGORY}],
            },
        )


@dataclass(frozen=True, slots=True)
class SlotFacts:
    """One free SAS-visible slot of a practitioner's site (a row of the search)."""

    slot_id: uuid.UUID
    start: datetime
    end: datetime
    modality: str
    specialty: str | None
    visibility: tuple[str, ...]
    site: SiteFacts


def idnst(cpts: CptsFacts) -> str:
    return "1" + cpts.finess


def organization(cpts: CptsFacts) -> dict[str, Any]:
    return _clean_resource(
        {
            "resourceType": "Organization",
            "id": str(cpts.id),
            "meta": {"profile": [profile("sas-cpts-organization-aggregator")]},
            "identifier": [
                {
                    "type": {"coding": [{"system": LOCATION_ID_TYPE, "code": "IDNST"}]},
                    "system": IDNST_SYSTEM,
                    "value": idnst(cpts),
                }
            ],
            "name": cpts.name,
            "telecom": [{"system": "phone", "value": e164(cpts.phone)}] if e164(cpts.phone) else None,
        }
    )


def healthcare_service(cpts: CptsFacts) -> dict[str, Any]:
    return _clean_resource(
        {
            "resourceType": "HealthcareService",
            "id": str(cpts.id),
            "meta": {"profile": [profile("sas-cpts-healthcareservice-aggregator")]},
            "providedBy": {"reference": f"Organization/{cpts.id}"},
        }
    )


def practitioner(facts: SiteFacts) -> dict[str, Any]:
    return _clean_resource(
        {
            "resourceType": "Practitioner",
            "id": str(facts.practitioner_id),
            "meta": {"profile": [profile("FrPractitionerAgregateur")]},
            "identifier": [
                {
                    "type": {"coding": [{"system": V2_0203, "code": "IDNPS"}]},
                    "system": IDNPS_SYSTEM,
                    "value": facts.idnps,
                }
            ],
            "name": [{"family": facts.family_name, "given": [facts.given_name]}],
        }
    )


def practitioner_role(facts: SiteFacts) -> dict[str, Any]:
    """The practitioner at one site: the site as a contained Location, the CPTS as organisation."""
    position = (
        {"latitude": facts.latitude, "longitude": facts.longitude}
        if facts.latitude is not None and facts.longitude is not None
        else None
    )
    phone = e164(facts.site_phone) or e164(facts.practitioner_phone)
    return _clean_resource(
        {
            "resourceType": "PractitionerRole",
            "id": str(facts.site_id),
            "meta": {"profile": [profile("FrPractitionerRoleExerciceAgregateur")]},
            "contained": [
                {
                    "resourceType": "Location",
                    "id": "site",
                    "meta": {"profile": [profile("FrLocationAgregateur")]},
                    "identifier": [
                        {
                            "type": {"coding": [{"system": LOCATION_ID_TYPE, "code": "INTRN"}]},
                            "system": SITE_SYSTEM,
                            "value": f"urn:uuid:{facts.site_id}",
                        }
                    ],
                    "address": {
                        "line": [facts.site_address] if facts.site_address else None,
                        "city": facts.site_city,
                        "postalCode": facts.site_postal_code,
                    },
                    "position": position,
                }
            ],
            "practitioner": {"reference": f"Practitioner/{facts.practitioner_id}"},
            "organization": {"identifier": {"system": IDNST_SYSTEM, "value": idnst(facts.cpts)}},
            "location": [{"reference": "#site"}],
            "telecom": [{"system": "phone", "value": phone}] if phone else None,
        }
    )


def schedule(facts: SiteFacts) -> dict[str, Any]:
    return _clean_resource(
        {
            "resourceType": "Schedule",
            "id": str(facts.site_id),
            "meta": {"profile": [profile("FrScheduleAgregateur")]},
            "actor": [
                {"reference": f"Practitioner/{facts.practitioner_id}"},
                {"reference": f"PractitionerRole/{facts.site_id}"},
            ],
        }
    )


def slot(facts: SlotFacts, booking_url: str) -> dict[str, Any]:
    """A free slot of the CPTS flow: its visibility (always CPTS), modality, the CPTS's
    HealthcareService (R5 backport extension), specialty, and where a regulator books it."""
    # The hot part of a search (up to 1000 of them): built without the generic cleaning, every
    # element below being set (the specialty only when known).
    site = facts.site
    tz = _zone(site.cpts.timezone)
    resource: dict[str, Any] = {
        "resourceType": "Slot",
        "id": str(facts.slot_id),
        "meta": {"profile": _SLOT_PROFILE, "security": _security(facts.visibility)},
        "serviceType": [_modality(facts.modality), *site.service_types],
    }
    if facts.specialty:
        resource["specialty"] = [{"coding": [{"system": SPECIALITE, "code": facts.specialty}]}]
    resource.update(
        {
            "appointmentType": _ROUTINE,
            "schedule": site.schedule_reference,
            "status": "free",
            "start": instant(facts.start, tz),
            "end": instant(facts.end, tz),
            "comment": booking_url,
        }
    )
    return resource


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


# What every slot repeats, made once (the encoder writes shared values as often as they appear).
_ROUTINE = {"coding": [{"system": V2_0276, "code": "ROUTINE"}]}
_SLOT_PROFILE = [profile("sas-cpts-slot-aggregator")]


@cache
def _security(visibility: tuple[str, ...]) -> list[dict[str, str]]:
    """The slot's visibility as TRE_R314 codes, CPTS always among them."""
    return [{"system": TYPE_CRENEAU, "code": code} for code in sorted({*visibility, "CPTS"})]


@cache
def _modality(code: str) -> dict[str, Any]:
    return {"coding": [{"system": ACT_CODE, "code": code}]}


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, Any]:
    """An error as FHIR says it (issue type codes of the FHIR `issue-type` value set)."""
    return problems.operation_outcome(code, diagnostics, severity)
