"""Values that look like query syntax stay plain values on both stores, with security on: a MongoDB operator, a
regular expression or an SQL fragment in a search matches only resources that contain that very text, and never
widens a search past the caller's tenant."""

from __future__ import annotations

import pytest

from tests.security.conftest import EHR_SCOPES, register

HOSTILE = ['{"$ne": null}', ".*", "'; DROP TABLE resources; --", '{"$gt": ""}', "$where", "a%' OR '1'='1"]


@pytest.fixture
def ehrs(secure_each):
    ehr_a = register(secure_each, "Organization/ehr-a", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    ehr_b = register(secure_each, "Organization/ehr-b", "ehr", EHR_SCOPES).sign_in(EHR_SCOPES)
    for family in ("Plain", *HOSTILE):
        for party in (ehr_a, ehr_b):
            assert party.post("/fhir/Patient", {"resourceType": "Patient", "name": [{"family": family}]}).status_code == 201
    return ehr_a, ehr_b


def total(party, **params) -> int:
    response = party.client.get("/fhir/Patient", params={**params, "_total": "accurate"}, headers=party.headers)
    assert response.status_code in (200, 400), response.text
    return response.json().get("total", -1) if response.status_code == 200 else -1


@pytest.mark.parametrize("value", HOSTILE)
def test_operator_looking_values_match_only_themselves(ehrs, value):
    ehr_a, _ = ehrs
    assert total(ehr_a, **{"family:exact": value}) == 1
    assert total(ehr_a, _id=value) in (0, -1)  # never an id: nothing, or 400 for an impossible id
    assert total(ehr_a, identifier=value) == 0
    assert total(ehr_a) == len(HOSTILE) + 1  # the caller's own, no more: the tenant criterion held


def test_operator_objects_in_a_body_are_refused_not_run(ehrs):
    ehr_a, _ = ehrs
    response = ehr_a.post("/fhir/Patient", {"resourceType": "Patient", "name": [{"family": {"$ne": None}}]})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    search = ehr_a.client.post("/fhir/Patient/_search", data={"family": '{"$ne": null}', "_total": "accurate"},
                               headers={"Authorization": f"Bearer {ehr_a.token}"})
    assert search.json()["total"] == 1
