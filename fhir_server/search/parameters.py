"""The search parameters the server supports, as one table of data.

Each row names a parameter of one resource type, its FHIR type, the element paths it indexes and the
canonical URL of its SearchParameter (core ones share definitions such as ``clinical-patient``; the
CapabilityStatement lists the URL). Paths are dotted element paths starting with the resource type;
arrays are flattened while walking them. One step may filter extensions by URL:
``PractitionerRole.extension[http://...].valueReference``.

Parameters every type has (``_id``, ``_lastUpdated``, ``_profile``, ``_tag``, ``_security``) are declared once
with ``resource_type="Resource"`` and offered for every type.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

ParamType = Literal["token", "string", "reference", "date", "uri", "number", "quantity", "special"]

CORE = "http://hl7.org/fhir/SearchParameter/"
PLAN_NET = "http://hl7.org/fhir/us/davinci-pdex-plan-net/"
NETWORK_REFERENCE_EXTENSION = PLAN_NET + "StructureDefinition/network-reference"
# Not a core R4 parameter: the server defines it (its SearchParameter lives in profiles/).
SERVER_PARAMS = "http://example.org/fhir/second-opinion/SearchParameter/"


@dataclass(frozen=True)
class SearchParamDef:
    """One search parameter of one resource type.

    ``targets`` lists the resource types a reference parameter may point to; a local reference to another
    type is not indexed for it (that is how ``patient`` = ``subject.where(resolve() is Patient)`` works).
    An empty tuple means any type.
    """

    name: str
    type: ParamType
    resource_type: str
    paths: tuple[str, ...]
    targets: tuple[str, ...] = ()
    url: str = ""


def _p(
    resource_type: str, name: str, type_: ParamType, *paths: str, targets: tuple[str, ...] = (), url: str = ""
) -> SearchParamDef:
    """Row builder: paths are written relative to the resource type to keep the table readable."""
    return SearchParamDef(
        name=name,
        type=type_,
        resource_type=resource_type,
        paths=tuple(f"{resource_type}.{path}" for path in paths),
        targets=targets,
        url=url or f"{CORE}{resource_type}-{name}",
    )


PATIENT = ("Patient",)
CONFORMANCE_TYPES = ("StructureDefinition", "CodeSystem", "ValueSet", "OperationDefinition", "SearchParameter")


def _conformance(resource_type: str) -> list[SearchParamDef]:
    """url/name/version/status shared by every conformance resource (core ``conformance-*`` parameters)."""
    return [
        _p(resource_type, "url", "uri", "url", url=CORE + "conformance-url"),
        _p(resource_type, "name", "string", "name", url=CORE + "conformance-name"),
        _p(resource_type, "version", "token", "version", url=CORE + "conformance-version"),
        _p(resource_type, "status", "token", "status", url=CORE + "conformance-status"),
    ]


def _clinical_patient(resource_type: str) -> list[SearchParamDef]:
    """``patient`` and ``subject`` of the clinical resources whose patient is their Patient subject."""
    return [
        _p(resource_type, "patient", "reference", "subject", targets=PATIENT, url=CORE + "clinical-patient"),
        _p(resource_type, "subject", "reference", "subject"),
    ]


COMMON_PARAMS: tuple[SearchParamDef, ...] = (
    SearchParamDef("_id", "token", "Resource", ("Resource.id",), url=CORE + "Resource-id"),
    SearchParamDef(
        "_lastUpdated", "date", "Resource", ("Resource.meta.lastUpdated",), url=CORE + "Resource-lastUpdated"
    ),
    SearchParamDef("_profile", "uri", "Resource", ("Resource.meta.profile",), url=CORE + "Resource-profile"),
    SearchParamDef("_tag", "token", "Resource", ("Resource.meta.tag",), url=CORE + "Resource-tag"),
    SearchParamDef("_security", "token", "Resource", ("Resource.meta.security",), url=CORE + "Resource-security"),
)

TYPE_PARAMS: tuple[SearchParamDef, ...] = (
    _p("Patient", "identifier", "token", "identifier"),
    _p("Patient", "name", "string", "name"),
    _p("Patient", "family", "string", "name.family", url=CORE + "individual-family"),
    _p("Patient", "given", "string", "name.given", url=CORE + "individual-given"),
    _p("Patient", "birthdate", "date", "birthDate", url=CORE + "individual-birthdate"),
    _p("Patient", "gender", "token", "gender", url=CORE + "individual-gender"),
    _p("Organization", "identifier", "token", "identifier"),
    _p("Organization", "name", "string", "name", "alias"),
    _p("Organization", "type", "token", "type"),
    _p("Organization", "partof", "reference", "partOf", targets=("Organization",)),
    _p("Practitioner", "identifier", "token", "identifier"),
    _p("Practitioner", "name", "string", "name"),
    _p("Practitioner", "family", "string", "name.family", url=CORE + "individual-family"),
    _p(
        "Practitioner",
        "qualification-code",
        "token",
        "qualification.code",
        url=PLAN_NET + "SearchParameter/practitioner-qualification-code",
    ),
    _p("PractitionerRole", "practitioner", "reference", "practitioner", targets=("Practitioner",)),
    _p("PractitionerRole", "organization", "reference", "organization", targets=("Organization",)),
    _p("PractitionerRole", "specialty", "token", "specialty"),
    _p("PractitionerRole", "active", "token", "active"),
    _p(
        "PractitionerRole",
        "network",
        "reference",
        f"extension[{NETWORK_REFERENCE_EXTENSION}].valueReference",
        targets=("Organization",),
        url=PLAN_NET + "SearchParameter/practitionerrole-network",
    ),
    _p("InsurancePlan", "identifier", "token", "identifier"),
    _p("InsurancePlan", "owned-by", "reference", "ownedBy", targets=("Organization",)),
    _p("InsurancePlan", "name", "string", "name", "alias"),
    _p("Coverage", "beneficiary", "reference", "beneficiary", targets=PATIENT),
    _p("Coverage", "payor", "reference", "payor", targets=("Organization", "Patient", "RelatedPerson")),
    _p("Coverage", "identifier", "token", "identifier"),
    _p("Coverage", "subscriber", "reference", "subscriber", targets=("Patient", "RelatedPerson")),
    _p("Coverage", "patient", "reference", "beneficiary", targets=PATIENT),
    _p("ServiceRequest", "identifier", "token", "identifier", url=CORE + "clinical-identifier"),
    *_clinical_patient("ServiceRequest"),
    _p("ServiceRequest", "status", "token", "status"),
    _p("ServiceRequest", "requester", "reference", "requester"),
    _p("ServiceRequest", "performer", "reference", "performer"),
    _p("ServiceRequest", "authored", "date", "authoredOn"),
    _p("ServiceRequest", "code", "token", "code", url=CORE + "clinical-code"),
    _p("ServiceRequest", "intent", "token", "intent"),
    _p("Task", "identifier", "token", "identifier"),
    _p("Task", "focus", "reference", "focus"),
    _p("Task", "patient", "reference", "for", targets=PATIENT),
    _p("Task", "status", "token", "status"),
    _p("Task", "owner", "reference", "owner"),
    _p("Task", "business-status", "token", "businessStatus"),
    _p("Task", "authored-on", "date", "authoredOn"),
    _p("Task", "code", "token", "code"),
    _p("Task", "based-on", "reference", "basedOn"),
    _p("Claim", "identifier", "token", "identifier"),
    _p("Claim", "patient", "reference", "patient", targets=PATIENT),
    _p("ClaimResponse", "identifier", "token", "identifier"),
    _p("ClaimResponse", "patient", "reference", "patient", targets=PATIENT),
    _p("ClaimResponse", "outcome", "token", "outcome"),
    _p("ClaimResponse", "created", "date", "created"),
    _p("ClaimResponse", "requestor", "reference", "requestor"),
    _p("ClaimResponse", "insurer", "reference", "insurer", targets=("Organization",)),
    _p("ClaimResponse", "request", "reference", "request", targets=("Claim",)),
    *_clinical_patient("DiagnosticReport"),
    _p("DiagnosticReport", "identifier", "token", "identifier", url=CORE + "clinical-identifier"),
    _p("DiagnosticReport", "based-on", "reference", "basedOn"),
    *_clinical_patient("DocumentReference"),
    _p("DocumentReference", "identifier", "token", "identifier", url=CORE + "clinical-identifier"),
    _p("DocumentReference", "related", "reference", "context.related"),
    _p("Communication", "recipient", "reference", "recipient"),
    _p("Communication", "based-on", "reference", "basedOn"),
    _p("Communication", "about", "reference", "about", url=SERVER_PARAMS + "Communication-about"),
    _p("Communication", "subject", "reference", "subject"),
    _p("CommunicationRequest", "based-on", "reference", "basedOn"),
    _p("CommunicationRequest", "recipient", "reference", "recipient"),
    _p("CommunicationRequest", "status", "token", "status"),
    _p("CommunicationRequest", "subject", "reference", "subject"),
    *_clinical_patient("Condition"),
    _p("Condition", "identifier", "token", "identifier", url=CORE + "clinical-identifier"),
    _p("Condition", "code", "token", "code", url=CORE + "clinical-code"),
    _p("Subscription", "status", "token", "status"),
    _p("Subscription", "url", "uri", "channel.endpoint"),
    *(row for resource_type in CONFORMANCE_TYPES for row in _conformance(resource_type)),
    # The review form the pages under /ui render, found by its canonical URL.
    _p("Questionnaire", "url", "uri", "url", url=CORE + "Questionnaire-url"),
    _p("Questionnaire", "status", "token", "status", url=CORE + "Questionnaire-status"),
    _p("Endpoint", "identifier", "token", "identifier"),
    _p("Endpoint", "name", "string", "name"),
    # The audit trail (IHE Basic Audit Log Patterns): the plan searches it by entity, agent, patient and date.
    _p("AuditEvent", "entity", "reference", "entity.what"),
    _p("AuditEvent", "agent", "reference", "agent.who"),
    _p("AuditEvent", "patient", "reference", "entity.what", targets=PATIENT),
    _p("AuditEvent", "date", "date", "recorded"),
    _p("AuditEvent", "action", "token", "action"),
    _p("AuditEvent", "outcome", "token", "outcome"),
    _p("AuditEvent", "subtype", "token", "subtype"),
    _p("AuditEvent", "type", "token", "type"),
    # Security records (registered clients, accounts) are Basic resources with a code of their kind.
    _p("Basic", "code", "token", "code"),
)


def _for_type(common: SearchParamDef, resource_type: str) -> SearchParamDef:
    """A common parameter bound to one type, so paths always start with the type being indexed."""
    paths = tuple(resource_type + path.removeprefix("Resource") for path in common.paths)
    return SearchParamDef(common.name, common.type, resource_type, paths, common.targets, common.url)


@lru_cache(maxsize=None)
def params_for(resource_type: str) -> dict[str, SearchParamDef]:
    """Every parameter ``resource_type`` supports, by name: the common ones plus its own."""
    common = {p.name: _for_type(p, resource_type) for p in COMMON_PARAMS}
    own = {p.name: p for p in TYPE_PARAMS if p.resource_type == resource_type}
    return {**common, **own}


def get_param(resource_type: str, name: str) -> SearchParamDef | None:
    """The definition of ``name`` on ``resource_type``, or None when the server does not support it."""
    return params_for(resource_type).get(name)


def searchable_types() -> tuple[str, ...]:
    """Resource types with parameters of their own (for the CapabilityStatement)."""
    return tuple(dict.fromkeys(p.resource_type for p in TYPE_PARAMS))
