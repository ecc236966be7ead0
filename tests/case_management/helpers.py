"""Starting a case in physician review and deciding it through the HTTP API, the way a UM system does."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.second_opinion.conftest import FHIR_JSON
from tests.second_opinion.helpers import Answer, submission, submit_ok

BSP = "blue-shield-promise-cmc"
CMO = "Practitioner/pract-13"  # the physician designee reviewing Harbor IPA's cases


def in_review(client: TestClient, **changes: Any) -> Answer:
    """A Blue Shield Promise request at Harbor IPA: every one goes to the CMO (90.2.17 procedure 4); the board-
    certified cardiologist pract-15 is proposed."""
    changes = {"plan": BSP, "group": "Organization/ipa-harbor", "treating": [], "identifier": "in-review", **changes}
    answer = submit_ok(client, submission(**changes))
    assert answer.business_status == "physician-review"
    return answer


FINDINGS = "Records reviewed: the request is supported by the clinical information on file."


def parameters(
    decision: str | None = "approve", reviewer: str | None = CMO, findings: str | None = FINDINGS, **others: Any
) -> dict[str, Any]:
    """$decide Parameters; ``others`` maps a parameter name to its full value element, e.g.
    ``reason={"valueString": "..."}``. Every decision documents the reviewer's ``findings`` (the review form)."""
    items: list[dict[str, Any]] = []
    if decision is not None:
        items.append({"name": "decision", "valueCode": decision})
    if reviewer is not None:
        items.append({"name": "reviewer", "valueReference": {"reference": reviewer}})
    if findings is not None:
        items.append({"name": "findings", "valueString": findings})
    items += [{"name": name, **value} for name, value in others.items()]
    return {"resourceType": "Parameters", "parameter": items}


def post_decide(client: TestClient, task_id: str, body: dict[str, Any]) -> Any:
    return client.post(f"/fhir/Task/{task_id}/$decide", json=body, headers=FHIR_JSON)


def decide_ok(client: TestClient, task_id: str, body: dict[str, Any]) -> "Decision":
    response = post_decide(client, task_id, body)
    assert response.status_code == 200, response.text
    return Decision(response.json())


class Decision(Answer):
    """The answer Bundle of $decide: ClaimResponse, Task, ServiceRequest, then the notices and the Provenance."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
        self.bundle = bundle
        self.claim_response, self.task, self.service_request = (e["resource"] for e in bundle["entry"][:3])

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [e["resource"] for e in self.bundle["entry"] if e["resource"]["resourceType"] == resource_type]

    @property
    def notices(self) -> list[dict[str, Any]]:
        return self.of_type("Communication")

    @property
    def provenance(self) -> dict[str, Any]:
        (provenance,) = self.of_type("Provenance")
        return provenance


def notices_of(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Communication"]


def recipients(notices: list[dict[str, Any]]) -> list[str]:
    return sorted(r["reference"] for n in notices for r in n["recipient"])


def search(client: TestClient, query: str) -> list[dict[str, Any]]:
    response = client.get(f"/fhir/{query}", headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", ()) if e.get("search", {}).get("mode") != "outcome"]


def history_length(client: TestClient, reference: str) -> int:
    response = client.get(f"/fhir/{reference}/_history", headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    return len(response.json().get("entry", ()))


def validation_errors(client: TestClient, resource: dict[str, Any]) -> list[str]:
    """Errors the server's own validator finds in a resource it wrote (base R4 and hosted profiles)."""
    body = {key: value for key, value in resource.items() if key != "meta"} | (
        {"meta": {"profile": resource["meta"]["profile"]}} if resource.get("meta", {}).get("profile") else {}
    )
    response = client.post(f"/fhir/{resource['resourceType']}/$validate", json=body, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    return [i["diagnostics"] for i in response.json()["issue"] if i["severity"] in ("error", "fatal")]
