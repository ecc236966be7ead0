"""Candidate professionals, read from the stored Plan-Net provider directory.

The routing rules work on a :class:`Directory` snapshot (plain data), so they are pure and testable on any set
of directory resources; :func:`load_directory` builds that snapshot from a store with a handful of searches
(PractitionerRoles by specialty, their Practitioners, the plan's InsurancePlan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from fhir_server.second_opinion.codes import NETWORK_REFERENCE_EXT, NUCC_SYSTEM, ORG_TYPE_SYSTEM, codes_in
from fhir_server.second_opinion.references import read_all, read_or_none, search_every
from fhir_server.search.query import Criterion, ReferenceValue, SearchQuery, TokenValue
from fhir_server.storage.base import ResourceOperations


@dataclass(frozen=True)
class Candidate:
    """One PractitionerRole as routing sees it."""

    role: str  # "PractitionerRole/id"
    practitioner: str  # "Practitioner/id"
    organization: str | None  # "Organization/id" (the physician group)
    specialties: frozenset[str]  # NUCC codes
    networks: frozenset[str]  # "Organization/id" of each network-reference
    board_certifications: frozenset[str]  # NUCC codes of the practitioner's board certifications
    active: bool


@dataclass(frozen=True)
class Directory:
    candidates: tuple[Candidate, ...]
    plan_networks: frozenset[str]
    expert_panels: frozenset[str] = frozenset()  # "Organization/id" of the plan's expert-panel network, if any

    def in_network(self, candidate: Candidate) -> bool:
        return bool(candidate.networks & self.plan_networks)


def _nucc_codes(concepts: Iterable[dict[str, Any]]) -> frozenset[str]:
    return frozenset(codes_in(concepts, NUCC_SYSTEM))


def networks_of(plans: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The network Organizations of InsurancePlans (contract: the plan's networks)."""
    return frozenset(n["reference"] for p in plans for n in p.get("network", ()) if n.get("reference"))


def board_certifications(practitioner: Mapping[str, Any] | None) -> frozenset[str]:
    """NUCC codes of a Practitioner's qualifications issued by a board (contract: code = NUCC, issuer = board)."""
    if not practitioner:
        return frozenset()
    return _nucc_codes(q["code"] for q in practitioner.get("qualification", ()) if q.get("issuer") and q.get("code"))


def is_active(role: Mapping[str, Any]) -> bool:
    """A PractitionerRole without ``active`` counts as active (the element's meaning when absent)."""
    return role.get("active", True) is not False


def candidate_from(role: Mapping[str, Any], practitioner: Mapping[str, Any] | None) -> Candidate:
    networks = frozenset(
        ext["valueReference"]["reference"]
        for ext in role.get("extension", ())
        if ext.get("url") == NETWORK_REFERENCE_EXT and ext.get("valueReference", {}).get("reference")
    )
    return Candidate(
        role=f"PractitionerRole/{role['id']}",
        practitioner=role.get("practitioner", {}).get("reference", ""),
        organization=role.get("organization", {}).get("reference"),
        specialties=_nucc_codes(role.get("specialty", ())),
        networks=networks,
        board_certifications=board_certifications(practitioner),
        active=is_active(role),
    )


def directory_from_resources(
    resources: Iterable[Mapping[str, Any]], plan_key: str, expert_panel_identifier: str | None = None
) -> Directory:
    """A snapshot of a whole set of directory resources (e.g. the entries of a directory Bundle)."""
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    practitioners = {f"Practitioner/{p['id']}": p for p in by_type.get("Practitioner", ())}
    plans = [p for p in by_type.get("InsurancePlan", ()) if _has_identifier_value(p, plan_key)]
    panels = frozenset(
        f"Organization/{o['id']}"
        for o in by_type.get("Organization", ())
        if expert_panel_identifier and _has_identifier_value(o, expert_panel_identifier)
    )
    return Directory(
        candidates=tuple(
            candidate_from(role, practitioners.get(role.get("practitioner", {}).get("reference", "")))
            for role in by_type.get("PractitionerRole", ())
        ),
        plan_networks=networks_of(plans),
        expert_panels=panels,
    )


