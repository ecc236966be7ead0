"""The files of profiles/ are well-formed conformance resources and cover every canonical URL of the contract."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from fhir_server.fhir.snapshot import dump_json

from .conftest import CANON, PROFILES_DIR

# The canonical URLs the interface contract promises the server hosts.
CONTRACT_CANONICALS = [
    f"{CANON}/StructureDefinition/second-opinion-request",
    f"{CANON}/StructureDefinition/second-opinion-task",
    f"{CANON}/StructureDefinition/second-opinion-authorization",
    f"{CANON}/CodeSystem/second-opinion-reason",
    f"{CANON}/ValueSet/second-opinion-reason",
    f"{CANON}/CodeSystem/second-opinion-status",
    f"{CANON}/CodeSystem/second-opinion-task-input",
    f"{CANON}/StructureDefinition/treating-practitioner",
    f"{CANON}/StructureDefinition/opinion-sequence",
    f"{CANON}/OperationDefinition/ServiceRequest-submit",
    f"{CANON}/OperationDefinition/Task-decide",
    f"{CANON}/OperationDefinition/second-opinion-report",
    f"{CANON}/SubscriptionTopic/second-opinion-decision",
    f"{CANON}/Measure/second-opinion-decisions",
]
PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net/SearchParameter/"
TOPIC_URL_EXTENSION = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.url"
COMPUTABLE_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]{0,254}$")
SEARCH_PARAMETER_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def canonical_url(resource: dict[str, Any]) -> str:
    """A resource's canonical: its ``url``, or for an R4 Backport topic (a Basic) the topic URL extension."""
    if resource["resourceType"] == "Basic":
        return next(e["valueUri"] for e in resource["extension"] if e["url"] == TOPIC_URL_EXTENSION)
    return resource["url"]


def test_every_file_is_named_after_its_type_and_id(conformance_resources):
    for name, resource in conformance_resources.items():
        assert name == f"{resource['resourceType']}-{resource['id']}.json"


def test_every_file_is_in_the_stable_layout(conformance_resources):
    for name, resource in conformance_resources.items():
        assert (PROFILES_DIR / name).read_text(encoding="utf-8") == dump_json(resource), name


def test_canonical_resources_carry_the_required_metadata(conformance_resources):
    for name, resource in conformance_resources.items():
        if resource["resourceType"] == "Basic":
            continue
        for key in ("url", "version", "name", "status", "publisher", "description"):
            assert resource.get(key), f"{name}: {key}"
        assert resource["version"] == "0.1.0"
        assert resource["status"] == "active"
        if resource["resourceType"] == "SearchParameter":
            assert SEARCH_PARAMETER_NAME.match(resource["name"]), name
            # Plan-Net's parameters keep Plan-Net's canonical; the server's own live under {canon}.
            assert resource["url"].startswith(PLAN_NET) or resource["url"] == (
                f"{CANON}/SearchParameter/{resource['id']}"
            ), name
        else:
            assert COMPUTABLE_NAME.match(resource["name"]), name
            assert resource["title"], name
            assert resource["url"] == f"{CANON}/{resource['resourceType']}/{resource['id']}", name
        if resource["resourceType"] == "StructureDefinition":
            assert resource["fhirVersion"] == "4.0.1"


def test_every_contract_canonical_is_hosted(conformance_resources):
    hosted = {canonical_url(r) for r in conformance_resources.values()}
    assert set(CONTRACT_CANONICALS) <= hosted


def test_canonicals_are_unique(conformance_resources):
    urls = [canonical_url(r) for r in conformance_resources.values()]
    assert len(urls) == len(set(urls))


@pytest.mark.parametrize(
    ("code_system", "codes"),
    [
        ("second-opinion-reason", {"questions-surgery", "serious-condition", "unclear-diagnosis", "not-improving",
                                   "care-concerns", "opinions-differ"}),
        ("second-opinion-status", {"information-missing", "physician-review", "consultative-review",
                                   "member-services", "approved", "denied", "report-received"}),
        ("second-opinion-task-input", {"proposed-provider", "missing-information", "consultative-reviewer"}),
        ("opinion-sequence", {"second", "third"}),
    ],
)
def test_code_systems_hold_the_contract_codes_and_their_value_set_includes_them_all(
    conformance_resources, code_system, codes
):
    system = conformance_resources[f"CodeSystem-{code_system}.json"]
    assert {c["code"] for c in system["concept"]} == codes
    assert all(c["display"] and c["definition"] for c in system["concept"])
    assert system["count"] == len(codes)
    assert (system["content"], system["caseSensitive"]) == ("complete", True)
    value_set = conformance_resources[f"ValueSet-{code_system}.json"]
    assert system["valueSet"] == value_set["url"]
    assert value_set["compose"]["include"] == [{"system": system["url"]}]


def test_every_binding_and_profile_reference_to_our_canon_resolves(conformance_resources):
    hosted = {canonical_url(r) for r in conformance_resources.values()}
    text = json.dumps(list(conformance_resources.values()))
    referenced = set(re.findall(re.escape(CANON) + r"/[A-Za-z]+/[A-Za-z0-9\-]+", text))
    assert referenced <= hosted


def test_operations_declare_how_they_are_called(conformance_resources):
    submit = conformance_resources["OperationDefinition-ServiceRequest-submit.json"]
    assert (submit["type"], submit["instance"], submit["affectsState"]) == (True, False, True)
    assert [(p["name"], p["use"], p["type"]) for p in submit["parameter"]] == [
        ("resource", "in", "Bundle"), ("return", "out", "Bundle")]
    decide = conformance_resources["OperationDefinition-Task-decide.json"]
    assert decide["instance"] and decide["resource"] == ["Task"]
    inputs = {p["name"]: (p["min"], p["max"]) for p in decide["parameter"] if p["use"] == "in"}
    assert inputs == {"decision": (1, "1"), "reviewer": (1, "1"), "reason": (0, "1"),
                      "assignedProvider": (0, "1"), "consultativeReviewer": (0, "1"),
                      "findings": (1, "1"), "recommendation": (0, "1")}
    report = conformance_resources["OperationDefinition-second-opinion-report.json"]
    assert report["system"] and not report["affectsState"]
    assert [p["type"] for p in report["parameter"] if p["use"] == "out"] == ["MeasureReport"]


def test_plan_net_network_search_parameter(conformance_resources):
    network = conformance_resources["SearchParameter-practitionerrole-network.json"]
    assert network["url"] == PLAN_NET + "practitionerrole-network"
    assert (network["code"], network["type"], network["base"], network["target"]) == (
        "network", "reference", ["PractitionerRole"], ["Organization"])
    assert network["expression"] == (
        "PractitionerRole.extension('http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/"
        "network-reference').value")
