"""Does a changed case concern a subscriber? The topic's filters, and the organization a case belongs to.

A filter is ``Task?name=value[,value...]`` (the Backport's ``backport-filter-criteria``): values of one filter
are ORed, filters are ANDed. Each filter the topic allows (its ``canFilterBy``) is one row of :data:`FILTERS`:
how to read its values off the case. References compare as ``Type/id``; tokens as ``code`` or ``system|code``.

A case belongs to the organization that owns its Task (the physician group or plan deciding it) and to the
organization of whoever requested it (an Organization, a PractitionerRole's organization, or the organizations
of a Practitioner's active roles). A subscriber only ever hears of cases of its own organization, whatever
other filters it sets: see :func:`concerns`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from fhir_server.search.index import parse_reference
from fhir_server.second_opinion.directory import is_active, roles_of
from fhir_server.second_opinion.references import read_or_none
from fhir_server.storage.base import ResourceOperations


@dataclass(frozen=True)
class CaseFacts:
    """What the filters look at: one version of a second-opinion Task, its authorization, its organizations."""

    task: dict[str, Any]
    claim_response: dict[str, Any] | None
    organizations: frozenset[str]  # "Organization/id" of the owner and of the requester

    @property
    def reference(self) -> str:
        return f"Task/{self.task['id']}"


def local_reference(reference: Any) -> str | None:
    """``Type/id`` of a Reference (relative or absolute), None when it names nothing local."""
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    resource_type, resource_id = parse_reference(reference["reference"])
    return f"{resource_type}/{resource_id}" if resource_type else None


def _references(*elements: Any) -> set[str]:
    return {ref for ref in (local_reference(e) for e in elements) if ref}


def _tokens(concepts: Iterable[Any]) -> set[str]:
    """``code`` and ``system|code`` of each coding, so a filter may give the system or not."""
    values: set[str] = set()
    for concept in concepts:
        for coding in (concept or {}).get("coding", ()):
            if coding.get("code"):
                values |= {coding["code"], f"{coding.get('system', '')}|{coding['code']}"}
    return values


@dataclass(frozen=True)
class TopicFilter:
    kind: str  # "reference" or "token": how the values of a filter are normalised before comparing
    read: Callable[[CaseFacts], set[str]]
    description: str


FILTERS: dict[str, TopicFilter] = {
    "organization": TopicFilter(
        "reference", lambda case: set(case.organizations),
        "the organization whose case it is: the Task's owner, or the requester's organization",
    ),
    "owner": TopicFilter("reference", lambda case: _references(case.task.get("owner")), "Task.owner"),
    "requester": TopicFilter("reference", lambda case: _references(case.task.get("requester")), "Task.requester"),
    "patient": TopicFilter("reference", lambda case: _references(case.task.get("for")), "Task.for"),
    "status": TopicFilter(
        "token", lambda case: {case.task["status"]} if case.task.get("status") else set(), "Task.status"
    ),
    "business-status": TopicFilter(
        "token", lambda case: _tokens([case.task.get("businessStatus")]), "Task.businessStatus"
    ),
}
# Filters that name the subscriber's organization (the scope of everything it receives).
SCOPE_FILTERS = ("organization", "owner")


def normalise(kind: str, value: str) -> str:
    """A filter value as :data:`FILTERS` reads values off a case."""
    if kind == "reference":
        resource_type, resource_id = parse_reference(value)
        return f"{resource_type}/{resource_id}" if resource_type else value
    return value


@dataclass(frozen=True)
class FilterCriterion:
    name: str
    values: frozenset[str]  # normalised; any one matches

    def matches(self, case: CaseFacts) -> bool:
        return bool(FILTERS[self.name].read(case) & self.values)


def concerns(filters: Iterable[FilterCriterion], organization: str, case: CaseFacts) -> bool:
    """Whether the case is ``organization``'s own and passes every filter (the notification rule)."""
    return organization in case.organizations and all(f.matches(case) for f in filters)


# ------------------------------------------------------------------------------------------- reading a case


async def _requester_organizations(ops: ResourceOperations, requester: str | None) -> set[str]:
    """The organizations a requester speaks for (see the module docstring); none for a Patient."""
    if requester is None:
        return set()
    resource_type = requester.partition("/")[0]
    if resource_type == "Organization":
        return {requester}
    if resource_type == "PractitionerRole":
        return _references(((await read_or_none(ops, requester)) or {}).get("organization"))
    if resource_type == "Practitioner":
        roles = [role for role in await roles_of(ops, requester) if is_active(role)]
        return _references(*(role.get("organization") for role in roles))
    return set()


async def case_facts(ops: ResourceOperations, task: dict[str, Any]) -> CaseFacts:
    """Read what the filters need, through ``ops`` (inside the writing transaction it sees that write)."""
    authorization = next(
        (ref for ref in (local_reference(o.get("valueReference")) for o in task.get("output", ()))
         if ref and ref.startswith("ClaimResponse/")),
        None,
    )
    owner = local_reference(task.get("owner"))
    organizations = await _requester_organizations(ops, local_reference(task.get("requester")))
    if owner and owner.startswith("Organization/"):
        organizations.add(owner)
    claim_response = await read_or_none(ops, authorization) if authorization else None
    return CaseFacts(task, claim_response, frozenset(organizations))
