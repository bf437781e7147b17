from __future__ import annotations

import re
import time
from functools import cache

import pytest

from service.reference.communes import Commune, commune, communes, normalise, search


def codes(found: list[Commune]) -> list[str]:
    return [item.code for item in found]


def test_villeurbanne() -> None:
    villeurbanne = commune("69266")
    assert villeurbanne is not None
    assert (villeurbanne.name, villeurbanne.department, villeurbanne.postal_codes) == ("Villeurbanne", "69", ("69100",))
    assert villeurbanne.postal_code == "69100"
    assert villeurbanne.label == "Villeurbanne (69100)"
    assert villeurbanne.population > 100_000
    assert villeurbanne.point is not None
    latitude, longitude = villeurbanne.point
    assert latitude == pytest.approx(45.77, abs=0.03)
    assert longitude == pytest.approx(4.88, abs=0.03)


@pytest.mark.parametrize(
    ("code", "name", "department", "postal_code", "postal_codes"),
    [
        ("75056", "Paris", "75", "75001", 21),
        ("13055", "Marseille", "13", "13001", 16),
        ("2A004", "Ajaccio", "2A", "20000", 3),
        ("42218", "Saint-Étienne", "42", "42000", 3),
    ],
)
def test_known_communes(code: str, name: str, department: str, postal_code: str, postal_codes: int) -> None:
    found = commune(code)
    assert found is not None
    assert (found.code, found.name, found.department, found.postal_code) == (code, name, department, postal_code)
    assert len(found.postal_codes) == postal_codes
    assert found.point is not None


def test_code_lookup_ignores_case_and_spaces() -> None:
    assert commune(" 2a004 ") == commune("2A004")


@pytest.mark.parametrize("code", ["99999", "2C004", "", "Paris", "6926"])
def test_unknown_code(code: str) -> None:
    assert commune(code) is None


def test_label_without_postal_code_shows_the_department() -> None:
    kerguelen = commune("98412")
    assert kerguelen is not None
    assert kerguelen.postal_codes == ()
    assert kerguelen.postal_code is None
    assert kerguelen.label == "Archipel des Kerguelen (984)"


def test_the_file() -> None:
    table = communes()
    assert len(table) > 34_000
    assert all(re.fullmatch(r"\d{5}|2[AB]\d{3}", code) and item.code == code for code, item in table.items())
    assert list(table) == sorted(table)
    assert all(item.name and item.department for item in table.values())
    assert all(re.fullmatch(r"\d{5}", postal) for item in table.values() for postal in item.postal_codes)
    assert sum(1 for item in table.values() if item.postal_codes) / len(table) > 0.99


def test_points() -> None:
    table = communes().values()
    located = [item for item in table if item.point is not None]
    assert len(located) / len(table) > 0.99
    for item in located:
        assert item.point is not None
        latitude, longitude = item.point
        if not item.department.startswith("9") or item.department in ("90", "91", "92", "93", "94", "95"):
            assert 41.3 < latitude < 51.1, item
            assert -5.2 < longitude < 9.6, item
        else:
            assert -90 <= latitude <= 90, item
            assert -180 <= longitude <= 180, item


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("St-Étienne", "saint etienne"),
        ("  SAINT   étienne ", "saint etienne"),
        ("L'Haÿ-les-Roses", "lhay les roses"),
        ("L’Isle-d’Abeau", "lisle dabeau"),
        ("Œuf-en-Ternois", "oeuf en ternois"),
        ("Stes.-Maries-de-la-Mer", "saintes maries de la mer"),
        ("Sainte-Ste", "sainte sainte"),
        ("Strasbourg", "strasbourg"),
        ("'-  ", ""),
    ],
)
def test_normalise(text: str, key: str) -> None:
    assert normalise(text) == key


def test_postal_code() -> None:
    assert codes(search("69100"))[0] == "69266"
    assert "69266" in codes(search("69 100"))


def test_postal_code_prefix() -> None:
    found = search("691", limit=50)
    expected = [item for item in communes().values() if any(code.startswith("691") for code in item.postal_codes)]
    assert len(found) == len(expected) > 10
    assert search("69", limit=50)[0].code == "69123"  # Lyon
    assert all(any(code.startswith("691") for code in item.postal_codes) for item in found)
    populations = [item.population for item in found]
    assert populations == sorted(populations, reverse=True)
    assert found[0].code == "69266"  # Villeurbanne: the most populous in 691xx


