"""Delegated physician group -> plan copy (policy 90.2.17 procedure 10).

"If the second opinion request is processed at the IPA level, the IPA will send a copy of the request and the
medical record information to [the plan] at the time the decision is rendered." When this server runs for a
delegated group (the case's Task is owned by a ``prvgrp`` Organization) and the case is decided (its
ClaimResponse certified, A1, or not certified, A3, and the Task final), a transaction Bundle with the
ServiceRequest, its supportingInfo and reasonReference resources, the Patient, Coverage, Claim, ClaimResponse and
Task is queued for the plan's endpoint: the settings' (``FHIR_PLAN_COPY_ENDPOINT__<PLAN>``), else the plan data's
``delegation.plan_copy_endpoint`` (the shipped data names none); none: nothing is sent. Delivery attempts are capped
by the plan's ``delegation.plan_copy_max_attempts`` (else ``FHIR_OUTBOX_MAX_ATTEMPTS``).

Why observers on both ClaimResponse and Task: a decision writes the ClaimResponse and then the Task in one
transaction (``$submit``, ``$decide``), and a client may change either alone through REST. The copy is made
from whichever write leaves the case decided and final, so it always carries the decided Task, never the one
being replaced. Reliability comes from the outbox: the message is written in the decision's own transaction,
its id ``plan-copy:ClaimResponse/<id>/_history/<version>`` makes it one message per decision however many writes
observe it, and each entry is a conditional create (``ifNoneExist`` on the resource's identifier) so a copy
delivered twice (an answer lost on the way back) is stored once. A resource without a business identifier gets
one derived from this server's base URL and its id; the copy's internal references point at the entries'
``urn:uuid`` fullUrls so the receiver resolves them to what it stores or already holds.
"""

from __future__ import annotations

import uuid
from typing import Any

from fhir_server.fhir.resources import copy_resource
from fhir_server.search.parameters import get_param
from fhir_server.second_opinion.cases import ExistingCase, case_of_task, existing_case, is_second_opinion_task
from fhir_server.second_opinion.categories import tag_value
from fhir_server.second_opinion.directory import is_physician_group
from fhir_server.second_opinion.plans import PlanCatalog, load_catalog
from fhir_server.second_opinion.references import read_or_none, walk_references
from fhir_server.storage.base import OutboxMessage, ResourceOperations, StoredResource

CHANNEL = "plan-copy"
DECIDED_REVIEW_ACTIONS = frozenset({"A1", "A3"})  # certified, not certified (A4 pended is no decision yet)
# Stable urn:uuid fullUrls: the same resource gets the same fullUrl in every copy this server sends.
FULL_URL_NAMESPACE = uuid.UUID("0b8f6f2e-5d1a-4a53-9c39-6c0b6d2a1f10")


def message_id(claim_response: dict[str, Any]) -> str:
    """One message per decision: the decided ClaimResponse version."""
    return f"plan-copy:ClaimResponse/{claim_response['id']}/_history/{claim_response['meta']['versionId']}"


def is_decided(case: ExistingCase) -> bool:
    """The ClaimResponse certifies or refuses, and the Task is final: the decision is rendered."""
    tags = (case.claim_response or {}).get("meta", {}).get("tag", [])
    return tag_value(tags, "decision") in DECIDED_REVIEW_ACTIONS and case.final


