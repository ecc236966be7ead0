"""Focused regressions for what the generative robustness tests found: each input once answered 500."""

from __future__ import annotations

from tests.robustness.conftest import FHIR_JSON, Prober

TOPIC = "http://example.org/fhir/second-opinion/SubscriptionTopic/second-opinion-decision"


async def test_a_version_beyond_64_bits_is_a_bad_request_not_a_store_overflow(prober: Prober) -> None:
    created = await prober.send("POST", "/Patient", json={"resourceType": "Patient"}, headers=FHIR_JSON)
    patient_id = created.json()["id"]
    huge = "9" * 23
    vread = await prober.send("GET", f"/Patient/{patient_id}/_history/{huge}")
    update = await prober.send("PUT", f"/Patient/{patient_id}", headers={**FHIR_JSON, "If-Match": f'W/"{huge}"'},
                               json={"resourceType": "Patient", "id": patient_id})
    delete = await prober.send("DELETE", f"/Patient/{patient_id}", headers={"If-Match": f'W/"{huge}"'})
    assert [vread.status_code, update.status_code, delete.status_code] == [400, 400, 400]
    assert (await prober.send("GET", f"/Patient/{patient_id}/_history/{2**63 - 1}")).status_code == 404
    prober.verdict()


async def test_a_subscription_whose_channel_is_not_an_object_is_refused_as_invalid_fhir(prober: Prober) -> None:
    subscription = {"resourceType": "Subscription", "status": "requested", "reason": "fuzz", "criteria": TOPIC,
                    "channel": "rest-hook"}
    created = await prober.send("POST", "/Subscription", json=subscription, headers=FHIR_JSON)
    updated = await prober.send("PUT", "/Subscription/fuzz", json={**subscription, "id": "fuzz"}, headers=FHIR_JSON)
    assert created.status_code == updated.status_code == 400
    assert any("channel" in expression for issue in created.json()["issue"] for expression in issue["expression"])
    prober.verdict()
