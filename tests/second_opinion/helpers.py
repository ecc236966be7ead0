"""Building submissions from the sample Bundles and reading the answers, for the second-opinion tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from fhir_server.second_opinion.codes import (
    AUTHORIZED_PROVIDER_EXT,
    NUCC_SYSTEM,
    REASON_SYSTEM,
    REVIEW_ACTION_CODE_EXT,
    REVIEW_ACTION_EXT,
    TASK_INPUT_SYSTEM,
    TREATING_PRACTITIONER_EXT,
)

from tests.second_opinion.conftest import FHIR_JSON, example

UNSET: Any = object()


def entry_resource(bundle: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)


def submission(
    name: str = "submit-health-net-cardiology",
    *,
    plan: str | None = None,
    group: str | None = None,
    specialty: str | None = None,
    treating: list[str] | None = None,
    performer: str | None = UNSET,
    requester: str | None = None,
    reason: str | None = None,
    priority: str | None = None,
    identifier: str | None = None,
    requester_treats: bool = True,
) -> dict[str, Any]:
    """A sample submission with the given changes (references are ``Type/id`` of the test directory). A
    professional requester stays among the treating practitioners (whom ``treating`` replaces) unless
    ``requester_treats`` is false: only the member, their PCP or a treating professional may ask."""
    bundle = example(name)
    request = bundle["entry"][0]["resource"]
    if plan:
        for cls in entry_resource(bundle, "Coverage")["class"]:
            if cls["type"]["coding"][0]["code"] == "plan":
                cls["value"] = plan
    if group:
        entry_resource(bundle, "Patient")["generalPractitioner"] = [{"reference": group}]
    if specialty:
        request["performerType"] = {"coding": [{"system": NUCC_SYSTEM, "code": specialty}]}
    if requester:
        request["requester"] = {"reference": requester}
    asking = request["requester"]["reference"]
    if requester_treats and asking.startswith("Practitioner/") and (treating is not None or requester):
        named = [e["valueReference"]["reference"] for e in request.get("extension", []) if e["url"] == TREATING_PRACTITIONER_EXT]
        kept = named if treating is None else treating
        treating = kept if asking in kept else [*kept, asking]
    if treating is not None:
        request["extension"] = [e for e in request.get("extension", []) if e["url"] != TREATING_PRACTITIONER_EXT] + [
            {"url": TREATING_PRACTITIONER_EXT, "valueReference": {"reference": r}} for r in treating
        ]
        if not request["extension"]:
            del request["extension"]
    if performer is not UNSET:
        request.pop("performer", None)
        if performer:
            request["performer"] = [{"reference": performer}]
    if reason:
        system = REASON_SYSTEM if reason.islower() else "http://snomed.info/sct"
        request["reasonCode"] = [{"coding": [{"system": system, "code": reason}]}]
    if priority:
        request["priority"] = priority
    if identifier:
        request["identifier"][0]["value"] = identifier
    return bundle


def post_submit(client: TestClient, bundle: dict[str, Any]) -> Any:
    return client.post("/fhir/ServiceRequest/$submit", json=bundle, headers=FHIR_JSON)


def submit_ok(client: TestClient, bundle: dict[str, Any]) -> "Answer":
    response = post_submit(client, bundle)
    assert response.status_code == 200, response.text
    return Answer(response.json())


class Answer:
    """The answer Bundle of $submit, read the way an EHR reads it."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
        self.bundle = bundle
        self.claim_response, self.task, self.service_request = (e["resource"] for e in bundle["entry"][:3])
        self.claim = bundle["entry"][3]["resource"]

    @property
    def review_action(self) -> str:
        action = self._review_action_extension()
        code = next(e for e in action["extension"] if e["url"] == REVIEW_ACTION_CODE_EXT)
        return code["valueCodeableConcept"]["coding"][0]["code"]

    @property
    def authorization_number(self) -> str:
        action = self._review_action_extension()
        return next(e["valueString"] for e in action["extension"] if e["url"] == "number")

    def _review_action_extension(self) -> dict[str, Any]:
        adjudication = self.claim_response["item"][0]["adjudication"][0]
        return next(e for e in adjudication["extension"] if e["url"] == REVIEW_ACTION_EXT)

    @property
    def authorized_provider(self) -> str | None:
        for ext in self.claim_response["item"][0].get("extension", ()):
            if ext["url"] == AUTHORIZED_PROVIDER_EXT:
                return ext["extension"][0]["valueReference"]["reference"]
        return None

    @property
    def business_status(self) -> str:
        return self.task["businessStatus"]["coding"][0]["code"]

    def inputs(self, code: str) -> list[Any]:
        return [
            i.get("valueReference", {}).get("reference") or i.get("valueString")
            for i in self.task.get("input", ())
            if any(c["system"] == TASK_INPUT_SYSTEM and c["code"] == code for c in i["type"]["coding"])
        ]

    @property
    def proposed_provider(self) -> str | None:
        proposed = self.inputs("proposed-provider")
        return proposed[0] if proposed else None

    @property
    def notes(self) -> str:
        return "\n".join(n["text"] for n in self.claim_response.get("processNote", ()))

    @property
    def tags(self) -> list[dict[str, str]]:
        return self.claim_response["meta"]["tag"]

