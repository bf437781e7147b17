"""National professional identifiers (RPPS, ADELI) and membership rules; pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.reference.codes import PHYSICIAN, professions, specialties
from service.reference.communes import commune

RPPS_PATTERN = re.compile(r"^\d{11}$")
# ADELI: 9 characters, the first two the département (2A/2B in Corsica).
ADELI_PATTERN = re.compile(r"^(?:\d{2}|2[AB])\d{7}$")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@dataclass(frozen=True)
class NationalId:
    id_type: str  # "rpps" or "adeli"
    value: str

    @property
    def idnps(self) -> str:
        """IDNPS as in the national directory: "8" + RPPS, "0" + ADELI."""
        return ("8" if self.id_type == "rpps" else "0") + self.value


@dataclass(frozen=True)
class Warning:
    code: str
    detail: str


def national_id_warnings(national_id: NationalId) -> list[Warning]:
    # Some real RPPS numbers fail their Luhn key; they are accepted but flagged for a check.
    if national_id.id_type == "rpps" and not luhn_valid(national_id.value):
        return [Warning("rpps_check_digit", "The RPPS check digit (Luhn key) does not match; please verify it.")]
    return []


def profession_problem(profession: str, specialty: str | None) -> str | None:
    """Why a profession/specialty pair is not acceptable, or None."""
    if profession not in professions():
        return f"unknown profession code '{profession}' (TRE_G15)"
    if specialty is not None:
        if profession != PHYSICIAN:
            return "a specialty (TRE_R38) is only given for physicians (profession 10)"
        if specialty not in specialties():
            return f"unknown or non-SNP specialty code '{specialty}' (TRE_R38)"
    return None


def display_name(family_name: str, given_name: str, profession: str) -> str:
    """How a practitioner is named to a patient: "Dr Claire Martin", "Paul Roux (Infirmier)"."""
    if profession == PHYSICIAN:
        return f"Dr {given_name} {family_name}"
    label = professions().get(profession)
    return f"{given_name} {family_name} ({label})" if label else f"{given_name} {family_name}"


@dataclass(frozen=True)
class Place:
    postal_code: str | None
    commune_name: str | None
    full_address: str  # what is read to the patient: "12 rue des Lilas, 69003 Lyon"


def place(address: str | None, postal_code: str | None, commune_insee: str) -> Place:
    """A site's address as read out, completed from the communes reference: the commune's name,
    and its postal code when the site has none and the commune has only one."""
    found = commune(commune_insee)
    if postal_code is None and found is not None and len(found.postal_codes) == 1:
        postal_code = found.postal_code
    town = " ".join(part for part in (postal_code, found.name if found else None) if part) or commune_insee
    return Place(postal_code, found.name if found else None, ", ".join(p for p in (address, town) if p))
