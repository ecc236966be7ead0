"""Bundle rules the R4 specification states in prose (the ``bdl-*`` FHIRPath invariants are evaluated apart).

* ``fullUrl`` is absolute (``http(s)://.../Type/id``, ``urn:uuid:``, ``urn:oid:``) and, when it is a RESTful URL,
  names the entry's own resource type and id (a warning);
* the same resource (type, id and version) appears once, except in a history: with a fullUrl that is ``bdl-7``,
  without one the type and id are all there is to tell entries apart;
* a searchset's resources have ids, and those found as ``match`` are of the type searched (the ``self`` link);
* references resolve inside the Bundle where its type requires it: a ``urn:uuid:``/``urn:oid:`` reference can
  only ever resolve to an entry (an error in a transaction, batch, document or message, where the server or the
  receiver must resolve it; a warning elsewhere), and in a document every reference of the Composition resolves
  to an entry (R4 3.3.1: the document is self-contained).
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from fhir_server.fhir.findings import Findings

URN_UUID = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
URN_OID = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+")
ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
RESTFUL = re.compile(r"(?P<base>.*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$")
RELATIVE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$")
ENTRY_STEP = re.compile(r"^\.entry\[(\d+)\]")
# Bundle types whose urn references must resolve to an entry (the receiver has nowhere else to look).
SELF_CONTAINED = frozenset({"transaction", "batch", "document", "message"})


def entries(bundle: dict[str, Any]) -> Iterable[tuple[int, dict[str, Any]]]:
    items = bundle.get("entry")
    for position, entry in enumerate(items if isinstance(items, list) else ()):
        if isinstance(entry, dict):
            yield position, entry


def check_full_url(findings: Findings, entry: dict[str, Any], where: str) -> None:
    full_url = entry.get("fullUrl")
    if not isinstance(full_url, str) or not full_url:
        return
    at = where + ".fullUrl"
    if full_url.startswith("urn:uuid:"):
        if not URN_UUID.fullmatch(full_url):
            findings.fail("value", f"fullUrl {full_url!r} is not a valid urn:uuid", at)
        return
    if full_url.startswith("urn:oid:"):
        if not URN_OID.fullmatch(full_url):
            findings.fail("value", f"fullUrl {full_url!r} is not a valid urn:oid", at)
        return
    if not ABSOLUTE.fullmatch(full_url):
        findings.fail("value", f"fullUrl {full_url!r} must be an absolute URL (or a urn:uuid / urn:oid)", at)
        return
    resource = entry.get("resource")
    match = RESTFUL.match(full_url)
    if not isinstance(resource, dict) or match is None or not isinstance(resource.get("id"), str):
        return
    if (match["type"], match["id"]) != (resource.get("resourceType"), resource["id"]):
        # A warning: published examples (messages, lri-example) carry such entries, and a reader resolves by
        # fullUrl all the same.
        findings.warn("invalid", f"fullUrl {full_url!r} does not match the resource "
                      f"{resource.get('resourceType')}/{resource['id']}", at)


def check_duplicates(findings: Findings, bundle: dict[str, Any], expression: str) -> None:
    if bundle.get("type") == "history":
        return
    seen: dict[tuple[Any, ...], int] = {}
    for position, entry in entries(bundle):
        resource = entry.get("resource")
        if "fullUrl" in entry or not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
            continue
        meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
        key = (resource.get("resourceType"), resource["id"], meta.get("versionId"))
        if key in seen:
            findings.fail("duplicate", f"{key[0]}/{key[1]} appears twice (entries {seen[key]} and {position})",
                          f"{expression}.entry[{position}].resource")
        else:
            seen[key] = position


def searched_type(bundle: dict[str, Any]) -> str | None:
    """The resource type a searchset answers, from its ``self`` link (``.../Patient?name=x``), if one type."""
    for link in bundle.get("link", ()) if isinstance(bundle.get("link"), list) else ():
        if isinstance(link, dict) and link.get("relation") == "self" and isinstance(link.get("url"), str):
            path = link["url"].split("?", 1)[0].rstrip("/")
            last = path.rsplit("/", 1)[-1]
            if last == "_search":
                last = path.rsplit("/", 2)[-2] if path.count("/") >= 1 else ""
            return last if re.fullmatch(r"[A-Z][A-Za-z]+", last) else None
    return None


def check_searchset(findings: Findings, bundle: dict[str, Any], expression: str) -> None:
    if bundle.get("type") != "searchset":
        return
    wanted = searched_type(bundle)
    for position, entry in entries(bundle):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        where = f"{expression}.entry[{position}]"
        if "id" not in resource:
            findings.fail("required", "A searchset's resources have ids", where + ".resource")
        search = entry.get("search") if isinstance(entry.get("search"), dict) else {}
        kind = resource.get("resourceType")
        if wanted and search.get("mode", "match") == "match" and kind not in (wanted, "OperationOutcome"):
            findings.fail("invalid", f"A {kind} found as a match of a {wanted} search", where + ".resource")


def resolves(literal: str, full_url: str | None, full_urls: set[str], tails: set[str]) -> bool:
    """Does a literal reference name an entry? Relative ones resolve against the referencing entry's base, or
    name an entry whose RESTful fullUrl ends in them (``tails``: the ``Type/id`` of each such fullUrl)."""
    if literal in full_urls:
        return True
    if RELATIVE.match(literal):
        plain = literal.split("/_history/", 1)[0]
        match = RESTFUL.match(full_url or "")
        if match is not None and match["base"] and match["base"] + plain in full_urls:
            return True
        return plain in tails
    return False


def check_references(findings: Findings, bundle: dict[str, Any], expression: str,
                     references: list[tuple[str, str]]) -> None:
    kind = bundle.get("type")
    positions = dict(entries(bundle))
    full_urls = {e["fullUrl"] for e in positions.values() if isinstance(e.get("fullUrl"), str)}
    tails = {f"{m['type']}/{m['id']}" for m in map(RESTFUL.match, full_urls) if m is not None and m["base"]}
    for literal, path in references:
        step = ENTRY_STEP.match(path[len(expression):])
        if step is None or literal.startswith("#") or "?" in literal:
            continue
        position = int(step[1])
        entry = positions.get(position, {})
        if resolves(literal, entry.get("fullUrl"), full_urls, tails):
            continue
        where = path + ".reference"
        if literal.startswith(("urn:uuid:", "urn:oid:")):
            text = f"Reference {literal!r} names no entry of the Bundle"
            (findings.fail if kind in SELF_CONTAINED else findings.warn)("not-found", text, where)
        elif kind == "document" and position == 0:
            findings.fail("not-found", f"The document's Composition references {literal!r}, which is not in the "
                          "Bundle (a document is self-contained)", where)


def check_bundle(findings: Findings, bundle: dict[str, Any], expression: str,
                 references: list[tuple[str, str]]) -> None:
    for position, entry in entries(bundle):
        check_full_url(findings, entry, f"{expression}.entry[{position}]")
    check_duplicates(findings, bundle, expression)
    check_searchset(findings, bundle, expression)
    check_references(findings, bundle, expression, references)
