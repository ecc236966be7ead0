"""Da Vinci PAS operations with odd inputs: damaged PAS request Bundles to ``Claim/$submit`` and damaged
inquiries to ``Claim/$inquire`` (from the samples in examples/) never get a 5xx or a non-FHIR answer."""

from __future__ import annotations

import copy
import random

import pytest

from tests.robustness.conftest import EXAMPLES_DIR, FHIR_JSON, SCALE, Prober, load_json
from tests.robustness.mutations import encode
from tests.robustness.test_operations import damaged

REQUESTED_SERVICE = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-requestedService"
TRACE_NUMBER = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-itemTraceNumber"
ODD_ITEMS = (
    [], None, "x", 5, [5], ["x"], [{}], [{"extension": "x"}], [{"extension": [5]}], [{"extension": [{"url": 5}]}],
    [{"extension": [{"url": REQUESTED_SERVICE, "valueReference": "x"}]}],
    [{"extension": [{"url": REQUESTED_SERVICE, "valueReference": {"reference": 5}}]}],
    [{"extension": [{"url": REQUESTED_SERVICE, "valueReference": {"reference": "Patient/x"}}]}],
    [{"extension": [{"url": TRACE_NUMBER, "valueIdentifier": "x"}]}],
)
OPERATIONS = (("/Claim/$submit", "pas-submit-health-net-cardiology.json"),
              ("/Claim/$inquire", "pas-inquire-health-net-cardiology.json"))


@pytest.mark.parametrize("seed", range(2))
async def test_damaged_pas_bundles_never_break_the_promise(prober: Prober, seed: int) -> None:
    rng = random.Random(7000 + seed)
    for _ in range(60 * SCALE):
        path, sample = rng.choice(OPERATIONS)
        bundle = damaged(rng, load_json(EXAMPLES_DIR / sample))
        if rng.random() < 0.4:  # the PAS mapping's own inputs: the Claim's items and the services they name
            claim = next((e["resource"] for e in bundle.get("entry") or () if isinstance(e, dict)
                          and isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == "Claim"),
                         None) if isinstance(bundle, dict) else None
            if claim is not None:
                claim["item"] = copy.deepcopy(rng.choice(ODD_ITEMS))
        await prober.send("POST", path, content=encode(rng, bundle), headers=FHIR_JSON)
    prober.verdict()