def test_five_digits_are_also_an_insee_code() -> None:
    assert codes(search("75056")) == ["75056"]
    assert codes(search("13055")) == ["13055"]
    # 69100 is Villeurbanne's postal code and Irigny's INSEE code: the postal code comes first.
    assert codes(search("69100")) == ["69266", "69100"]


@pytest.mark.parametrize("text", ["2A004", "2a004", " 2A004 "])
def test_corsican_insee_code(text: str) -> None:
    assert codes(search(text)) == ["2A004"]


@pytest.mark.parametrize(
    "text", ["st etienne", "saint-étienne", "SAINT ETIENNE", "St-Etienne", "  saint   étienne ", "ST ÉTIENNE", "st."]
)
def test_name_is_matched_insensitively(text: str) -> None:
    assert search(text)[0].code == "42218"


def test_apostrophes() -> None:
    with_apostrophe = codes(search("l'isle", limit=50))
    assert with_apostrophe == codes(search("lisle", limit=50)) == codes(search("L’Isle", limit=50))
    assert "95313" in with_apostrophe  # L'Isle-Adam
    assert "95313" in codes(search("l isle adam"))
    assert "95313" in codes(search("isle adam"))
    assert search("l'haÿ-les-roses")[0].code == "94038"


def test_exact_name_first() -> None:
    assert search("die")[0].name == "Die"  # before the more populous Dieppe
    assert search("paris")[0].code == "75056"
    assert search("villeurbanne")[0].code == "69266"


def test_saint_prefix_first_is_the_most_populous() -> None:
    starting = [item for item in communes().values() if normalise(item.name).startswith("saint")]
    assert search("saint")[0] == max(starting, key=lambda item: item.population)
    assert search("saint")[0].code == "42218"


@cache
def keys(item: Commune) -> frozenset[str]:
    """The name normalised, and with its apostrophes as spaces ("l isle adam" as well as "lisle adam")."""
    return frozenset((normalise(item.name), normalise(item.name.replace("'", " ").replace("’", " "))))


def tier(item: Commune, key: str) -> int:
    names = keys(item)
    if key in names:
        return 0
    if any(name.startswith(key) for name in names):
        return 1
    if any(f" {key}" in f" {name}" for name in names):
        return 2
    assert any(key in name for name in names), (item, key)
    return 3


@pytest.mark.parametrize("text", ["saint", "mont", "ville", "sur mer", "bourg", "roses", "lyon", "a", "eu"])
def test_ranking(text: str) -> None:
    """Equal, then starting with, then a word starting with, then containing; the most populous first
    in each group; nothing left out that should have come first."""
    key = normalise(text)
    found = search(text, limit=40)
    matching = [item for item in communes().values() if any(key in name for name in keys(item))]
    assert len(found) == min(40, len(matching)) > 1
    ranks = [(tier(item, key), -item.population) for item in found]
    assert ranks == sorted(ranks)
    last = ranks[-1]
    missed = [item for item in matching if item not in found]
    assert all((tier(item, key), -item.population) >= last for item in missed)


@pytest.mark.parametrize("text", ["", " ", "\t\n", "'", " - "])
def test_empty_text(text: str) -> None:
    assert search(text) == []


@pytest.mark.parametrize("text", ["zzzz", "123456", "2A00", "saint etienne zzz"])
def test_no_match(text: str) -> None:
    assert search(text) == []


@pytest.mark.parametrize("limit", [0, 1, 3, 10, 25])
def test_limit(limit: int) -> None:
    assert len(search("saint", limit=limit)) == limit
    assert len(search("0", limit=limit)) == limit
    assert len(search("saint", limit=-1)) == 0


def test_default_limit() -> None:
    assert len(search("saint")) == 10


def test_search_is_fast() -> None:
    texts = ["st etienne", "villeurbanne", "zzz", "a", "saint", "l'isle", "69", "69100", "2A004", "sur mer"]
    search("warm the cache")
    started = time.perf_counter()
    for _ in range(20):
        for text in texts:
            search(text)
    mean_ms = (time.perf_counter() - started) * 1000 / (20 * len(texts))
    assert mean_ms < 5, f"{mean_ms:.2f} ms per search"
