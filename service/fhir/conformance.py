"""Conformance of FHIR R4 JSON resources to the profiles of the ANS guide "Service d'Accès aux Soins" 1.1.0.

The guide's package files (CC0) are in ``ig/`` next to this module; ``load_guide`` reads them once and indexes the
StructureDefinitions by their own ``url`` (the guide mixes ``http://sas.fr/fhir/StructureDefinition/...`` and
``https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/...``) and by ``url|version``, the ValueSets likewise.
``check`` walks each profile's ``snapshot.element`` list alongside the instance and returns ``Issue`` objects
(instance path such as ``Slot.serviceType[1].extension[0].url``, message); no issue means conformant for what follows.

Checked:

* profiles: without ``profile_url``, the resource must declare ``meta.profile`` and every declared profile must be in
  the guide (a ``|version`` suffix is accepted); the profile's type must be the resource's type;
* cardinality (``min``/``max``) of every element the snapshot lists, at any depth (``Slot.serviceType.coding``),
  for each occurrence of its parent; a primitive given only by its ``_name`` extension counts as present;
* JSON shape: an array exactly where the base element repeats; booleans, integers (``integer``, ``positiveInt``,
  ``unsignedInt``) and decimals as JSON numbers/booleans, other primitives as strings, complex types as objects; the R4
  regular expressions of ``instant``, ``dateTime``, ``date``, ``time``, ``code`` and ``id``;
* unknown elements: where the snapshot lists an element's children (it then lists all of them), every property of the
  instance must be one of them (or its ``_name`` twin, or ``resourceType`` at a resource's root); for a choice
  ``value[x]`` only the names of the allowed types (``valueReference``...);
* ``fixed[x]`` (deep equality) and ``pattern[x]`` (the instance holds every field of the pattern; each item of a pattern
  array is matched by some item of the instance array), applied to each occurrence present;
* ``required`` bindings to a ValueSet of the package whose codes are listed (``compose.include.concept`` or
  ``expansion.contains``): a ``code`` must be one of its codes, a ``Coding`` one of its (system, code) pairs, a
  ``CodeableConcept`` must carry at least one such coding;
* constraints of severity ``error`` whose FHIRPath expression has the shape ``matches('<regex>')`` or
  ``<name>(.<name>)*.matches('<regex>')`` (in the package: ``FINESS-invariant`` and ``SIRET-invariant`` on
  ``Organization.identifier``): every string the path selects must contain a match of the regex (Python ``re.search``;
  an absent value satisfies the constraint);
* slicing, to count each slice against its own min/max and to check each matched item against the slice's elements
  (fixed/pattern/binding/children); an item goes to the first slice whose discriminators all match; an item matching
  no slice of a ``closed`` slicing is an issue. Discriminators supported, all those of the package:
  ``value``/``pattern`` (``url`` of extensions, ``system`` of identifiers and codings, ``coding.system``, ``$this``),
  decided by the fixed/pattern value at the discriminator path, else (for ``url``) the extension's type profile, else a
  required binding to a package ValueSet, else the fixed/pattern values set below the discriminator path (this is how
  ``Slot.serviceType:TypeConsultation`` of the CPTS slot, sliced on ``pattern $this`` without a pattern, is recognised
  by its ``coding.system``); ``type`` (``$this`` of a choice, ``resource`` of a Bundle entry: its ``resourceType``);
  ``profile`` (``resource`` of a Bundle entry: decided by the profiles the resource *declares* in ``meta.profile``);
* extension and datatype profiles of the package used as an element's type profile (the ``extension-Slot.serviceType``
  extension) are checked too;
* nested resources: each Bundle entry's resource against its declared profiles and the profile of the entry slice it
  falls in (an entry resource with no profile at all is an issue); contained resources (the Location contained in a
  PractitionerRole) against the profiles they declare, if any;
* no empty element anywhere, nested resources included: no empty or blank string, empty array, empty object or
  ``null`` (except ``null`` placeholders of an array that has its ``_name`` twin).

Not checked:

* bindings to ValueSets absent from the package (core FHIR value sets such as ``slotstatus`` or ``bundle-type``, the
  NOS terminologies referenced only by URL: TRE_R38 specialties, JDV_J165 slot types, v3-ActEncounterCode...), and
  bindings that are ``extensible``, ``preferred`` or ``example`` (no extensible binding of the package points at a
  package ValueSet anyway);
* every other constraint (``ele-1``, ``ext-1``, ``dom-*``, ``bdl-*``, ``ref-1``...), listed by
  ``unsupported_constraints()``; ``ele-1`` is largely covered by the empty-element rule;
* what the snapshot does not expand: the inside of datatypes it leaves unconstrained (a ``Reference``'s fields,
  ``HumanName``...), datatype and extension profiles outside the package (``FrContactPoint``,
  ``FrServiceTypeDuration``...), ``contentReference`` elements (``Bundle.entry.link``);
* references (targets are not resolved, ``targetProfile`` is ignored), ``mustSupport``, ``isModifier``, ordered slicing,
  an item matching several slices, the formats of ``uri``/``url``/``canonical``/``base64Binary``/``markdown``, the
  XHTML of ``text.div``, and the profiles of the dependencies (FR Core...) beyond what the guide's snapshots inline.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

IG_DIR = Path(__file__).parent / "ig"

Json = Any  # a parsed JSON value

_MATCHES = re.compile(r"(?:(?P<path>[A-Za-z]\w*(?:\.[A-Za-z]\w*)*)\.)?matches\('(?P<regex>(?:[^'\\]|\\.)*)'\)")
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_FORMATS = {
    "instant": re.compile(rf"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T{_TIME}{_ZONE}"),
    "dateTime": re.compile(rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T{_TIME}{_ZONE})?)?)?"),
    "date": re.compile(rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"),
    "time": re.compile(_TIME),
    "code": re.compile(r"[^\s]+( [^\s]+)*"),
    "id": re.compile(r"[A-Za-z0-9\-.]{1,64}"),
}
_INTEGERS = {"integer": None, "unsignedInt": 0, "positiveInt": 1}  # type -> minimum


@dataclass(frozen=True)
class Issue:
    path: str
    message: str


@dataclass(frozen=True)
class Constraint:
    key: str
    expression: str
    path: str  # dotted path below the element ("" for the element itself)
    regex: re.Pattern[str]


@dataclass(frozen=True)
class Element:
    """One ``snapshot.element`` entry, reduced to what the checker uses."""

    id: str
    name: str  # last segment of the path: "serviceType", "value[x]"
    slice_name: str | None
    min: int
    max: int | None  # None: unbounded
    repeats: bool  # the base element repeats, so its JSON is an array
    keys: Mapping[str, str | None]  # JSON property -> its type code ("valueReference" -> "Reference")
    type_profiles: tuple[str, ...]
    fixed: Json
    pattern: Json
    value_set: str | None  # of a required binding
    constraints: tuple[Constraint, ...]
    discriminators: tuple[tuple[str, str], ...]
    closed: bool


@dataclass(frozen=True)
class Profile:
    url: str
    type: str
    root: Element
    elements: Mapping[str, Element]
    children: Mapping[str, tuple[Element, ...]]  # element id -> its child elements
    slices: Mapping[str, tuple[Element, ...]]  # element id -> its slices, in order


@dataclass(frozen=True)
class Guide:
    version: str
    profiles: Mapping[str, Profile]  # by url and url|version
    value_sets: Mapping[str, frozenset[tuple[str, str]] | None]  # (system, code) pairs; None: codes not in package
    search_parameters: Mapping[str, Json]
    capability_statements: Mapping[str, Json]
    unsupported: tuple[str, ...]


def _read(path: Path) -> Json:
    return json.loads(path.read_text(encoding="utf-8"))


def _prefixed(raw: Mapping[str, Json], prefix: str) -> Json:
    return next((value for key, value in raw.items() if key.startswith(prefix)), None)


def _constraint(raw: Mapping[str, Json]) -> Constraint | None:
    found = _MATCHES.fullmatch(raw.get("expression", "").strip())
    if found is None or raw.get("severity") != "error":
        return None
    regex = re.sub(r"\\(['\\])", r"\1", found["regex"])
    return Constraint(raw["key"], raw["expression"], found["path"] or "", re.compile(regex))


def _element(raw: Mapping[str, Json]) -> tuple[Element, list[str]]:
    types = [t["code"] for t in raw.get("type", [])]
    name = raw["path"].rpartition(".")[2]
    if name.endswith("[x]"):
        keys: dict[str, str | None] = {name[:-3] + t[0].upper() + t[1:]: t for t in types}
    else:
        keys = {name: types[0] if len(types) == 1 else None}
    slicing = raw.get("slicing", {})
    binding = raw.get("binding", {})
    constraints, unsupported = [], []
    for item in raw.get("constraint", []):
        parsed = _constraint(item)
        if parsed is not None:
            constraints.append(parsed)
        elif "expression" in item:
            unsupported.append(f"{item['key']}: {item['expression']}")
    element = Element(
        id=raw["id"],
        name=name,
        slice_name=raw.get("sliceName"),
        min=int(raw.get("min", 0)),
        max=None if raw.get("max", "*") == "*" else int(raw["max"]),
        repeats=raw.get("base", {}).get("max", raw.get("max")) != "1",
        keys=keys,
        type_profiles=tuple(p for t in raw.get("type", []) for p in t.get("profile", [])),
        fixed=_prefixed(raw, "fixed"),
        pattern=_prefixed(raw, "pattern"),
        value_set=binding.get("valueSet") if binding.get("strength") == "required" else None,
        constraints=tuple(constraints),
        discriminators=tuple((d["type"], d["path"]) for d in slicing.get("discriminator", [])),
        closed=slicing.get("rules") == "closed",
    )
    return element, unsupported


def _profile(definition: Mapping[str, Json], unsupported: set[str]) -> Profile:
    elements: dict[str, Element] = {}
    children: dict[str, list[Element]] = defaultdict(list)
    slices: dict[str, list[Element]] = defaultdict(list)
    for raw in definition["snapshot"]["element"]:
        element, skipped = _element(raw)
        unsupported.update(skipped)
        elements[element.id] = element
        parent, _, last = element.id.rpartition(".")
        if ":" in last:
            slices[element.id.rpartition(":")[0]].append(element)
        elif parent:
            children[parent].append(element)
    root = elements[definition["snapshot"]["element"][0]["id"]]
    return Profile(
        url=definition["url"],
        type=definition["type"],
        root=root,
        elements=elements,
        children={key: tuple(value) for key, value in children.items()},
        slices={key: tuple(value) for key, value in slices.items()},
    )


def _codes(value_set: Mapping[str, Json]) -> frozenset[tuple[str, str]] | None:
    if "expansion" in value_set:
        return frozenset((c.get("system", ""), c["code"]) for c in value_set["expansion"].get("contains", []))
    includes = value_set.get("compose", {}).get("include", [])
    if not includes or any("concept" not in i or "filter" in i or "valueSet" in i for i in includes):
        return None
    return frozenset((i.get("system", ""), c["code"]) for i in includes for c in i["concept"])


def _by_url(resources: Iterable[Mapping[str, Json]]) -> dict[str, Json]:
    index: dict[str, Json] = {}
    for resource in resources:
        index[resource["url"]] = resource
        if "version" in resource:
            index[f"{resource['url']}|{resource['version']}"] = resource
    return index


@cache
def load_guide() -> Guide:
    """The guide of ``ig/``, read once."""
    unsupported: set[str] = set()
    profiles: dict[str, Profile] = {}
    for url, definition in _by_url(_read(p) for p in sorted(IG_DIR.glob("StructureDefinition-*.json"))).items():
        profiles[url] = profiles.get(definition["url"]) or _profile(definition, unsupported)
    value_sets = _by_url(_read(p) for p in sorted(IG_DIR.glob("ValueSet-*.json")))
    return Guide(
        version=_read(IG_DIR / "package.json")["version"],
        profiles=profiles,
        value_sets={url: _codes(value_set) for url, value_set in value_sets.items()},
        search_parameters=_by_url(_read(p) for p in sorted(IG_DIR.glob("SearchParameter-*.json"))),
        capability_statements=_by_url(_read(p) for p in sorted(IG_DIR.glob("CapabilityStatement-*.json"))),
        unsupported=tuple(sorted(unsupported)),
    )


def unsupported_constraints() -> list[str]:
    """The constraints of the guide's profiles that ``check`` does not evaluate, as ``"key: expression"``."""
    return list(load_guide().unsupported)


