"""The snapshot generator: committed snapshots are current, carry the profile's rules, and follow FHIR's id rules."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from fhir_server.fhir.definitions import core_registry
from fhir_server.fhir.snapshot import (
    SnapshotError,
    chain_resolvers,
    directory_resolver,
    dump_json,
    generate_snapshot,
    main,
    regenerate_directory,
)

from .conftest import CANON, PROFILES_DIR

CORE = "http://hl7.org/fhir/StructureDefinition/"
REQUEST = f"{CANON}/StructureDefinition/second-opinion-request"
TASK = f"{CANON}/StructureDefinition/second-opinion-task"
AUTHORIZATION = f"{CANON}/StructureDefinition/second-opinion-authorization"


def elements_by_id(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in definition["snapshot"]["element"]}


def path_of_id(element_id: str) -> str:
    """FHIR: an element id is its path with ``:sliceName`` after the sliced segments."""
    return ".".join(segment.split(":")[0] for segment in element_id.split("."))


def profile(base: str, *elements: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "StructureDefinition",
        "url": "http://example.org/fhir/test/StructureDefinition/t",
        "type": base,
        "baseDefinition": CORE + base,
        "derivation": "constraint",
        "differential": {"element": list(elements)},
    }


@pytest.fixture(scope="module")
def resolve(structure_definitions):
    return chain_resolvers(directory_resolver(structure_definitions.values()), core_registry().get)


def test_every_committed_snapshot_is_current(structure_definitions, resolve):
    for url, definition in structure_definitions.items():
        assert generate_snapshot(definition, resolve)["snapshot"] == definition["snapshot"], url


def test_snapshot_ids_paths_and_order_follow_the_fhir_rules(structure_definitions):
    for url, definition in structure_definitions.items():
        ids = [e["id"] for e in definition["snapshot"]["element"]]
        assert len(ids) == len(set(ids)), url
        for position, element in enumerate(definition["snapshot"]["element"]):
            assert element["path"] == path_of_id(element["id"]), element["id"]
            assert element.get("base", {}).get("path"), element["id"]
            if position:
                parent = element["id"].rsplit(".", 1)[0]
                assert parent in ids[:position], f"{element['id']} comes before its parent"
            last_segment = element["id"].rsplit(".", 1)[-1]
            assert element.get("sliceName") == (last_segment.split(":")[1] if ":" in last_segment else None)


def test_request_snapshot_carries_the_contract_rules(structure_definitions):
    elements = elements_by_id(structure_definitions[REQUEST])
    subject = elements["ServiceRequest.subject"]
    assert (subject["min"], subject["type"]) == (1, [{"code": "Reference", "targetProfile": [CORE + "Patient"]}])
    assert elements["ServiceRequest.intent"]["fixedCode"] == "order"
    assert elements["ServiceRequest.insurance"]["max"] == "1"
    assert elements["ServiceRequest.reasonCode"]["binding"]["strength"] == "extensible"
    # code.coding is inside CodeableConcept, which the base does not unroll: its children come from CodeableConcept
    coding = elements["ServiceRequest.code.coding"]
    assert coding["base"]["path"] == "CodeableConcept.coding"
    assert [d["path"] for d in coding["slicing"]["discriminator"]] == ["system", "code"]
    second_opinion = elements["ServiceRequest.code.coding:secondOpinion"]
    assert (second_opinion["path"], second_opinion["sliceName"], second_opinion["min"]) == (
        "ServiceRequest.code.coding", "secondOpinion", 1)
    system = elements["ServiceRequest.code.coding:secondOpinion.system"]
    assert system["patternUri"] == "http://terminology.hl7.org/CodeSystem/v2-0336"
    assert system["base"]["path"] == "Coding.system"
    assert elements["ServiceRequest.code.coding:secondOpinion.code"]["patternCode"] == "S"
    assert elements["ServiceRequest.performerType.coding:nucc.system"]["patternUri"] == "http://nucc.org/provider-taxonomy"


def test_request_extension_slices_point_to_the_extension_definitions(structure_definitions):
    elements = elements_by_id(structure_definitions[REQUEST])
    profiles = {
        e["sliceName"]: e["type"][0]["profile"] for e in elements.values()
        if e["path"] == "ServiceRequest.extension" and "sliceName" in e
    }
    assert profiles == {
        "treatingPractitioner": [f"{CANON}/StructureDefinition/treating-practitioner"],
        "opinionSequence": [f"{CANON}/StructureDefinition/opinion-sequence"],
    }
    assert all(url in structure_definitions for urls in profiles.values() for url in urls)


def test_slices_are_placed_after_the_sliced_element_and_its_children(structure_definitions):
    ids = [e["id"] for e in structure_definitions[TASK]["snapshot"]["element"]]
    input_children = [i for i in ids if i.startswith("Task.input.")]
    first_slice = ids.index("Task.input:proposedProvider")
    assert ids.index(input_children[-1]) < first_slice < ids.index("Task.input:missingInformation") < ids.index("Task.output")
    # a slice of a backbone element inherits the element's children, under the slice's id
    assert ids[first_slice + 1 : first_slice + 6] == [
        f"Task.input:proposedProvider.{name}" for name in ("id", "extension", "modifierExtension", "type", "value[x]")
    ]


def test_authorization_nests_an_extension_slice_inside_the_submitted_slice(structure_definitions):
    elements = elements_by_id(structure_definitions[AUTHORIZATION])
    review_action = elements["ClaimResponse.item.adjudication:submitted.extension:reviewAction"]
    assert review_action["type"][0]["profile"] == [
        "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewAction"]
    assert elements["ClaimResponse.item.adjudication:submitted.category"]["patternCodeableConcept"]["coding"][0][
        "code"] == "submitted"
    assert elements["ClaimResponse.use"]["fixedCode"] == "preauthorization"


def test_unknown_element_is_refused():
    with pytest.raises(SnapshotError, match="ServiceRequest.code.nonsense"):
        generate_snapshot(profile("ServiceRequest", {"id": "ServiceRequest.code.nonsense", "path": "ServiceRequest.code.nonsense"}),
                          core_registry().get)


@pytest.mark.parametrize(
    ("element", "message"),
    [
        ({"id": "Patient.name", "path": "Patient.name", "min": 2, "max": "1"}, "exceeds max"),
        ({"id": "Patient.gender", "path": "Patient.gender", "max": "*"}, "widens"),
        ({"id": "Patient.birthDate", "path": "Patient.birthDate", "type": [{"code": "string"}]}, "not one of"),
        ({"id": "Patient.managingOrganization", "path": "Patient.managingOrganization",
          "type": [{"code": "Reference", "targetProfile": [CORE + "Patient"]}]}, "not allowed by the base"),
        ({"id": "Patient.identifier:mrn", "path": "Patient.identifier"}, "not sliced"),
    ],
)
def test_loosening_or_ill_formed_differentials_are_refused(element, message):
    with pytest.raises(SnapshotError, match=message):
        generate_snapshot(profile("Patient", element), core_registry().get)


def test_choice_element_children_need_one_type_first():
    element = {"id": "Observation.value[x].unit", "path": "Observation.value[x].unit"}
    with pytest.raises(SnapshotError, match="types"):
        generate_snapshot(profile("Observation", element), core_registry().get)


def test_unrolling_rebases_ids_and_keeps_invariants_appended():
    invariant = {"key": "t-1", "severity": "error", "human": "A system", "expression": "system.exists()"}
    result = generate_snapshot(
        profile(
            "Patient",
            {"id": "Patient.identifier", "path": "Patient.identifier", "constraint": [invariant]},
            {"id": "Patient.identifier.system", "path": "Patient.identifier.system", "min": 1},
            {"id": "Patient.identifier.assigner.display", "path": "Patient.identifier.assigner.display", "min": 1},
        ),
        core_registry().get,
    )
    elements = elements_by_id(result)
    base_identifier = elements_by_id(core_registry().get("Patient"))["Patient.identifier"]
    assert elements["Patient.identifier"]["constraint"] == base_identifier.get("constraint", []) + [invariant]
    assert elements["Patient.identifier.system"]["min"] == 1
    display = elements["Patient.identifier.assigner.display"]
    assert (display["path"], display["base"]["path"], display["min"]) == (
        "Patient.identifier.assigner.display", "Reference.display", 1)
    ids = list(elements)
    # Identifier.assigner is Identifier's last child: its own children sit between it and Patient.active.
    assert ids.index("Patient.identifier.assigner") < ids.index(display["id"]) < ids.index("Patient.active")


def test_command_line_rewrites_only_stale_snapshots(tmp_path):
    for path in PROFILES_DIR.glob("StructureDefinition-*.json"):
        shutil.copy(path, tmp_path / path.name)
    stale = tmp_path / "StructureDefinition-second-opinion-request.json"
    definition = json.loads(stale.read_text(encoding="utf-8"))
    definition["snapshot"]["element"] = definition["snapshot"]["element"][:3]
    stale.write_text(dump_json(definition), encoding="utf-8")

    assert main([str(tmp_path)]) == 0
    assert stale.read_text(encoding="utf-8") == (PROFILES_DIR / stale.name).read_text(encoding="utf-8")
    assert regenerate_directory(tmp_path) == []
