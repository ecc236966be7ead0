"""What ``Claim/$submit`` refuses, with an OperationOutcome (never a 500, never a silent certification): a PAS
Claim for anything but a second opinion, and Bundles that are not PAS requests. Nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from fhir_server.second_opinion.codes import REQUESTED_SERVICE_EXT
from tests.pas.builders import pas_request
from tests.pas.conftest import LiveServer
from tests.pas.reading import refused
from tests.second_opinion.helpers import submission

MRI = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "70551"}], "text": "MRI brain"}


def mri_request() -> dict[str, Any]:
    """A well-formed PAS request for an MRI: the ServiceRequest is not a second opinion."""
    bundle = pas_request(submission())
    service_request = bundle["entry"][1]["resource"]
    service_request["code"] = MRI
    del service_request["meta"]
    return bundle


async def nothing_stored(base_url: str) -> None:
    fhir = AsyncFHIRClient(base_url)
    for resource_type in ("Claim", "ClaimResponse", "Task", "ServiceRequest"):
        assert await fhir.resources(resource_type).count() == 0, resource_type


async def test_a_claim_for_another_service_is_refused_clearly(server: LiveServer):
    with pytest.raises(OperationOutcome) as raised:  # what a fhirpy client sees
        await AsyncFHIRClient(server.base_url).execute("Claim/$submit", method="post", data=mri_request())
    issue = raised.value.resource["issue"][0]
    assert issue["code"] == "not-supported"
    assert issue["diagnostics"].startswith("This server handles only second-opinion requests")
    assert "'MRI brain'" in issue["diagnostics"]
    status, issues = refused(server.base_url, "Claim/$submit", mri_request())
    assert status == 422 and issues[0]["expression"] == ["Bundle.entry[0].resource.item[0].extension"]
    await nothing_stored(server.base_url)


@pytest.mark.parametrize(
    ("change", "code", "expression"),
    [
        # an item naming no service at all
        (lambda claim, bundle: claim["item"][0].pop("extension"), "required",
         "Bundle.entry[0].resource.item[0].extension"),
        # an item naming a service the Bundle does not hold
        (lambda claim, bundle: claim["item"][0]["extension"][1]["valueReference"].update(reference="urn:uuid:gone"),
         "required", "Bundle.entry[0].resource.item[0].extension"),
        # an item naming something that is not a ServiceRequest (the Patient)
        (lambda claim, bundle: claim["item"][0]["extension"][1]["valueReference"].update(
            reference=bundle["entry"][2]["fullUrl"]), "not-supported", "Bundle.entry[0].resource.item[0].extension"),
        # a claim for payment, not a prior authorization
        (lambda claim, bundle: claim.update(use="claim"), "business-rule", "Bundle.entry[0].resource.use"),
        # a second item asking for an MRI next to the second opinion
        (lambda claim, bundle: (claim["item"].append({**claim["item"][0], "sequence": 2}),
                                bundle["entry"].append({"fullUrl": "urn:uuid:mri", "resource": {
                                    "resourceType": "ServiceRequest", "status": "active", "intent": "order",
                                    "code": MRI, "subject": {"reference": "Patient/x"}}}),
                                claim["item"][1].update(extension=[{"url": REQUESTED_SERVICE_EXT,
                                                                    "valueReference": {"reference": "urn:uuid:mri"}}])),
         "not-supported", "Bundle.entry[0].resource.item[1].extension"),
    ],
    ids=["no-requested-service", "service-not-in-bundle", "not-a-service-request", "use-claim", "second-item-mri"],
)
async def test_claims_that_ask_for_no_second_opinion_are_refused(server: LiveServer, change, code, expression):
    bundle = pas_request(submission())
    change(bundle["entry"][0]["resource"], bundle)
    status, issues = refused(server.base_url, "Claim/$submit", bundle)
    assert status == 422
    assert [(i["code"], i["expression"]) for i in issues] == [(code, [expression])]
    await nothing_stored(server.base_url)


async def test_one_claim_asks_for_one_second_opinion(server: LiveServer):
    bundle = pas_request(submission())
    other = {**bundle["entry"][1], "fullUrl": "urn:uuid:second-request"}
    bundle["entry"].append(other)
    claim = bundle["entry"][0]["resource"]
    claim["item"].append({**claim["item"][0], "sequence": 2, "extension": [
        {"url": REQUESTED_SERVICE_EXT, "valueReference": {"reference": "urn:uuid:second-request"}}]})
    status, issues = refused(server.base_url, "Claim/$submit", bundle)
    assert status == 422 and issues[0]["code"] == "business-rule"
    assert issues[0]["expression"] == ["Bundle.entry[0].resource.item"]


@pytest.mark.parametrize(
    ("body", "status", "expression"),
    [
        ({"resourceType": "Bundle", "type": "transaction", "entry": []}, 400, "Bundle.type"),
        ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": "x"}]}, 400, "Bundle.entry"),
        ({"resourceType": "Bundle", "type": "collection", "entry": []}, 422, "Bundle.entry"),
    ],
    ids=["not-a-collection", "entry-without-resource", "no-claim"],
)
async def test_bundles_that_are_not_pas_requests(server: LiveServer, body, status, expression):
    answered, issues = refused(server.base_url, "Claim/$submit", body)
    assert answered == status and issues[0]["expression"] == [expression]


async def test_two_claims_are_refused(server: LiveServer):
    bundle = pas_request(submission())
    bundle["entry"].append({**bundle["entry"][0], "fullUrl": "urn:uuid:another-claim"})
    status, issues = refused(server.base_url, "Claim/$submit", bundle)
    assert status == 422 and "exactly one Claim (found 2)" in issues[0]["diagnostics"]


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        (lambda claim: claim.pop("identifier"), "Bundle.entry[0].resource.identifier"),
        (lambda claim: claim["item"][0].pop("category"), "Bundle.entry[0].resource.item[0].category"),
        (lambda claim: claim["insurance"][0].update(focal=False), "Bundle.entry[0].resource.insurance[0].focal"),
    ],
    ids=["no-identifier", "item-without-category", "coverage-not-focal"],
)
async def test_the_claim_meets_what_the_server_needs_of_pas(server: LiveServer, change, expression):
    """The hosted pas-second-opinion-claim profile: PAS's constraints the server relies on (422, by the Bundle's
    entries, nothing stored)."""
    bundle = pas_request(submission())
    change(bundle["entry"][0]["resource"])
    status, issues = refused(server.base_url, "Claim/$submit", bundle)
    assert status == 422
    assert [i["expression"] for i in issues if i["severity"] == "error"] == [[expression]]
    await nothing_stored(server.base_url)
