"""Official code lists the service validates against, loaded once from the CSV files beside this
module (copied from the CPTS reference data; see README "Reference data")."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent
PHYSICIAN = "10"


def read_csv(name: str) -> Iterator[dict[str, str]]:
    """Rows of a reference CSV, skipping its leading `#` comment lines."""
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as handle:
        lines = (line for line in handle if not line.startswith("#"))
        yield from csv.DictReader(lines)


@cache
def professions() -> dict[str, str]:
    """TRE_G15 profession code -> label."""
    return {row["code"]: row["display"] for row in read_csv("professions_G15.csv")}


@cache
def specialties() -> dict[str, str]:
    """TRE_R38 specialties of physicians that take part in SNP (JDV_J239) -> label."""
    return {row["code"]: row["display"] for row in read_csv("snp_specialties_J239.csv") if row["system"] == "TRE_R38"}


@dataclass(frozen=True)
class Motif:
    """A Hub Santé motif (three levels: Mxx.00.00, Mxx.yy.00, Mxx.yy.zz)."""

    code: str
    label: str
    level: int


@cache
def motifs() -> dict[str, Motif]:
    result: dict[str, Motif] = {}
    for row in read_csv("hubsante_motif.csv"):
        code = row["code"].strip()
        level = 1 if code.endswith(".00.00") else 2 if code.endswith(".00") else 3
        label = (row["label_n1"] or row["label_n2"] or row["label_n3"]).strip()
        result[code] = Motif(code, label, level)
    return result


@cache
def aci_amounts() -> dict[tuple[str, str], dict[int, int]]:
    """ACI 2019 annual amounts in cents: (line, part) -> {size class: cents}."""
    return {
        (row["line"], row["part"]): {size: int(row[f"size_{size}"]) * 100 for size in (1, 2, 3, 4)}
        for row in read_csv("aci_2019_amounts.csv")
    }


def snp_compensation_envelope_cents(size: int) -> int:
    """The yearly compensation envelope for professionals of a CPTS of this size (default)."""
    return aci_amounts()[("access_to_care", "snp_professional_compensation")][size]


class Classification(StrEnum):
    """How a motif is screened (motif_classification.csv)."""

    transfer_15 = "transfer_15"  # life-threatening: the 15 first
    assess = "assess"  # the handler asks the red-flag questions
    snp = "snp"  # benign: bookable within 24 h


@cache
def motif_classification() -> dict[str, Classification]:
    """The project's classification of every Hub Santé motif, reviewable line by line."""
    return {row["code"]: Classification(row["classification"]) for row in read_csv("motif_classification.csv")}


# Screening order: a rule may raise a classification, never lower it.
SEVERITY = {Classification.snp: 0, Classification.assess: 1, Classification.transfer_15: 2}


@dataclass(frozen=True)
class Age:
    """An age bound of a rule: `amount` whole days, months or years."""

    amount: int
    unit: str  # "d", "m" or "y"

    @classmethod
    def parse(cls, text: str) -> Age | None:
        text = text.strip()
        if not text:
            return None
        if text[-1] not in "dmy" or not text[:-1].isdigit():
            raise ValueError(f"an age is written like 28d, 3m or 75y, not {text!r}")
        return cls(int(text[:-1]), text[-1])


@dataclass(frozen=True)
class AgeRule:
    """An age condition on motifs (age_rules.csv)."""

    code: str
    motif: str  # a code, a prefix ending in "*", or "*"
    min_age: Age | None
    max_age: Age | None
    classification: Classification
    rationale: str

    def matches_motif(self, motif: str) -> bool:
        return motif.startswith(self.motif[:-1]) if self.motif.endswith("*") else motif == self.motif


@cache
def age_rules() -> tuple[AgeRule, ...]:
    """The age conditions on motifs, in file order."""
    return tuple(
        AgeRule(
            code=row["code"],
            motif=row["motif"],
            min_age=Age.parse(row["min_age"]),
            max_age=Age.parse(row["max_age"]),
            classification=Classification(row["classification"]),
            rationale=row["rationale"],
        )
        for row in read_csv("age_rules.csv")
    )


@cache
def red_flags() -> dict[str, str]:
    """Red-flag questions the handler ticks: code -> French label."""
    return {row["code"]: row["label_fr"] for row in read_csv("red_flags.csv")}
