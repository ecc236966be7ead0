"""Is the request complete? (contract "Complete information"; 90.2.17 procedure 2: "review the referral for
completion of demographic and clinical information to support the second opinion request").

An incomplete but valid request is pended (A4, Task on-hold, information-missing), never rejected: each
missing item becomes one ``Task.input`` (missing-information) holding its FHIRPath, and a line of
``Task.statusReason``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from fhir_server.second_opinion.codes import OPINION_SEQUENCE_EXT

Resource = Mapping[str, Any]


@dataclass(frozen=True)
class MissingItem:
    expression: str  # FHIRPath of what is missing
    description: str


@dataclass(frozen=True)
class Submission:
    """The resolved resources completeness looks at."""

    service_request: Resource
    patient: Resource | None
    coverage: Resource | None
    member_group: str | None  # "Organization/id" resolved from Patient.generalPractitioner


def opinion_sequence(service_request: Resource) -> str:
    return next(
        (e.get("valueCode", "second") for e in service_request.get("extension", ()) if e.get("url") == OPINION_SEQUENCE_EXT),
        "second",
    )


def _has(resource: Resource | None, element: str) -> bool:
    return bool(resource and resource.get(element))


def _has_name(patient: Resource | None) -> bool:
    """A HumanName with words in it (text, family or a given name): ``{"use": "official"}`` names nobody."""
    words = (
        [name.get("text") or "", name.get("family") or "", *name.get("given", ())]
        for name in (patient or {}).get("name", ())
    )
    return any(part.strip() for parts in words for part in parts)


# (FHIRPath, what the member/EHR is told, test that it is present). Order = order of the Task inputs.
REQUIREMENTS: tuple[tuple[str, str, Callable[[Submission], bool]], ...] = (
    ("Patient.name", "the member's name", lambda s: _has_name(s.patient)),
    ("Patient.birthDate", "the member's birth date", lambda s: _has(s.patient, "birthDate")),
    ("Patient.gender", "the member's gender", lambda s: _has(s.patient, "gender")),
    (
        "Patient.generalPractitioner",
        "the member's physician group (primary care physician, their role or the group itself)",
        lambda s: s.member_group is not None,
    ),
    ("Coverage.subscriberId", "the member's subscriber id", lambda s: _has(s.coverage, "subscriberId")),
    (
        "ServiceRequest.reasonReference | ServiceRequest.supportingInfo",
        "the clinical basis of the request (a Condition or supporting documents)",
        lambda s: _has(s.service_request, "reasonReference") or _has(s.service_request, "supportingInfo"),
    ),
    (
        "ServiceRequest.supportingInfo",
        "both prior opinions (a third opinion is sought because the first and second opinions differ)",
        lambda s: opinion_sequence(s.service_request) != "third" or len(s.service_request.get("supportingInfo", ())) >= 2,
    ),
)


def missing_information(submission: Submission) -> list[MissingItem]:
    return [MissingItem(path, text) for path, text, present in REQUIREMENTS if not present(submission)]