def _has_identifier_value(resource: Mapping[str, Any], value: str) -> bool:
    return any(i.get("value") == value for i in resource.get("identifier", ()))


def _token(name: str, *values: tuple[str | None, str | None]) -> Criterion:
    return Criterion(name=name, type="token", values=tuple(TokenValue(s, c) for s, c in values))


async def _search(ops: ResourceOperations, resource_type: str, *criteria: Criterion) -> list[dict[str, Any]]:
    return await search_every(ops, SearchQuery(resource_type=resource_type, criteria=list(criteria)))


async def plan_networks(ops: ResourceOperations, plan_key: str) -> frozenset[str]:
    """The networks of the InsurancePlan whose identifier value is the plan key, whatever its system (contract
    "Provider directory": each payer keeps its own identifier system)."""
    return networks_of(await _search(ops, "InsurancePlan", _token("identifier", (None, plan_key))))


async def expert_panels(ops: ResourceOperations, identifier: str | None) -> frozenset[str]:
    """The network Organizations carrying the plan's expert-panel identifier value (any system)."""
    if not identifier:
        return frozenset()
    found = await _search(ops, "Organization", _token("identifier", (None, identifier)))
    return frozenset(f"Organization/{o['id']}" for o in found)


async def load_directory(
    ops: ResourceOperations, plan_key: str, specialties: Iterable[str], expert_panel_identifier: str | None = None
) -> Directory:
    """Every PractitionerRole offering one of ``specialties`` (active or not: routing decides), with the board
    certifications of its Practitioner, the networks of the plan and its expert panel."""
    codes = sorted(set(specialties))
    roles = await _search(ops, "PractitionerRole", _token("specialty", *((NUCC_SYSTEM, c) for c in codes))) if codes else []
    practitioners = await read_all(ops, list(dict.fromkeys(
        reference for role in roles if (reference := role.get("practitioner", {}).get("reference", ""))
    )))
    return Directory(
        candidates=tuple(
            candidate_from(role, practitioners.get(role.get("practitioner", {}).get("reference", ""))) for role in roles
        ),
        plan_networks=await plan_networks(ops, plan_key),
        expert_panels=await expert_panels(ops, expert_panel_identifier),
    )


def is_physician_group(organization: Mapping[str, Any] | None) -> bool:
    return bool(organization) and "prvgrp" in codes_in(organization.get("type", ()), ORG_TYPE_SYSTEM)


async def roles_of(ops: ResourceOperations, practitioner: str) -> list[dict[str, Any]]:
    """Every PractitionerRole of a ``Practitioner/id``."""
    resource_type, _, resource_id = practitioner.partition("/")
    return await _search(
        ops,
        "PractitionerRole",
        Criterion(name="practitioner", type="reference", values=(ReferenceValue(resource_type, resource_id),)),
    )


async def specialties_of(ops: ResourceOperations, reference: str) -> frozenset[str]:
    """The NUCC specialties a physician practises: a PractitionerRole's own; for a Practitioner, those of its
    active roles and its board certifications."""
    resource = await read_or_none(ops, reference) or {}
    if reference.startswith("PractitionerRole/"):
        return _nucc_codes(resource.get("specialty", ()))
    roles = [r for r in await roles_of(ops, reference) if is_active(r)]
    return board_certifications(resource).union(*(_nucc_codes(r.get("specialty", ())) for r in roles))


async def active_group_of(ops: ResourceOperations, practitioner: str) -> str | None:
    """The physician group of a Practitioner's one active role in a ``prvgrp`` Organization (contract)."""
    roles = await roles_of(ops, practitioner)
    groups = set()
    for role in roles:
        organization = role.get("organization", {}).get("reference")
        if is_active(role) and organization:
            if is_physician_group(await read_or_none(ops, organization)):
                groups.add(organization)
    return groups.pop() if len(groups) == 1 else None
