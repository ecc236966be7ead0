"""Every official R4 example of the types this server deals in is valid (no false positives)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_server.fhir.validator import Validator

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "r4-examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))


def test_the_examples_cover_the_server_types() -> None:
    types = {json.loads(path.read_text(encoding="utf-8"))["resourceType"] for path in EXAMPLE_FILES}
    assert types == {
        "ServiceRequest", "Task", "ClaimResponse", "Patient", "Organization", "Practitioner", "PractitionerRole",
        "Coverage", "Claim", "Condition", "DiagnosticReport", "DocumentReference", "Communication",
        "InsurancePlan", "Bundle",
    }


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_official_example_validates_without_errors(path: Path, core_validator: Validator) -> None:
    resource = json.loads(path.read_text(encoding="utf-8"))
    errors = [issue for issue in core_validator.validate(resource) if issue.is_error]
    assert errors == []
