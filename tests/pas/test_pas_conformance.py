"""How the server declares PAS: the CapabilityStatement names PAS's operation canonicals and topic, the hosted
OperationDefinitions say what the server restricts and name PAS's as their base; the samples in examples/ are
the Bundles these tests build, and the request sample is certified."""

from __future__ import annotations

import json

import httpx
from fhirpy import AsyncFHIRClient

from fhir_server.second_opinion.codes import CANON, PAS_INQUIRE_OPERATION, PAS_SUBMIT_OPERATION
from fhir_server.settings import PROJECT_ROOT
from fhir_server.subscriptions.topic import PAS_TOPIC_URL, TOPIC_CANONICAL_CAPABILITY_EXT, TOPIC_URL
from tests.pas.builders import pas_inquiry, pas_request
from tests.pas.conftest import LiveServer
from tests.pas.reading import pas_inquire, pas_submit, review_action
from tests.second_opinion.conftest import example

EXAMPLES = PROJECT_ROOT / "examples"


def test_the_capability_statement_declares_the_pas_operations_and_topic(server: LiveServer):
    statement = httpx.get(f"{server.base_url}/metadata", timeout=30).json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    operations = {(op["name"], op["definition"]) for op in resources["Claim"]["operation"]}
    assert {("submit", PAS_SUBMIT_OPERATION), ("inquire", PAS_INQUIRE_OPERATION)} <= operations
    topics = [e["valueCanonical"] for e in resources["Subscription"]["extension"]
              if e["url"] == TOPIC_CANONICAL_CAPABILITY_EXT]
    assert topics == [TOPIC_URL, PAS_TOPIC_URL]


async def test_the_hosted_operation_definitions_are_pas_operations(server: LiveServer):
    fhir = AsyncFHIRClient(server.base_url)
    for operation_id, code, base in (("Claim-submit", "submit", PAS_SUBMIT_OPERATION),
                                     ("Claim-inquire", "inquire", PAS_INQUIRE_OPERATION)):
        definition = (await fhir.reference("OperationDefinition", operation_id).to_resource()).serialize()
        assert definition["url"] == f"{CANON}/OperationDefinition/{operation_id}"
        assert (definition["code"], definition["base"], definition["resource"]) == (code, base, ["Claim"])
        assert (definition["type"], definition["instance"], definition["system"]) == (True, False, False)


def test_the_samples_are_the_bundles_the_tests_build():
    native = example("submit-health-net-cardiology")
    for name, built in (("pas-submit-health-net-cardiology", pas_request(native)),
                        ("pas-inquire-health-net-cardiology", pas_inquiry(native))):
        assert json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8")) == built, name


async def test_the_readme_exchange(server: LiveServer):
    """The README's PAS exchange: the request sample is certified; the inquiry sample finds it again."""
    request = json.loads((EXAMPLES / "pas-submit-health-net-cardiology.json").read_text(encoding="utf-8"))
    inquiry = json.loads((EXAMPLES / "pas-inquire-health-net-cardiology.json").read_text(encoding="utf-8"))
    submitted = await pas_submit(server.base_url, request)
    assert review_action(submitted.claim_response)["code"] == "A1"
    found = await pas_inquire(server.base_url, inquiry)
    assert found.claim_response == submitted.claim_response
