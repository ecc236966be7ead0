"""Da Vinci PAS 2.x on top of the second-opinion intake: a PAS request Bundle in, a PAS response Bundle out.

A PAS client (an EHR that already implements prior authorization) sends ``Claim/$submit`` a ``collection``
Bundle holding one Claim (``use`` preauthorization) and what it references. Each Claim item names the service
it asks for through ``extension-requestedService``; this server handles second opinions only, so every item
must name the same second-opinion ServiceRequest (``code`` v2-0336 ``S``, or claiming the request profile),
and that ServiceRequest is the request the intake decides, exactly as ``ServiceRequest/$submit`` would.

Mapping, both ways, and nothing else:

- :func:`read_request` checks the PAS envelope and reorders the entries into the intake's input (the
  ServiceRequest first, the Claim passed on as the case's own Claim, the requestor and insurer the server already
  holds referenced rather than rewritten); :func:`in_request_terms` re-anchors the intake's error expressions
  (``Bundle.entry[i]``) to the entries of the Bundle the client sent;
- :func:`response_bundle` turns the intake's answer into the PAS response: the ClaimResponse first (as stored,
  with the Claim item's ``itemTraceNumber`` echoed and its ``itemSequence``), then the resources it references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from fhir_server.errors import FhirError, Issue, bad_request, error, unprocessable
from fhir_server.second_opinion.codes import (
    ITEM_TRACE_NUMBER_EXT,
    PAS_RESPONSE_BUNDLE_PROFILE,
    REQUEST_PROFILE,
    REQUESTED_SERVICE_EXT,
    SECOND_OPINION_CODE_SYSTEM,
    codes_in,
)
from fhir_server.fhir.resources import copy_resource
from fhir_server.second_opinion.references import local_form, matching_stored_id, read_or_none, walk_references
from fhir_server.second_opinion.validation import check_structure, well_formed
from fhir_server.services.validation import ResourceValidator
from fhir_server.storage.base import ResourceOperations

SECOND_OPINION_CODE = "S"
ONLY_SECOND_OPINIONS = "This server handles only second-opinion requests"
DIRECTORY_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole"})
# ClaimResponse elements whose targets a PAS response Bundle carries after the ClaimResponse.
RESPONSE_REFERENCES = ("request", "patient", "insurer", "requestor")

Reader = Callable[[str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class PasRequest:
    """A PAS request Bundle as the intake's input."""

    intake_bundle: dict[str, Any]  # the ServiceRequest first, then every other entry (the Claim included)
    claim_entry: int  # where the Claim is in ``intake_bundle``
    origin: tuple[int, ...]  # origin[i]: the index in the client's Bundle of the intake Bundle's entry i


