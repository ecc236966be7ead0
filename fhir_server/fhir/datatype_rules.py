"""Rules of single datatypes and resources that their StructureDefinitions state only in prose.

* a resource ``id`` is an ``id`` (``[A-Za-z0-9\\-.]{1,64}``): R4 types ``Resource.id`` as a FHIRPath string, so the
  regex of the ``id`` type never reaches it from the definitions;
* ``dom-3``, which fhirpathpy cannot evaluate (``descendants().as(canonical)`` on a collection): a contained
  resource is referenced from elsewhere in its container (``#id`` as a reference, canonical or uri), or refers
  to the container itself (``#``);
* an Attachment's ``size`` is the number of bytes of its ``data`` (and its ``hash``, a warning, their base64 SHA-1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any, Iterator

from fhir_server.fhir.findings import Findings

RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def check_resource_id(findings: Findings, resource: dict[str, Any], expression: str) -> None:
    value = resource.get("id")
    if isinstance(value, str) and value and not RESOURCE_ID.fullmatch(value):
        findings.fail("value", f"Resource id {value!r} is not 1-64 letters, digits, '-' or '.'", expression + ".id")


def string_values(value: Any) -> Iterator[str]:
    """Every string anywhere in a JSON value (iterative: resources can nest deeply)."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            yield current
        elif isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def check_contained_referenced(findings: Findings, resource: dict[str, Any], expression: str) -> None:
    contained = resource.get("contained")
    if not isinstance(contained, list) or not contained:
        return
    mentioned = {value for value in string_values(resource) if value.startswith("#")}
    for position, item in enumerate(contained):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        if "#" + item["id"] in mentioned or "#" in set(string_values(item)):
            continue
        findings.fail("invariant", "Constraint dom-3 failed: If the resource is contained in another resource, it "
                      "SHALL be referred to from elsewhere in the resource or SHALL refer to the containing resource",
                      f"{expression}.contained[{position}]")


def check_attachment(findings: Findings, attachment: dict[str, Any], expression: str) -> None:
    data = attachment.get("data")
    if not isinstance(data, str) or not data:
        return
    try:
        content = base64.b64decode(data.encode("ascii"), validate=False)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return  # the base64Binary format check reports it
    size = attachment.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size != len(content):
        findings.fail("value", f"Attachment size {size} does not match its data ({len(content)} bytes)",
                      expression + ".size")
    digest = attachment.get("hash")
    if isinstance(digest, str) and digest != base64.b64encode(hashlib.sha1(content).digest()).decode("ascii"):
        # A warning: published examples carry hex digests of other content, and the reference validator is
        # lenient here too; the size is unambiguous and is an error.
        findings.warn("value", "Attachment hash is not the base64 SHA-1 of its data", expression + ".hash")

