"""``python -m fhir_server load FILE|DIR...``: resources, Bundles and NDJSON into the store, through the services.

What a file holds decides how it goes in, always through the same validation and service layer as HTTP:

- one resource: an update under its id (a create when it has none), so its errors read ``Patient.gender``;
- a batch or transaction Bundle: processed as POSTed to the base; any other Bundle (a collection, a searchset)
  as a transaction of its entries, except a ``$submit`` request (a collection led by a ServiceRequest), which is
  refused with the URL to POST it to: storing its entries would skip the whole second-opinion workflow;
- NDJSON (``.ndjson``, one resource a line, as a bulk export writes them): batches of :data:`NDJSON_BATCH` lines,
  so one bad line costs only itself, and is reported with its line number.

A directory stands for the ``.json`` and ``.ndjson`` files under it, in name order. A UTF-8 byte-order mark
(as Windows editors save) is skipped. A progress bar on stderr counts the resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from fhir_server.errors import FhirError, error

BOM = b"\xef\xbb\xbf"
NDJSON_BATCH = 200
LOADABLE_SUFFIXES = (".json", ".ndjson")


@dataclass(frozen=True)
class Document:
    """One thing to store: a resource, or a Bundle to process; ``where`` names it in messages."""

    where: str
    content: dict[str, Any]
    lines: tuple[int, ...] = ()  # NDJSON: the line of each batch entry

    @property
    def size(self) -> int:
        if self.content.get("resourceType") == "Bundle":
            return len(self.content.get("entry") or [])
        return 1


def expand(paths: list[str]) -> list[Path]:
    """Files as given; a directory as its ``.json``/``.ndjson`` files (recursively, in name order)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in LOADABLE_SUFFIXES))
        else:
            files.append(path)
    return files


def read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FhirError([error("not-found", f"{path}: {exc.strerror}")]) from None
    return data[len(BOM):] if data.startswith(BOM) else data


def parse_object(data: bytes, where: str) -> dict[str, Any]:
    """A JSON object naming a ``resourceType``; a FhirError naming ``where`` (and line, column) otherwise."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FhirError([error("structure", f"{where}: malformed JSON at line {exc.lineno}, column {exc.colno}")]) from None
    if not isinstance(value, dict) or not value.get("resourceType"):
        raise FhirError([error("structure", f"{where}: not a FHIR resource")])
    return value


def read_json_file(path: str | Path) -> dict[str, Any]:
    """The one JSON resource of a file (``validate`` and ``load``)."""
    return parse_object(read_bytes(Path(path)), str(path))


def is_submit_request(document: dict[str, Any]) -> bool:
    """A ``$submit`` Bundle: a collection whose first entry is the ServiceRequest."""
    if document.get("resourceType") != "Bundle" or document.get("type") != "collection":
        return False
    entries = document.get("entry") or []
    first = entries[0] if entries and isinstance(entries[0], dict) else {}
    return isinstance(first.get("resource"), dict) and first["resource"].get("resourceType") == "ServiceRequest"


def refuse_submit_request(document: dict[str, Any], where: str, base_url: str) -> None:
    if is_submit_request(document):
        raise FhirError([error(
            "not-supported",
            f"{where} is a second-opinion request ($submit Bundle): its entries are not stored as they are; POST it "
            f"to {base_url}/ServiceRequest/$submit (with the server running) so it is validated, routed and decided",
            "Bundle",
        )], 422)


def ndjson_documents(path: Path, data: bytes) -> Iterator[Document]:
    """Batch Bundles of up to :data:`NDJSON_BATCH` lines (blank lines skipped)."""
    entries: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        resource = parse_object(line, f"{path}:{number}")
        entries.append(batch_entry(resource))
        lines.append(number)
        if len(entries) == NDJSON_BATCH:
            yield Document(str(path), {"resourceType": "Bundle", "type": "batch", "entry": entries}, tuple(lines))
            entries, lines = [], []
    if entries:
        yield Document(str(path), {"resourceType": "Bundle", "type": "batch", "entry": entries}, tuple(lines))


def batch_entry(resource: dict[str, Any]) -> dict[str, Any]:
    """PUT under the resource's id (the id is kept), or POST when it has none."""
    resource_type, resource_id = resource.get("resourceType", ""), resource.get("id")
    request = {"method": "PUT", "url": f"{resource_type}/{resource_id}"} if resource_id else {
        "method": "POST", "url": resource_type}
    return {"resource": resource, "request": request}


def documents(path: Path) -> Iterator[Document]:
    data = read_bytes(path)
    if path.suffix == ".ndjson":
        yield from ndjson_documents(path, data)
    else:
        yield Document(str(path), parse_object(data, str(path)))
