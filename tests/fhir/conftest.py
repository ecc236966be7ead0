"""Fixtures of the FHIR model tests: a validator over the shipped core definitions."""

from __future__ import annotations

import pytest

from fhir_server.fhir.definitions import core_registry
from fhir_server.fhir.terminology import core_terminology
from fhir_server.fhir.validator import Validator


@pytest.fixture(scope="session")
def core_validator() -> Validator:
    return Validator(core_registry(), core_terminology())