def check_collection(bundle: Any, operation: str, validator: ResourceValidator | None) -> list[dict[str, Any]]:
    """The entries of a PAS Bundle: 400 when it is not a collection of valid R4 resources (every problem of
    every entry at once), so what reads them next never meets a malformed element."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise bad_request(f"The body of {operation} must be a Bundle", "Bundle")
    if bundle.get("type") != "collection":
        raise bad_request(f"The {operation} Bundle must be of type 'collection'", "Bundle.type")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not all(well_formed(e) for e in entries):
        raise bad_request(f"Every entry of the {operation} Bundle needs a resource with a resourceType",
                          "Bundle.entry")
    check_structure(validator, entries)
    return entries


def claim_index(entries: list[dict[str, Any]], operation: str) -> int:
    """The index of the one Claim (``use`` preauthorization) of a PAS Bundle; 422 otherwise."""
    claims = [i for i, e in enumerate(entries) if e["resource"]["resourceType"] == "Claim"]
    if len(claims) != 1:
        raise unprocessable([error("business-rule", f"A {operation} Bundle holds exactly one Claim "
                                   f"(found {len(claims)})", "Bundle.entry")])
    index = claims[0]
    use = entries[index]["resource"].get("use")
    if use != "preauthorization":
        raise unprocessable([error("business-rule", f"{ONLY_SECOND_OPINIONS}, asked as prior authorizations: "
                                   f"Claim.use is 'preauthorization', not {use!r}",
                                   f"Bundle.entry[{index}].resource.use")])
    return index


def _entry_named(entries: list[dict[str, Any]], reference: str) -> int | None:
    """The entry a reference names: by its fullUrl, or by ``Type/id`` (of the fullUrl or of the resource)."""
    local = local_form(reference) or reference
    for index, entry in enumerate(entries):
        resource = entry["resource"]
        names = {entry.get("fullUrl"), local_form(entry.get("fullUrl") or ""),
                 f"{resource['resourceType']}/{resource.get('id')}" if resource.get("id") else None}
        if reference in names or local in names:
            return index
    return None


def is_second_opinion(service_request: dict[str, Any]) -> bool:
    """A ServiceRequest asking for a second opinion: coded v2-0336 ``S``, or claiming the request profile."""
    return SECOND_OPINION_CODE in codes_in([service_request.get("code")], SECOND_OPINION_CODE_SYSTEM) or (
        REQUEST_PROFILE in (service_request.get("meta") or {}).get("profile", ())
    )


def requested_service(entries: list[dict[str, Any]], claim_at: int) -> int:
    """The entry of the second-opinion ServiceRequest every item of the Claim asks for; 422 naming each item
    that asks for something else (another service, nothing, or a resource the Bundle does not hold)."""
    claim = entries[claim_at]["resource"]
    items = claim.get("item") or []
    prefix = f"Bundle.entry[{claim_at}].resource"
    if not items:
        raise unprocessable([error("required", f"{ONLY_SECOND_OPINIONS}: the Claim has no item naming one",
                                   f"{prefix}.item")])
    issues: list[Issue] = []
    found: set[int] = set()
    for position, item in enumerate(items):
        expression = f"{prefix}.item[{position}]"
        references = [e.get("valueReference", {}).get("reference") for e in item.get("extension", ())
                      if e.get("url") == REQUESTED_SERVICE_EXT]
        target = _entry_named(entries, references[0]) if references and references[0] else None
        service = entries[target]["resource"] if target is not None else None
        if service is None:
            issues.append(error("required", f"{ONLY_SECOND_OPINIONS}: each Claim item names the second-opinion "
                                "ServiceRequest it asks for, held in the Bundle, through the extension "
                                f"{REQUESTED_SERVICE_EXT}", f"{expression}.extension"))
        elif service["resourceType"] != "ServiceRequest" or not is_second_opinion(service):
            is_request = service["resourceType"] == "ServiceRequest"
            what = f"a ServiceRequest for {_label(service)}" if is_request else f"a {service['resourceType']}"
            issues.append(error("not-supported", f"{ONLY_SECOND_OPINIONS} (a ServiceRequest coded "
                                f"{SECOND_OPINION_CODE_SYSTEM}|{SECOND_OPINION_CODE}); this item asks for {what}",
                                f"{expression}.extension"))
        else:
            found.add(target)
    if not issues and len(found) > 1:
        issues.append(error("business-rule", "One Claim asks for one second opinion: its items name "
                            f"{len(found)} different ServiceRequests", f"{prefix}.item"))
    if issues:
        raise unprocessable(issues)
    return found.pop()


def _label(resource: dict[str, Any]) -> str:
    code = resource.get("code") or {}
    coding = (code.get("coding") or [{}])[0]
    return repr(code.get("text") or coding.get("display") or coding.get("code") or "an unnamed service")


async def read_request(bundle: Any, validator: ResourceValidator | None, ops: ResourceOperations) -> PasRequest:
    """The intake's input for a PAS request Bundle (see the module docstring); 400/422 when it is none."""
    entries = check_collection(bundle, "Claim/$submit", validator)
    claim_at = claim_index(entries, "Claim/$submit")
    request_at = requested_service(entries, claim_at)
    known = await known_directory_entries(ops, entries)
    origin = (request_at, *(i for i in range(len(entries)) if i != request_at and i not in known))
    entries = with_references_to(entries, known)
    intake_entries = [claim_entry(entries[i]) if i == claim_at else entries[i] for i in origin]
    intake_bundle = {"resourceType": "Bundle", "type": "collection", "entry": intake_entries}
    return PasRequest(intake_bundle, origin.index(claim_at), origin)


