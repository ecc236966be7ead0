"""FHIR errors shared by every layer.

Storage, validation and domain code raise these; ``api/errors.py`` turns them into an ``OperationOutcome``
with the matching HTTP status. Keeping them here (not in the API package) lets the stores and the
validator speak FHIR without importing HTTP code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass(frozen=True)
class Issue:
    """One ``OperationOutcome.issue``: what is wrong and where (FHIRPath in ``expression``)."""

    severity: str  # fatal | error | warning | information
    code: str  # issue-type code: invalid, structure, required, value, code-invalid, not-found, ...
    diagnostics: str
    expression: tuple[str, ...] = ()
    details_code: str | None = None  # optional code from operation-outcome CodeSystem

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.details_code:
            out["details"] = {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/operation-outcome", "code": self.details_code}
                ],
                "text": self.diagnostics,
            }
        if self.expression:
            out["expression"] = list(self.expression)
        return out

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")


def error(code: str, diagnostics: str, *expression: str) -> Issue:
    return Issue("error", code, diagnostics, tuple(e for e in expression if e))


def warning(code: str, diagnostics: str, *expression: str) -> Issue:
    return Issue("warning", code, diagnostics, tuple(e for e in expression if e))


def information(code: str, diagnostics: str, *expression: str) -> Issue:
    return Issue("information", code, diagnostics, tuple(e for e in expression if e))


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    issue_list = [i.to_fhir() for i in issues]
    if not issue_list:
        issue_list = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    return {"resourceType": "OperationOutcome", "issue": issue_list}


@dataclass
class FhirError(Exception):
    """An error that ends the interaction with ``status`` and an OperationOutcome of ``issues``."""

    issues: list[Issue]
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__("; ".join(i.diagnostics for i in self.issues))

    @classmethod
    def single(cls, status: int, code: str, diagnostics: str, *expression: str) -> "FhirError":
        return cls([error(code, diagnostics, *expression)], status)


def bad_request(diagnostics: str, *expression: str, code: str = "invalid") -> FhirError:
    return FhirError.single(400, code, diagnostics, *expression)


def not_found(diagnostics: str) -> FhirError:
    return FhirError.single(404, "not-found", diagnostics)


def gone(diagnostics: str) -> FhirError:
    return FhirError.single(410, "deleted", diagnostics)


def conflict(diagnostics: str) -> FhirError:
    return FhirError.single(409, "conflict", diagnostics)


def precondition_failed(diagnostics: str) -> FhirError:
    return FhirError.single(412, "conflict", diagnostics)


def unprocessable(issues: list[Issue]) -> FhirError:
    return FhirError(issues, 422)


def too_large(diagnostics: str) -> FhirError:
    return FhirError.single(413, "too-costly", diagnostics)


def unsupported_media_type(diagnostics: str) -> FhirError:
    return FhirError.single(415, "not-supported", diagnostics)


def not_supported(diagnostics: str, status: int = 400) -> FhirError:
    return FhirError.single(status, "not-supported", diagnostics)
