"""The shipped core definitions and the registry's lookup API."""

from __future__ import annotations

from fhir_server.fhir.definitions import DefinitionRegistry, core_registry


def test_lookup_by_type_name_url_and_versioned_url() -> None:
    registry = core_registry()
    by_name = registry.get("Patient")
    assert by_name is not None and by_name["url"] == "http://hl7.org/fhir/StructureDefinition/Patient"
    assert registry.get("http://hl7.org/fhir/StructureDefinition/Patient") is by_name
    assert registry.get("http://hl7.org/fhir/StructureDefinition/Patient|4.0.1") is by_name
    assert registry.get("NoSuchType") is None


def test_shipped_definitions_keep_snapshot_and_differential_but_not_narrative() -> None:
    patient = core_registry().get("Patient")
    assert patient is not None
    assert patient["snapshot"]["element"] and patient["differential"]["element"]
    assert "text" not in patient and "mapping" not in patient
    birth_date = next(e for e in patient["snapshot"]["element"] if e["id"] == "Patient.birthDate")
    assert birth_date["type"] == [{"code": "date"}] and "comment" not in birth_date


def test_resource_types_are_the_concrete_ones() -> None:
    registry = core_registry()
    types = registry.resource_types()
    assert "ServiceRequest" in types and "Bundle" in types
    assert "DomainResource" not in types and "Resource" not in types
    assert len(types) == 146
    assert registry.is_resource_type("Task") and not registry.is_resource_type("HumanName")
    assert not registry.is_resource_type("DomainResource")


def test_added_profiles_are_hosted_and_the_cached_core_is_untouched() -> None:
    registry = core_registry().copy()
    profile = {"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/p",
               "type": "Patient", "kind": "resource", "derivation": "constraint"}
    registry.add(profile)
    assert registry.hosted_profiles() == ["http://example.org/StructureDefinition/p"]
    assert registry.get("http://example.org/StructureDefinition/p|1.0") is profile
    assert core_registry().hosted_profiles() == []
    assert core_registry().get("http://example.org/StructureDefinition/p") is None


def test_element_helpers_follow_content_reference_and_list_children() -> None:
    registry = core_registry()
    item = registry.element("Questionnaire", "Questionnaire.item.item")
    assert item is not None and item["id"] == "Questionnaire.item"
    names = [e["id"] for e in registry.children("Patient", "Patient.contact")]
    assert "Patient.contact.name" in names and "Patient.name" not in names
    index = registry.index("Patient")
    assert index is not None
    deceased = index.properties["Patient"]["deceasedDateTime"]
    assert deceased.name == "deceased" and deceased.type == "dateTime" and deceased.is_choice


def test_primitive_rules_compile_the_r4_regexes() -> None:
    rules = DefinitionRegistry.load_core().primitive_rules()
    assert rules["boolean"].json_kind == "boolean" and rules["decimal"].json_kind == "number"
    assert rules["id"].pattern is not None and rules["id"].pattern.fullmatch("abc-1.2")
    assert not rules["id"].pattern.fullmatch("a" * 65)
