"""Which organizations a reference in a tenant element (``tenant_elements`` in the access data) makes tenants.

Why the provider directory is read: a member's physician group is named by ``Patient.generalPractitioner`` either
as the Organization itself or as the member's PCP, a PractitionerRole (its ``organization``) or a Practitioner (the
organizations of its active PractitionerRoles); the same holds for a Task's ``owner``. Taking only Organization
references would leave a group blind to the cases of every member whose PCP is named instead of the group.

The directory is read through the operations the write happens in (inside its transaction), as stored: a
Practitioner's roles at the time of the write decide, and a later change of roles does not re-stamp old cases.
"""

from __future__ import annotations

from typing import Any

from fhir_server.second_opinion.directory import is_active, roles_of
from fhir_server.second_opinion.references import local_form, read_or_none
from fhir_server.security.access import AccessRules
from fhir_server.storage.base import ResourceOperations
from fhir_server.storage.versioning import resource_type_of


def references_in(resource: dict[str, Any], elements: tuple[str, ...]) -> list[str]:
    """The literal references (``Type/id`` or longer) the given top-level elements of ``resource`` hold."""
    found: list[str] = []
    for element in elements:
        value = resource.get(element)
        for item in value if isinstance(value, list) else [value]:
            reference = item.get("reference") if isinstance(item, dict) else None
            if isinstance(reference, str) and reference:
                found.append(reference)
    return found


def local_references(resource: dict[str, Any], elements: tuple[str, ...]) -> list[str]:
    """The ``Type/id`` each reference of those elements names on this server (an absolute URL ending in
    ``Type/id`` counts: the workflow resolves it so too); other forms (``urn:``, contained) are left out."""
    return [local for reference in references_in(resource, elements) if (local := local_form(reference))]


def _organization_of(role: dict[str, Any] | None) -> str | None:
    reference = ((role or {}).get("organization") or {}).get("reference")
    return reference if isinstance(reference, str) and reference.startswith("Organization/") else None


async def organizations_named(ops: ResourceOperations, reference: str) -> set[str]:
    """``Organization/id`` itself; a PractitionerRole's organization; a Practitioner's active roles' organizations;
    nothing for any other reference (or one the directory does not know)."""
    resource_type, _, resource_id = reference.partition("/")
    if not resource_id or "/" in resource_id:
        return set()
    if resource_type == "Organization":
        return {reference}
    if resource_type == "PractitionerRole":
        organization = _organization_of(await read_or_none(ops, reference))
        return {organization} if organization else set()
    if resource_type == "Practitioner":
        return {org for role in await roles_of(ops, reference) if is_active(role) and (org := _organization_of(role))}
    return set()


async def named_tenants(ops: ResourceOperations, resource: dict[str, Any], rules: AccessRules) -> set[str]:
    """The organizations the resource's tenant elements name, resolved as :func:`organizations_named` says."""
    found: set[str] = set()
    for reference in references_in(resource, rules.tenant_elements.get(resource_type_of(resource), ())):
        found |= await organizations_named(ops, reference)
    return found