async def known_directory_entries(ops: ResourceOperations, entries: list[dict[str, Any]]) -> dict[int, str]:
    """``index -> Type/id`` of each provider-directory entry (an Organization, Practitioner or PractitionerRole:
    the requestor, the insurer...) that names a resource the server holds, by business identifier or by its
    fullUrl. A PAS Bundle carries them because PAS wants every referenced resource in it; the directory is the
    plan's own record of them (qualifications, roles, networks), so they are read, never overwritten."""
    known: dict[int, str] = {}
    for index, entry in enumerate(entries):
        resource = entry["resource"]
        if resource["resourceType"] not in DIRECTORY_TYPES:
            continue
        stored_id = await matching_stored_id(ops, resource)
        given = local_form(entry.get("fullUrl") or "")
        if stored_id is None and given and given.startswith(f"{resource['resourceType']}/"):
            stored_id = given.partition("/")[2] if await read_or_none(ops, given) is not None else None
        if stored_id is not None:
            known[index] = f"{resource['resourceType']}/{stored_id}"
    return known


def with_references_to(entries: list[dict[str, Any]], known: dict[int, str]) -> list[dict[str, Any]]:
    """The entries with every reference to a known directory entry (by fullUrl or ``Type/id``) turned into a
    reference to the stored resource it stands for."""
    aliases: dict[str, str] = {}
    for index, target in known.items():
        entry = entries[index]
        resource = entry["resource"]
        names = [entry.get("fullUrl"), local_form(entry.get("fullUrl") or "")]
        names.append(f"{resource['resourceType']}/{resource['id']}" if resource.get("id") else None)
        aliases.update({name: target for name in names if name})
    if not aliases:
        return entries
    rewritten = []
    for index, entry in enumerate(entries):
        resource = copy_resource(entry["resource"])
        for _, node in walk_references(resource, resource["resourceType"]):
            node["reference"] = aliases.get(node["reference"], node["reference"])
        rewritten.append({**entry, "resource": resource})
    return rewritten


def claim_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """The client's Claim as the intake should store it: known again only by its business identifier (a
    resubmission), else under an id of the server's, whatever id or URL the client gave it; so a client's
    ``Claim/1`` never overwrites another case's Claim, and the authorization number derived from the id stays
    unique."""
    resource = {key: value for key, value in entry["resource"].items() if key != "id"}
    full_url = entry.get("fullUrl")
    return {"fullUrl": full_url, "resource": resource} if str(full_url).startswith("urn:") else {"resource": resource}


_ENTRY = re.compile(r"^Bundle\.entry\[(\d+)\]")


def renamed(expression: str, origin: tuple[int, ...]) -> str:
    """A FHIRPath about the intake Bundle (``Bundle.entry[i]...``) as one about the client's Bundle."""
    return _ENTRY.sub(lambda m: f"Bundle.entry[{origin[int(m.group(1))]}]"
                      if int(m.group(1)) < len(origin) else m.group(0), expression)


def in_request_terms(problem: FhirError, origin: tuple[int, ...]) -> FhirError:
    """The same error with each ``Bundle.entry[i]`` of the intake Bundle renamed to the client's entry."""
    issues = [Issue(i.severity, i.code, i.diagnostics, tuple(renamed(e, origin) for e in i.expression),
                    i.details_code) for i in problem.issues]
    return FhirError(issues, problem.status, problem.headers)


