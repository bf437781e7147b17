"""The SAS conformance checker: every official example of the guide passes, and mutated copies fail with the issue
the mutation causes (no official example of the 1.1.0 package violates its own profile)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import pytest

from service.fhir import router
from service.fhir.conformance import IG_DIR, Issue, check, load_guide, unsupported_constraints
from service.fhir.resources import CptsFacts, SiteFacts, SlotFacts
from service.fhir.search import parse

SAS = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
CPTS_SLOT = SAS + "sas-cpts-slot-aggregator"
SOS_APPOINTMENT = SAS + "sas-sos-appointment"
PS_SLOT = "http://sas.fr/fhir/StructureDefinition/FrSlotAgregateur"
EXAMPLES = sorted((IG_DIR / "example").glob("*.json"))


def read(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def example(name: str) -> dict[str, Any]:
    return read(IG_DIR / "example" / f"{name}.json")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_official_example_conforms_to_its_profiles(path: Path) -> None:
    assert check(read(path)) == []


def test_the_examples_include_the_three_bundles_and_a_contained_location() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"Bundle-ExampleBundleCPTS", "Bundle-ExampleBundlePSIndiv", "Bundle-ExampleBundleAgregateurSOS"} <= names
    assert len(EXAMPLES) == 41
    assert example("PractitionerRole-ExamplePractitionerRoleAgregateur")["contained"][0]["resourceType"] == "Location"


def test_an_explicit_profile_is_used_instead_of_the_declared_ones() -> None:
    appointment = example("Appointment-1")  # declares FrAppointmentSAS, also conforms to the SOS appointment
    assert check(appointment, SOS_APPOINTMENT) == []
    assert check(example("Slot-ExampleSlotCPTS1"), CPTS_SLOT) == []


def test_the_guide_indexes_both_url_schemes_and_versions() -> None:
    guide = load_guide()
    assert guide.version == "1.1.0"
    assert guide.profiles[PS_SLOT].type == "Slot"
    assert guide.profiles[CPTS_SLOT + "|1.1.0"] is guide.profiles[CPTS_SLOT]
    assert guide.profiles["http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"].type == "Extension"
    typecreneau = "https://interop.esante.gouv.fr/ig/fhir/sas/ValueSet/sas-sos-valueset-typecreneau"
    codes = guide.value_sets[typecreneau + "|1.1.0"]
    assert codes is not None
    assert {code for _, code in codes} == {"PUBLIC", "SNP"}
    assert "https://interop.esante.gouv.fr/ig/fhir/sas/SearchParameter/slot-sp-start" in guide.search_parameters
    assert len({id(c) for c in guide.capability_statements.values()}) == 9


def test_only_the_regex_invariants_are_evaluated() -> None:
    unsupported = unsupported_constraints()
    assert "ele-1: hasValue() or (children().count() > id.count())" in unsupported
    assert "ext-1: extension.exists() != value.exists()" in unsupported
    assert not [c for c in unsupported if c.startswith(("FINESS-invariant", "SIRET-invariant"))]


# --- mutated examples ---------------------------------------------------------------------------------------------


def test_a_missing_required_element_is_reported() -> None:
    slot = example("Slot-ExampleSlotSOS1")
    del slot["schedule"]
    assert check(slot) == [Issue("Slot.schedule", "minimum cardinality 1 not met (0 found)")]


def test_a_missing_nested_required_element_is_reported() -> None:
    appointment = example("Appointment-1")
    del appointment["participant"][0]["actor"]["identifier"]["system"]
    assert check(appointment) == [
        Issue("Appointment.participant[0].actor.identifier.system", "minimum cardinality 1 not met (0 found)")
    ]


def test_an_exceeded_cardinality_is_reported() -> None:
    appointment = example("Appointment-1")
    appointment["identifier"].append({"system": "urn:oid:1.1.111.1.11.1.1.1", "value": "another"})
    assert check(appointment) == [Issue("Appointment.identifier", "maximum cardinality 1 exceeded (2 found)")]


def test_an_exceeded_slice_cardinality_is_reported() -> None:
    regulator = example("Practitioner-ExamplePractitionerRegul1")
    national = {
        "type": {"coding": [{"system": "http://interopsante.org/fhir/CodeSystem/fr-v2-0203", "code": "IDNPS"}]},
        "system": "urn:oid:1.2.250.1.71.4.2.1",
        "value": "810002909371",
    }
    regulator["identifier"] = [national, {**national, "value": "810002909372"}]
    assert check(regulator) == [
        Issue("Practitioner.identifier", "slice 'IdentifiantNatPS': maximum cardinality 1 exceeded (2 found)")
    ]


def test_a_wrong_fixed_value_is_reported() -> None:
    slot = example("Slot-ExampleSlotPSIndiv1")  # FrSlotAgregateur: fixedCode free
    slot["status"] = "busy"
    assert check(slot) == [Issue("Slot.status", 'must be the fixed value "free"')]


def test_a_wrong_pattern_code_is_reported() -> None:
    slot = example("Slot-ExampleSlotCPTS1")  # sas-cpts-slot-aggregator: patternCode free
    slot["status"] = "busy"
    assert check(slot) == [Issue("Slot.status", 'does not match the pattern "free"')]


def test_a_codeable_concept_outside_its_pattern_is_reported() -> None:
    practitioner = example("Practitioner-ExamplePractitioner")
    practitioner["identifier"][0]["type"]["coding"][0]["code"] = "INTRN"
    issues = check(practitioner)
    assert [i.path for i in issues] == ["Practitioner.identifier[0].type"]
    assert issues[0].message.startswith('does not match the pattern {"coding": [{"system"')


def test_a_slice_pattern_is_checked_on_the_items_of_the_slice() -> None:
    regulator = example("Practitioner-ExamplePractitionerRegul1")
    regulator["identifier"][0]["system"] = "urn:oid:1.2.250.1.213.3.6"  # the internal slice, whose type is INTRN
    issues = check(regulator)
    assert [i.path for i in issues] == ["Practitioner.identifier[0].type"]
    assert '"code": "INTRN"' in issues[0].message


def test_a_coding_outside_a_required_value_set_is_reported() -> None:
    slot = example("Slot-ExampleSlotSOS1")
    slot["meta"]["security"][1]["code"] = "CPTS"  # a CPTS slot type, not an SOS one
    vs = "https://interop.esante.gouv.fr/ig/fhir/sas/ValueSet/sas-sos-valueset-typecreneau"
    tre = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
    assert check(slot) == [
        Issue("Slot.meta.security[1]", f'{{"system": "{tre}", "code": "CPTS"}} is not in the required value set {vs}')
    ]


def test_a_code_outside_a_required_value_set_is_reported() -> None:
    appointment = example("Appointment-1")
    appointment["meta"]["profile"] = [SOS_APPOINTMENT]
    appointment["participant"][0]["status"] = "declined"
    vs = "https://interop.esante.gouv.fr/ig/fhir/sas/ValueSet/sas-sos-valueset-participant-status"
    assert check(appointment) == [
        Issue("Appointment.participant[0].status", f'"declined" is not in the required value set {vs}')
    ]


def test_a_broken_regex_invariant_is_reported() -> None:
    cpts = example("Organization-ExampleOrgaCPTS1")
    cpts["identifier"][0]["value"] = "2950047225"
    assert check(cpts) == [
        Issue("Organization.identifier[0]", "constraint FINESS-invariant violated: value.matches('^1[0-9]{9}$')")
    ]
    sos = example("Organization-ExampleOrgaSOS1")
    sos["identifier"][0]["value"] = "33417374840002"  # 14 digits
    assert check(sos) == [
        Issue("Organization.identifier[0]", "constraint SIRET-invariant violated: value.matches('^3[0-9]{14}$')")
    ]


def test_empty_values_are_reported() -> None:
    practitioner = example("Practitioner-ExamplePractitioner")
    practitioner["name"][0]["family"] = ""
    practitioner["name"][0]["given"] = []
    practitioner["name"][0]["prefix"] = [" "]
    practitioner["telecom"] = [{}]
    practitioner["gender"] = None
    issues = check(practitioner)
    assert Issue("Practitioner.name[0].family", "empty string") in issues
    assert Issue("Practitioner.name[0].given", "empty array") in issues
    assert Issue("Practitioner.name[0].prefix[0]", "empty string") in issues
    assert Issue("Practitioner.telecom[0]", "empty object") in issues
    assert Issue("Practitioner.gender", "null value") in issues


def test_an_unknown_or_missing_profile_is_reported() -> None:
    slot = example("Slot-ExampleSlotSOS1")
    slot["meta"]["profile"] = [SAS + "nope"]
    assert check(slot) == [Issue("Slot.meta.profile[0]", f"unknown profile {SAS}nope")]
    assert check(slot, SAS + "nope") == [Issue("Slot", f"unknown profile {SAS}nope")]
    del slot["meta"]["profile"]
    assert check(slot) == [Issue("Slot.meta.profile", "no profile declared in meta.profile")]


def test_a_profile_of_another_type_is_reported() -> None:
    assert check(example("Practitioner-ExamplePractitioner"), CPTS_SLOT) == [
        Issue("Practitioner", f"profile {CPTS_SLOT} is for Slot, not Practitioner")
    ]


def test_an_unknown_element_a_wrong_json_kind_and_a_bad_instant_are_reported() -> None:
    slot = example("Slot-ExampleSlotSOS1")
    slot["serviceTyp"] = slot.pop("serviceType")
    slot["overbooked"] = "false"
    slot["start"] = "2023-08-18T09:00:00"  # an instant needs its time zone
    slot["status"] = ["free"]
    assert check(slot) == [
        Issue("Slot.status", "a single value is expected"),
        Issue("Slot.start", 'not a valid instant: "2023-08-18T09:00:00"'),
        Issue("Slot.overbooked", 'a boolean is expected, not "false"'),
        Issue("Slot.serviceTyp", "unknown element 'serviceTyp'"),
    ]


def test_the_entries_of_a_bundle_are_checked_against_their_profiles() -> None:
    bundle = example("Bundle-ExampleBundleCPTS")
    del bundle["entry"][0]["resource"]["start"]
    bundle["entry"][3]["resource"]["contained"][0]["address"]["city"] = ""
    assert check(bundle) == [
        Issue("Bundle.entry[3].resource.contained[0].address.city", "empty string"),
        Issue("Bundle.entry[0].resource.start", "minimum cardinality 1 not met (0 found)"),
    ]


def test_a_bundle_lacking_a_required_entry_slice_is_reported() -> None:
    bundle = example("Bundle-ExampleBundleCPTS")
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Slot"]
    assert check(bundle) == [
        Issue("Bundle.entry", "slice 'slotAgregateurCPTS': minimum cardinality 1 not met (0 found)"),
    ]


def test_a_bundle_entry_without_any_profile_is_reported() -> None:
    bundle = example("Bundle-ExampleBundleAgregateurSOS")  # entry slices by declared profile
    del bundle["entry"][4]["resource"]["meta"]["profile"]
    assert check(bundle) == [Issue("Bundle.entry[4].resource.meta.profile", "no profile declared in meta.profile")]
    bundle = example("Bundle-ExampleBundlePSIndiv")  # entry slices by type: the slice gives the profile
    del bundle["entry"][0]["resource"]["meta"]["profile"]
    bundle["entry"][0]["resource"]["status"] = "busy"
    assert check(bundle) == [Issue("Bundle.entry[0].resource.status", 'must be the fixed value "free"')]


def test_the_contained_location_is_checked_against_its_profile() -> None:
    role = example("PractitionerRole-ExamplePractitionerRoleAgregateur")
    del role["contained"][0]["address"]["postalCode"]
    assert check(role) == [
        Issue("PractitionerRole.contained[0].address.postalCode", "minimum cardinality 1 not met (0 found)")
    ]
    del role["contained"]
    assert check(role) == [Issue("PractitionerRole.contained", "minimum cardinality 1 not met (0 found)")]


def test_a_missing_extension_slice_is_reported() -> None:
    appointment = example("Appointment-1")
    appointment["extension"][0]["url"] = "http://example.org/another-extension"
    assert check(appointment) == [
        Issue("Appointment.extension", "slice 'appointmentOperator': minimum cardinality 1 not met (0 found)")
    ]


def test_a_choice_of_the_wrong_type_is_reported() -> None:
    appointment = example("Appointment-1")
    operator = appointment["extension"][0]
    operator["valueString"] = "810100050075"
    del operator["valueReference"]
    assert check(appointment) == [
        Issue("Appointment.extension[0].value[x]", "minimum cardinality 1 not met (0 found)"),
        Issue("Appointment.extension[0].value[x]", "slice 'valueReference': minimum cardinality 1 not met (0 found)"),
        Issue("Appointment.extension[0].valueString", "unknown element 'valueString'"),
    ]


def test_the_cpts_service_type_slices_are_recognised() -> None:
    slot = example("Slot-ExampleSlotCPTS1")
    [reference] = slot["serviceType"][1].pop("extension")  # the CPTS reference needs its R5 extension
    assert check(slot) == [
        Issue("Slot.serviceType[1].extension", "minimum cardinality 1 not met (0 found)"),
        Issue("Slot.serviceType[1].extension", "slice 'sas-servicetype-r5': minimum cardinality 1 not met (0 found)"),
    ]
    slot = example("Slot-ExampleSlotCPTS1")
    slot["serviceType"][0]["extension"] = [reference]  # a consultation type must not carry it
    assert check(slot) == [
        Issue("Slot.serviceType[0].extension", "slice 'sas-servicetype-r5': maximum cardinality 0 exceeded (1 found)")
    ]


def test_the_readmes_example_answer_is_what_the_search_builds_and_passes_the_guide() -> None:
    """docs/sas/slot-search-answer.json, shown by the README, is the searchset built for one slot
    of one practitioner: the same bytes as the code makes today, and conformant."""
    cpts = CptsFacts(
        uuid.UUID("4f6d7c1e-0000-4000-8000-000000000001"), "CPTS Nantes Erdre", "440000123", "02 40 00 11 22",
        "Europe/Paris",
    )  # fmt: skip
    site = SiteFacts(
        uuid.UUID("9b2f0a34-0000-4000-8000-000000000002"), "810002909371", "MARTIN", "Claire", None,
        uuid.UUID("c3a1d5e7-0000-4000-8000-000000000003"), "3 rue de la Paix", "44000", "Nantes", "02 40 12 34 56",
        47.2184, -1.5536, cpts,
    )  # fmt: skip
    paris = ZoneInfo("Europe/Paris")
    slot = SlotFacts(
        uuid.UUID("e8f4b2c6-0000-4000-8000-000000000004"), datetime(2026, 12, 2, 9, 20, tzinfo=paris),
        datetime(2026, 12, 2, 9, 40, tzinfo=paris), "AMB", "SM54", ("CPTS", "SNP"), site,
    )  # fmt: skip
    query = (
        "_include=Slot:schedule&_include:iterate=Schedule:actor&_include=Slot:service-type-reference"
        "&_include:iterate=HealthcareService:organization&start=ge2026-12-02T08:00:00&start=le2026-12-05T08:00:00"
        "&status=free&schedule.actor:Practitioner.identifier=urn:oid:1.2.250.1.71.4.2.1|810002909371"
    )
    base = "https://snp.cpts-exemple.fr"
    built = router.searchset(parse(parse_qsl(query)), [slot], f"{base}/fhir/Slot?{query}", base, f"{base}/fhir")
    shown = json.loads((Path(__file__).resolve().parents[2] / "docs/sas/slot-search-answer.json").read_text())
    assert json.loads(json.dumps(built)) == shown
    assert check(shown) == []
