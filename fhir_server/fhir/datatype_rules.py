"""Rules of single datatypes and resources that their StructureDefinitions state only in prose.

* a resource ``id`` is an ``id`` (``[A-Za-z0-9\\-.]{1,64}``): R4 types ``Resource.id`` as a FHIRPath string, so the
  regex of the ``id`` type never reaches it from the definitions;
* an Attachment's ``size`` is the number of bytes of its ``data`` (and its ``hash``, a warning, their base64 SHA-1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from fhir_server.fhir.findings import Findings

RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def check_resource_id(findings: Findings, resource: dict[str, Any], expression: str) -> None:
    value = resource.get("id")
    if isinstance(value, str) and value and not RESOURCE_ID.fullmatch(value):
        findings.fail("value", f"Resource id {value!r} is not 1-64 letters, digits, '-' or '.'", expression + ".id")


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