def check(resource: Mapping[str, Json], profile_url: str | None = None) -> list[Issue]:
    """The issues of ``resource`` against ``profile_url``, or else against every profile it declares."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        return [Issue("", "not a FHIR resource: no resourceType")]
    checker = _Checker(load_guide())
    _empty(resource, kind, checker.issues)
    if profile_url is None:
        checker.declared(resource, kind, (), required=True)
    else:
        checker.conform(resource, kind, profile_url, kind)
    for key, path in checker.unprofiled.items():
        if key not in checker.profiled:
            checker.issues.append(Issue(f"{path}.meta.profile", "no profile declared in meta.profile"))
    return list(dict.fromkeys(checker.issues))


def _empty(value: Json, path: str, issues: list[Issue]) -> None:
    if value is None:
        issues.append(Issue(path, "null value"))
    elif isinstance(value, str) and not value.strip():
        issues.append(Issue(path, "empty string"))
    elif isinstance(value, list):
        issues.extend([Issue(path, "empty array")] if not value else [])
    elif isinstance(value, dict):
        issues.extend([Issue(path, "empty object")] if not value else [])
        for key, item in value.items():
            twin = (key[1:] if key.startswith("_") else f"_{key}") in value
            if not isinstance(item, list):
                _empty(item, f"{path}.{key}", issues)
                continue
            if not item:
                _empty(item, f"{path}.{key}", issues)
            for index, entry in enumerate(item):
                if entry is not None or not twin:
                    _empty(entry, f"{path}.{key}[{index}]", issues)


def _select(value: Json, path: str) -> list[Json]:
    current = [value]
    for segment in path.split(".") if path and path != "$this" else []:
        found = [item[segment] for item in current if isinstance(item, dict) and segment in item]
        current = [x for item in found for x in (item if isinstance(item, list) else [item])]
    return current


def _contains(value: Json, pattern: Json) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and _contains(value[k], p) for k, p in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(_contains(v, p) for v in value) for p in pattern)
    return bool(type(value) is type(pattern) and value == pattern)


def _shown(value: Json) -> str:
    return json.dumps(value, ensure_ascii=False)


def _declared_profiles(resource: Mapping[str, Json]) -> list[str]:
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    return [p for p in profiles if isinstance(p, str)] if isinstance(profiles, list) else []


def _kind_problem(code: str | None, value: Json) -> str | None:
    if code is None:
        return None
    if code == "boolean":
        good = isinstance(value, bool)
    elif code in _INTEGERS:
        least = _INTEGERS[code]
        good = isinstance(value, int) and not isinstance(value, bool) and (least is None or value >= least)
    elif code == "decimal":
        good = isinstance(value, int | float) and not isinstance(value, bool)
    elif code[0].islower() or code.startswith("http://hl7.org/fhirpath/"):
        if not isinstance(value, str):
            good = False
        elif code in _FORMATS and not _FORMATS[code].fullmatch(value):
            return f"not a valid {code}: {_shown(value)}"
        else:
            good = True
    else:
        good = isinstance(value, dict)
    return None if good else f"a {code.rpartition('.')[2]} is expected, not {_shown(value)[:80]}"


class _Checker:
    def __init__(self, guide: Guide) -> None:
        self.guide = guide
        self.issues: list[Issue] = []
        self.done: set[tuple[int, str]] = set()
        self.profiled: set[int] = set()
        self.unprofiled: dict[int, str] = {}

    def add(self, path: str, message: str) -> None:
        self.issues.append(Issue(path, message))

    def declared(self, resource: Mapping[str, Json], path: str, extra: Iterable[str], *, required: bool) -> None:
        urls = _declared_profiles(resource)
        for index, url in enumerate(urls):
            self.conform(resource, path, url, f"{path}.meta.profile[{index}]")
        for url in extra:
            self.conform(resource, path, url, path)
        if not urls and required:
            self.unprofiled.setdefault(id(resource), path)

    def conform(self, resource: Mapping[str, Json], path: str, url: str, where: str) -> None:
        profile = self.guide.profiles.get(url)
        if profile is None:
            self.add(where, f"unknown profile {url}")
            return
        self.profiled.add(id(resource))
        if (id(resource), profile.url) in self.done:
            return
        self.done.add((id(resource), profile.url))
        if resource.get("resourceType") != profile.type:
            self.add(path, f"profile {url} is for {profile.type}, not {resource.get('resourceType')}")
            return
        self.walk(profile, profile.root.id, resource, path, root=True)

    def walk(self, profile: Profile, element_id: str, value: Mapping[str, Json], path: str, root: bool) -> None:
        """The children of one occurrence (an object) of ``element_id``."""
        children = profile.children.get(element_id, ())
        if not children:
            return  # the snapshot does not expand this element
        known = {"resourceType"} if root else set()
        for child in children:
            known.update(child.keys)
            self.element(profile, child, value, path)
        for key in value:
            if key not in known and not (key.startswith("_") and key[1:] in known):
                self.add(f"{path}.{key}", f"unknown element '{key}'")

    def element(self, profile: Profile, element: Element, parent: Mapping[str, Json], path: str) -> None:
        items: list[tuple[str, str, Json]] = []  # (JSON key, path, value) of each occurrence
        count = 0
        for key in element.keys:
            if key not in parent:
                twin = parent.get(f"_{key}")
                count += len(twin) if isinstance(twin, list) else int(twin is not None)
                continue
            value = parent[key]
            if isinstance(value, list) != element.repeats:
                self.add(f"{path}.{key}", "an array is expected" if element.repeats else "a single value is expected")
            values = value if isinstance(value, list) else [value]
            suffix = [f"[{i}]" for i in range(len(values))] if isinstance(value, list) else [""]
            items.extend((key, f"{path}.{key}{s}", v) for s, v in zip(suffix, values, strict=True))
        self.cardinality(f"{path}.{element.name}", element, count + len(items), "")
        for key, item_path, item in items:
            self.value(profile, element, key, item_path, item)
        slices = profile.slices.get(element.id, ())
        if not slices or not element.discriminators:
            return
        matched: dict[str, list[tuple[str, str, Json]]] = {s.id: [] for s in slices}
        for key, item_path, item in items:
            found = next((s for s in slices if self.in_slice(profile, element, s, key, item)), None)
            if found is not None:
                matched[found.id].append((key, item_path, item))
            elif element.closed:
                self.add(item_path, f"matches no slice of the closed slicing of {element.name}")
        for piece in slices:
            self.cardinality(f"{path}.{element.name}", piece, len(matched[piece.id]), f"slice '{piece.slice_name}': ")
            for key, item_path, item in matched[piece.id]:
                self.value(profile, piece, key, item_path, item)

    def cardinality(self, path: str, element: Element, count: int, label: str) -> None:
        if count < element.min:
            self.add(path, f"{label}minimum cardinality {element.min} not met ({count} found)")
        if element.max is not None and count > element.max:
            self.add(path, f"{label}maximum cardinality {element.max} exceeded ({count} found)")

    def value(self, profile: Profile, element: Element, key: str, path: str, value: Json) -> None:
        """One occurrence of ``element``: its own rules, then its children."""
        if value is None:
            return
        code = element.keys.get(key)
        if isinstance(value, dict) and code in ("Resource", value.get("resourceType")):  # a nested resource
            self.declared(value, path, element.type_profiles, required=element.name == "resource")
            return
        problem = _kind_problem(code, value)
        if problem is not None:
            self.add(path, problem)
            return
        if element.fixed is not None and value != element.fixed:
            self.add(path, f"must be the fixed value {_shown(element.fixed)}")
        if element.pattern is not None and not _contains(value, element.pattern):
            self.add(path, f"does not match the pattern {_shown(element.pattern)}")
        if element.value_set is not None:
            self.binding(element.value_set, code, value, path)
        for constraint in element.constraints:
            for text in _select(value, constraint.path):
                if isinstance(text, str) and not constraint.regex.search(text):
                    self.add(path, f"constraint {constraint.key} violated: {constraint.expression}")
        for url in element.type_profiles:
            other = self.guide.profiles.get(url)
            if other is not None and other.type == code and isinstance(value, dict):
                self.walk(other, other.root.id, value, path, root=False)
        if isinstance(value, dict):
            self.walk(profile, element.id, value, path, root=False)

    def binding(self, url: str, code: str | None, value: Json, path: str) -> None:
        codes = self.guide.value_sets.get(url, self.guide.value_sets.get(url.partition("|")[0]))
        if codes is None:
            return  # not in the package, or not enumerated: not checked
        if self.in_value_set(codes, code, value):
            return
        self.add(path, f"{_shown(value)} is not in the required value set {url}")

    @staticmethod
    def in_value_set(codes: frozenset[tuple[str, str]], code: str | None, value: Json) -> bool:
        if isinstance(value, str):
            return any(value == known for _, known in codes)
        if not isinstance(value, dict):
            return False
        if code == "CodeableConcept" or "coding" in value:
            codings = value.get("coding")
            return isinstance(codings, list) and any(_Checker.in_value_set(codes, "Coding", c) for c in codings)
        return any(value.get("system") == system and value.get("code") == known for system, known in codes)

    def in_slice(self, profile: Profile, element: Element, piece: Element, key: str, item: Json) -> bool:
        return all(self.discriminate(profile, piece, kind, path, key, item) for kind, path in element.discriminators)

    def discriminate(self, profile: Profile, piece: Element, kind: str, path: str, key: str, item: Json) -> bool:
        target = piece if path == "$this" else profile.elements.get(f"{piece.id}.{path}")
        values = _select(item, path)
        if kind == "type" and path == "$this":
            return key in piece.keys
        if kind == "type":
            return target is not None and any(
                isinstance(v, dict) and v.get("resourceType") in target.keys.values() for v in values
            )
        if kind == "profile":
            return target is not None and any(
                isinstance(v, dict) and set(_declared_profiles(v)) & set(target.type_profiles) for v in values
            )
        if kind not in ("value", "pattern"):
            return False  # "exists": not used by the guide
        if target is not None and target.fixed is not None:
            return any(v == target.fixed for v in values)
        if target is not None and target.pattern is not None:
            return any(_contains(v, target.pattern) for v in values)
        if path == "url" and piece.type_profiles:
            return any(v in piece.type_profiles for v in values)
        if target is None:
            return False
        codes = self.guide.value_sets.get(target.value_set or "")
        if codes is not None:
            code = next(iter(target.keys.values()), None)
            return any(self.in_value_set(codes, code, v) for v in values)
        below = [
            (element.id[len(target.id) + 1 :], element)
            for element in profile.elements.values()
            if element.id.startswith(f"{target.id}.")
            and ":" not in element.id[len(target.id) :]
            and (element.fixed is not None or element.pattern is not None)
        ]
        return bool(below) and all(
            any(
                (v == element.fixed) if element.fixed is not None else _contains(v, element.pattern)
                for value in values
                for v in _select(value, relative)
            )
            for relative, element in below
        )
