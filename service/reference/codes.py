"""Official code lists the service validates against, loaded once from the CSV files beside this
module (copied from the CPTS reference data; see README "Reference data")."""

from __future__ import annotations

import csv
from collections.abc import Iterator
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
