"""Unknown URLs answer 404 with an OperationOutcome, never a body-less redirect (a 307 would make a client
re-send a POST/PUT body elsewhere)."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import FHIR_JSON, outcome_issue, patient


@pytest.mark.parametrize("method, path", [("GET", "/Patient/abc/"), ("PUT", "/Patient/%2F"), ("POST", "/Patient/")])
async def test_trailing_or_encoded_slashes_are_not_redirected(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path, json=patient(), headers=FHIR_JSON)
    assert response.status_code in (400, 404, 405), response.status_code
    assert outcome_issue(response)["severity"] == "error"
