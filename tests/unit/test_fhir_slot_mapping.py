"""Reading an agenda editor's answer to the SAS's slot search (the guide's own example Bundles,
then broken copies of them): what is read, what is left out, and which element says why."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.connectors.fhir_slots import Flow, UnreadableBundle, read_bundle, search_query

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sas_ig"


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"Bundle-{name}.json").read_text(encoding="utf-8"))
    return loaded


def slots_of(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Slot"]


def test_the_individual_flow_example_reads_each_slot_with_its_practitioner_place_and_link() -> None:
    page = read_bundle(example("ExampleBundlePSIndiv"), Flow.INT_R01, {"PUBLIC", "PRO"})
    assert page.skipped == []
    assert [s.editor_slot_id for s in page.slots] == [f"ExampleSlotPSIndiv{i}" for i in range(1, 5)]
    first = page.slots[0]
    assert first.idnps == "810100050075"
    assert (first.location.address, first.location.postal_code, first.location.city) == (
        "1 rue Mme DELMAS",
        "47000",
        "AGEN",
    )
    assert first.start == datetime(2021, 11, 5, 9, 0, tzinfo=UTC)
    assert (first.modality, first.specialty, first.visibility) == ("AMB", "SM54", frozenset({"PUBLIC"}))
    assert first.agenda_url == "https://exemple.com/rdv/com/"
    assert {s.idnps for s in page.slots[2:]} == {"810002673899"}


def test_slots_of_types_the_cpts_does_not_take_are_counted_not_read() -> None:
    page = read_bundle(example("ExampleBundlePSIndiv"), Flow.INT_R01)  # SNP and CPTS only
    assert (page.slots, page.skipped, page.ignored) == ([], [], 4)


def test_the_cpts_flow_example_reads_under_its_own_profile_only() -> None:
    page = read_bundle(example("ExampleBundleCPTS"), Flow.INT_R04)
    assert [(s.editor_slot_id, s.visibility) for s in page.slots] == [
        ("ExampleSlotCPTS1", frozenset({"PUBLIC", "CPTS"}))
    ]
    assert page.slots[0].start.utcoffset() is not None
    wrong_flow = read_bundle(example("ExampleBundleCPTS"), Flow.INT_R01)
    assert [(s.entry, s.element) for s in wrong_flow.skipped] == [("Slot/ExampleSlotCPTS1", "Slot.meta.profile")]


@pytest.mark.parametrize(
    ("break_it", "element"),
    [
        (lambda slot, bundle: slot.pop("schedule"), "Slot.schedule"),
        (lambda slot, bundle: slot["schedule"].update(reference="Schedule/elsewhere"), "Slot.schedule"),
        (lambda slot, bundle: slot["meta"].pop("security"), "Slot.meta.security"),
        (lambda slot, bundle: slot["meta"].update(profile=["http://example.org/other"]), "Slot.meta.profile"),
        (lambda slot, bundle: slot.update(start="2021-11-05T09:00:00"), "Slot.start"),
        (lambda slot, bundle: slot.update(end=slot["start"]), "Slot.end"),
        (lambda slot, bundle: slot.update(serviceType=[{"text": "consultation"}]), "Slot.serviceType"),
        (lambda slot, bundle: slot.update(id="not an id!"), "Slot.id"),
        (
            lambda slot, bundle: next(
                e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "ExamplePractitioner2"
            ).pop("identifier"),
            "Practitioner.identifier",
        ),
    ],
)
def test_a_malformed_slot_is_skipped_with_its_element_and_the_rest_is_read(break_it: Any, element: str) -> None:
    bundle = copy.deepcopy(example("ExampleBundlePSIndiv"))
    break_it(slots_of(bundle)[0], bundle)
    page = read_bundle(bundle, Flow.INT_R01, {"PUBLIC", "PRO"})
    # The first slot is broken (and, for its practitioner, the second, which shares it).
    broken = 2 if element.startswith("Practitioner") else 1
    assert [s.element for s in page.skipped] == [element] * broken
    assert page.skipped[0].entry in ("Slot/ExampleSlotPSIndiv1", "entry[0]")
    assert [s.editor_slot_id for s in page.slots] == [f"ExampleSlotPSIndiv{i}" for i in range(1 + broken, 5)]


def test_an_answer_that_is_not_a_searchset_is_refused_whole_with_what_it_said() -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "security", "diagnostics": "token expired"}],
    }
    with pytest.raises(UnreadableBundle) as refused:
        read_bundle(outcome, Flow.INT_R01)
    assert (refused.value.element, refused.value.problem) == ("OperationOutcome", "token expired")
    others: list[Any] = [[], {"resourceType": "Bundle", "type": "collection"}, {"resourceType": "Patient"}]
    for other in others:
        with pytest.raises(UnreadableBundle):
            read_bundle(other, Flow.INT_R01)


def test_the_next_page_is_followed_from_the_bundle_links() -> None:
    bundle = copy.deepcopy(example("ExampleBundleCPTS"))
    bundle["link"] = [
        {"relation": "self", "url": "https://a/Slot"},
        {"relation": "next", "url": "https://a/Slot?page=2"},
    ]
    assert read_bundle(bundle, Flow.INT_R04).next_url == "https://a/Slot?page=2"


def test_the_search_asks_as_the_sas_does_for_one_to_twenty_five_practitioners() -> None:
    start, end = datetime(2026, 12, 2, 7, tzinfo=UTC), datetime(2026, 12, 5, 7, tzinfo=UTC)
    params = search_query(Flow.INT_R04, ["810000000001", "810000000002"], start, end)
    assert ("schedule.actor:Practitioner.identifier", "urn:oid:1.2.250.1.71.4.2.1|810000000001,810000000002") in params
    assert ("start", "ge2026-12-02T08:00:00") in params  # French local time, as the SAS writes it
    assert ("_include", "Slot:service-type-reference") in params
    assert ("_include", "Slot:service-type-reference") not in search_query(Flow.INT_R01, ["810000000001"], start, end)
    with pytest.raises(ValueError, match="1 to 25"):
        search_query(Flow.INT_R01, [f"8100000000{i:02d}" for i in range(26)], start, end)