def _as_new(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as a create: no id, no store-owned meta (the receiver assigns its own)."""
    fresh = {key: value for key, value in copy_resource(resource).items() if key != "id"}
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        fresh["meta"] = meta
    else:
        fresh.pop("meta", None)
    return fresh


def _dedupe_identifier(resource: dict[str, Any], source_base: str) -> tuple[dict[str, str], bool]:
    """The identifier the receiver deduplicates on: the first business identifier with system and value, or one
    derived from this server's base URL and the resource's id; and whether it was derived (the copy adds it)."""
    for identifier in resource.get("identifier", ()):
        if identifier.get("system") and identifier.get("value"):
            return {"system": identifier["system"], "value": identifier["value"]}, False
    return {"system": f"{source_base}/{resource['resourceType']}", "value": resource["id"]}, True


def _if_none_exist(resource_type: str, identifier: dict[str, str]) -> tuple[str, bool]:
    """The conditional-create query, and whether the identifier must also travel as a tag.

    ``identifier`` where the type is searchable by it; otherwise (this server's DocumentReference and
    DiagnosticReport, say) the same system|value as a ``meta.tag``, which every type is searchable by."""
    token = f"{identifier['system']}|{identifier['value']}"
    if get_param(resource_type, "identifier") is not None:
        return f"identifier={token}", False
    return f"_tag={token}", True


def _entry(resource: dict[str, Any], full_url: str, source_base: str) -> dict[str, Any]:
    body = _as_new(resource)
    identifier, derived = _dedupe_identifier(resource, source_base)
    if derived:
        body["identifier"] = [*body.get("identifier", []), identifier]
    condition, as_tag = _if_none_exist(resource["resourceType"], identifier)
    if as_tag:
        meta = body.setdefault("meta", {})
        meta["tag"] = [*meta.get("tag", []), {"system": identifier["system"], "code": identifier["value"]}]
    return {
        "fullUrl": full_url,
        "resource": body,
        "request": {"method": "POST", "url": resource["resourceType"], "ifNoneExist": condition},
    }


def _full_url(reference: str, source_base: str) -> str:
    return f"urn:uuid:{uuid.uuid5(FULL_URL_NAMESPACE, f'{source_base}/{reference}')}"


async def _case_resources(tx: ResourceOperations, case: ExistingCase) -> list[dict[str, Any]]:
    """ServiceRequest, its medical record information (supportingInfo, and the reasonReference Conditions its
    clinical basis may be given by), Patient, Coverage, Claim, ClaimResponse and Task (those present)."""
    service_request = await read_or_none(tx, case.task["focus"]["reference"]) or {}
    claim = await read_or_none(tx, f"Claim/{case.ids.claim}") or {}
    references = [
        *(info.get("reference", "") for info in service_request.get("supportingInfo", ())),
        *(reason.get("reference", "") for reason in service_request.get("reasonReference", ())),
        service_request.get("subject", {}).get("reference", ""),
        *(coverage.get("reference", "") for coverage in service_request.get("insurance", ())),
    ]
    related = [await read_or_none(tx, reference) for reference in dict.fromkeys(references) if reference]
    resources = [service_request, *related, claim, case.claim_response or {}, case.task]
    return [resource for resource in resources if resource]


def build_copy(resources: list[dict[str, Any]], source_base: str) -> dict[str, Any]:
    """The transaction Bundle: conditional creates whose references to each other use the entries' fullUrls."""
    full_urls = {f"{r['resourceType']}/{r['id']}": _full_url(f"{r['resourceType']}/{r['id']}", source_base)
                 for r in resources}
    entries = [_entry(resource, full_urls[f"{resource['resourceType']}/{resource['id']}"], source_base)
               for resource in resources]
    for entry in entries:
        for _, reference in walk_references(entry["resource"], entry["resource"]["resourceType"]):
            reference["reference"] = full_urls.get(reference["reference"], reference["reference"])
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


class PlanCopies:
    """The observer of ClaimResponse and Task writes that queues the copy of a decided delegated case."""

    def __init__(self, catalog_source: Any, source_base: str, configured: Any = lambda plan_key: None) -> None:
        self._catalog_source = catalog_source  # () -> PlanCatalog: the app's plan data, read when needed
        self._source_base = source_base
        self._configured = configured  # plan key -> endpoint from the settings (None: the plan data's, if any)

    @property
    def catalog(self) -> PlanCatalog:
        return self._catalog_source()

    async def claim_response_changed(
        self, tx: ResourceOperations, stored: StoredResource, previous: StoredResource | None
    ) -> None:
        if stored.resource is None:
            return
        claim = await read_or_none(tx, stored.resource.get("request", {}).get("reference", ""))
        service_request = (claim or {}).get("referral", {}).get("reference")
        case = await existing_case(tx, service_request) if service_request else None
        if case is not None and case.ids.claim_response == stored.id:
            await self.queue_if_decided(tx, case)

    async def task_changed(self, tx: ResourceOperations, stored: StoredResource, previous: StoredResource | None) -> None:
        if stored.resource is not None and is_second_opinion_task(stored.resource):
            case = await case_of_task(tx, stored.resource)
            if case is not None:
                await self.queue_if_decided(tx, case)

    async def queue_if_decided(self, tx: ResourceOperations, case: ExistingCase) -> bool:
        """Queue the copy of ``case`` when it is decided by a delegated group whose plan names an endpoint;
        True when a message was queued (False also when this decision's copy was queued before)."""
        if not is_decided(case) or case.claim_response is None:
            return False
        owner = await read_or_none(tx, case.task.get("owner", {}).get("reference", ""))
        if not is_physician_group(owner):
            return False
        plan_key = tag_value(case.task.get("meta", {}).get("tag", []), "plan")
        rules = self.catalog.plans.get(plan_key or "")
        endpoint = (self._configured(plan_key) or rules.plan_copy_endpoint) if rules is not None else None
        if rules is None or not endpoint:
            return False
        bundle = build_copy(await _case_resources(tx, case), self._source_base)
        return await tx.enqueue(OutboxMessage(
            id=message_id(case.claim_response),
            channel=CHANNEL,
            destination=endpoint,
            payload=bundle,
            headers={"X-Request-Id": message_id(case.claim_response)},
            max_attempts=rules.plan_copy_max_attempts,
        ))


def register(app: Any) -> None:
    """Observe ClaimResponse and Task writes of the app's store (``app.state.change_observers``)."""
    settings = app.state.settings
    copies = PlanCopies(lambda: load_catalog(settings.mappings_dir), settings.public_base(),
                        settings.plan_copy_endpoint_for)
    app.state.change_observers.add("ClaimResponse", copies.claim_response_changed)
    app.state.change_observers.add("Task", copies.task_changed)