def _outcome_in_request_terms(outcome: dict[str, Any], origin: tuple[int, ...]) -> dict[str, Any]:
    issues = [{**issue, **({"expression": [renamed(e, origin) for e in issue["expression"]]}
                           if "expression" in issue else {})} for issue in outcome.get("issue", ())]
    return {**outcome, "issue": issues}


# ------------------------------------------------------------------------------------------------ the answer


def trace_numbers(claim: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``itemTraceNumber`` extension of the Claim's items, as sent."""
    return [e for item in claim.get("item") or () for e in item.get("extension", ())
            if e.get("url") == ITEM_TRACE_NUMBER_EXT]


def pas_claim_response(claim_response: dict[str, Any], claim: dict[str, Any] | None) -> dict[str, Any]:
    """The stored ClaimResponse as PAS shows it: its item answers the Claim's item (``itemSequence``) and
    echoes that item's ``itemTraceNumber`` extensions, so the EHR matches the answer to what it asked."""
    claim_items = (claim or {}).get("item") or []
    if not claim_items:
        return claim_response
    echoed = trace_numbers(claim or {})
    items = []
    for item in claim_response.get("item", ()):
        others = [e for e in item.get("extension", ()) if e.get("url") != ITEM_TRACE_NUMBER_EXT]
        items.append({**item, "extension": [*echoed, *others], "itemSequence": claim_items[0].get("sequence", 1)})
        if not items[-1]["extension"]:
            del items[-1]["extension"]
    return {**claim_response, "item": items}


async def case_entries(claim_response: dict[str, Any], read: Reader) -> list[dict[str, Any]]:
    """The PAS view of one case: its ClaimResponse, then the Claim, patient, insurer, requestor and the
    authorized provider it references (each read once)."""
    references = [claim_response.get(key, {}).get("reference") for key in RESPONSE_REFERENCES]
    references += [e.get("valueReference", {}).get("reference") for item in claim_response.get("item", ())
                   for ext in item.get("extension", ()) for e in ext.get("extension", ()) if "valueReference" in e]
    resources: list[dict[str, Any]] = []
    for reference in dict.fromkeys(r for r in references if r):
        resource = await read(reference)
        if resource is not None:
            resources.append(resource)
    claim = next((r for r in resources if r["resourceType"] == "Claim"), None)
    return [pas_claim_response(claim_response, claim), *resources]


def collection(base_url: str, resources: list[dict[str, Any]], profile: str, timestamp: str) -> dict[str, Any]:
    """A PAS response (or inquiry response) Bundle of these resources, each once: a stored one under its
    absolute URL, an OperationOutcome (stored nowhere) under a ``urn:uuid:``."""
    unique = {f"{r['resourceType']}/{r['id']}": r for r in resources}
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [profile]},
        "type": "collection",
        "timestamp": timestamp,
        "entry": [{"fullUrl": f"urn:uuid:{resource['id']}" if resource["resourceType"] == "OperationOutcome"
                   else f"{base_url.rstrip('/')}/{reference}", "resource": resource}
                  for reference, resource in unique.items()],
    }


async def response_bundle(
    answer: dict[str, Any], origin: tuple[int, ...], base_url: str, read: Reader, timestamp: str
) -> dict[str, Any]:
    """The PAS response Bundle of an intake answer (ClaimResponse, Task, ServiceRequest, Claim, ...): the case
    as :func:`case_entries` shows it, then the answer's warnings (an OperationOutcome about the client's
    entries: ``origin`` as in :class:`PasRequest`), if any."""
    answered = {f"{e['resource']['resourceType']}/{e['resource'].get('id')}": e["resource"] for e in answer["entry"]}

    async def answered_or_stored(reference: str) -> dict[str, Any] | None:
        return answered.get(reference) or await read(reference)

    entries = await case_entries(answer["entry"][0]["resource"], answered_or_stored)
    warnings = [_outcome_in_request_terms(r, origin) for r in answered.values()
                if r["resourceType"] == "OperationOutcome"]
    return collection(base_url, [*entries, *warnings], PAS_RESPONSE_BUNDLE_PROFILE, timestamp)
