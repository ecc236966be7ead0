"""Reading PAS answers the way a PAS client does, and sending through ``fhirpy``."""

from __future__ import annotations

from typing import Any

import httpx
from fhirpy import AsyncFHIRClient

from fhir_server.second_opinion.codes import (
    AUTHORIZED_PROVIDER_EXT,
    ITEM_TRACE_NUMBER_EXT,
    REVIEW_ACTION_CODE_EXT,
    REVIEW_ACTION_EXT,
)
from tests.second_opinion.conftest import FHIR_JSON

PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition"


class PasAnswer:
    """A PAS response (or inquiry response) Bundle: ClaimResponse(s) first, then what they reference."""

    def __init__(self, bundle: dict[str, Any], profile: str = f"{PAS}/profile-pas-response-bundle") -> None:
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
        assert bundle["meta"]["profile"] == [profile]
        assert bundle["timestamp"] == "2026-11-25T17:00:00Z"
        self.bundle = bundle
        self.resources = [e["resource"] for e in bundle["entry"]]
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "OperationOutcome":  # stored nowhere
                assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
            else:
                assert entry["fullUrl"].endswith(f"/fhir/{resource['resourceType']}/{resource['id']}")

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["resourceType"] == resource_type]

    def get(self, reference: str) -> dict[str, Any]:
        return next(r for r in self.resources if f"{r['resourceType']}/{r['id']}" == reference)

    @property
    def claim_response(self) -> dict[str, Any]:
        assert self.resources[0]["resourceType"] == "ClaimResponse"
        return self.resources[0]

    @property
    def claim(self) -> dict[str, Any]:
        return self.get(self.claim_response["request"]["reference"])


def review_action(claim_response: dict[str, Any]) -> dict[str, Any]:
    """``{"code": ..., "number": ..., "reasons": [...]}`` of the (one) item's reviewAction."""
    adjudication = claim_response["item"][0]["adjudication"][0]
    assert adjudication["category"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "submitted"}]
    action = next(e for e in adjudication["extension"] if e["url"] == REVIEW_ACTION_EXT)["extension"]
    return {
        "code": next(e["valueCodeableConcept"]["coding"][0]["code"] for e in action
                     if e["url"] == REVIEW_ACTION_CODE_EXT),
        "number": next(e["valueString"] for e in action if e["url"] == "number"),
        "reasons": [e["valueCodeableConcept"]["coding"][0]["code"] for e in action if e["url"] == "reasonCode"],
    }


def authorized_provider(claim_response: dict[str, Any]) -> str | None:
    for extension in claim_response["item"][0].get("extension", ()):
        if extension["url"] == AUTHORIZED_PROVIDER_EXT:
            return extension["extension"][0]["valueReference"]["reference"]
    return None


def traces(item: dict[str, Any]) -> list[str]:
    return [e["valueIdentifier"]["value"] for e in item.get("extension", ()) if e["url"] == ITEM_TRACE_NUMBER_EXT]


async def pas_submit(base_url: str, bundle: dict[str, Any]) -> PasAnswer:
    return PasAnswer(await AsyncFHIRClient(base_url).execute("Claim/$submit", method="post", data=bundle))


async def pas_inquire(base_url: str, bundle: dict[str, Any]) -> PasAnswer:
    answer = await AsyncFHIRClient(base_url).execute("Claim/$inquire", method="post", data=bundle)
    return PasAnswer(answer, f"{PAS}/profile-pas-inquiry-response-bundle")


def refused(base_url: str, path: str, bundle: Any) -> tuple[int, list[dict[str, Any]]]:
    """Status and issues of a request the server refuses (read with a plain HTTP client: fhirpy raises)."""
    response = httpx.post(f"{base_url}/{path}", json=bundle, headers=FHIR_JSON, timeout=60)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return response.status_code, outcome["issue"]
