"""Bytes on the wire: content negotiation, bounded body reading, JSON parsing and FHIR JSON answers.

Bodies are read as bytes and parsed with orjson (no pydantic body models): parsing is the hot path of a
FHIR server. Every failure here is a client error with an OperationOutcome, never a 500.
"""

from __future__ import annotations

from datetime import timezone
from email.utils import format_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from fastapi.responses import Response

from fhir_server.errors import FhirError, bad_request, too_large, unsupported_media_type
from fhir_server.search.query import PRESENTATION_PARAMS
from fhir_server.settings import Settings
from fhir_server.storage.base import StoredResource

FHIR_JSON = "application/fhir+json"
FHIR_JSON_UTF8 = "application/fhir+json; charset=utf-8"
FORM = "application/x-www-form-urlencoded"

# Media types we read and write. ``application/json+fhir`` is the DSTU2 spelling some clients still send.
JSON_MEDIA_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
# ``_format`` values meaning JSON (FHIR allows the short form).
JSON_FORMAT_VALUES = JSON_MEDIA_TYPES | {"json"}
# Accept ranges that a JSON answer satisfies.
ACCEPTABLE_RANGES = JSON_MEDIA_TYPES | {"*/*", "application/*"}


def media_type_of(header_value: str) -> str:
    """``application/fhir+json; charset=utf-8`` -> ``application/fhir+json``."""
    return header_value.split(";", 1)[0].strip().lower()


def refused(media_range: str) -> bool:
    """``application/fhir+json;q=0`` says "not this" (RFC 9110 12.4.2): such a range accepts nothing."""
    for parameter in media_range.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip()) == 0
            except ValueError:
                return False
    return False


def check_acceptable(request: Request) -> None:
    """406 when the client will not take JSON: ``_format`` wins over ``Accept`` (FHIR 3.1.0.1.5)."""
    # the query string is parsed only when it may name a _format (most requests have none)
    requested_format = request.query_params.get("_format") if b"_format" in request.scope["query_string"] else None
    if requested_format is not None:
        if media_type_of(requested_format) not in JSON_FORMAT_VALUES:
            raise FhirError.single(406, "not-supported", f"_format {requested_format!r} is not supported: use json")
        return
    accept = request.headers.get("accept")
    if accept and not accepts_json(accept):
        raise FhirError.single(406, "not-supported", f"cannot answer in {accept!r}: this server speaks {FHIR_JSON}")


@lru_cache(maxsize=512)
def accepts_json(accept: str) -> bool:
    """Whether an ``Accept`` header takes a JSON answer. Cached: a client sends the same header every time, and
    this runs on every request."""
    ranges = [media_type_of(part) for part in accept.split(",") if not refused(part)]
    return any(media_range in ACCEPTABLE_RANGES or media_range == "" for media_range in ranges)


def check_content_type(request: Request, *, allow_form: bool = False) -> str:
    """The request body's media type; 415 for anything but FHIR JSON (or a form where searching)."""
    header = request.headers.get("content-type")
    if not header:
        return FHIR_JSON  # lenient: a body without a type is read as FHIR JSON
    media_type = media_type_of(header)
    if media_type in JSON_MEDIA_TYPES or (allow_form and media_type == FORM):
        return media_type
    raise unsupported_media_type(f"Content-Type {header!r} is not supported: send {FHIR_JSON}")


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, refused with 413 past ``max_bytes`` whether it declares its length or streams."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_length = int(declared)
        except ValueError:
            raise bad_request(f"Content-Length {declared!r} is not a number") from None
        if declared_length > max_bytes:
            raise too_large(f"request body of {declared_length} bytes exceeds the limit of {max_bytes} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise too_large(f"request body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_shape(value: Any, max_depth: int, max_items: int) -> None:
    """400 when ``value`` nests objects/arrays deeper than ``max_depth``, 413 when an array has more than
    ``max_items`` items. Iterative (no recursion error), one pass over the parsed body, before anything else
    looks at it: validation and indexing cost grows with every repetition of an element, so a body of 20,000
    names, small in bytes, would otherwise hold the server for seconds.

    Level by level rather than node by node (no depth carried per node, no generator per object): this runs on
    every request body, a ``$submit`` Bundle has hundreds of objects. Parsed JSON holds plain dicts and lists."""
    layer: list[Any] = [value]
    depth = 1
    while layer:
        if depth > max_depth:
            raise _too_deep(max_depth)
        below: list[Any] = []
        add = below.append
        for node in layer:
            if type(node) is dict:
                children = node.values()
            else:
                if len(node) > max_items:
                    raise too_large(f"an array of {len(node)} items exceeds the limit of {max_items} repetitions of "
                                    "an element")
                children = node
            for child in children:
                if type(child) is dict or type(child) is list:
                    add(child)
        layer = below
        depth += 1


def parse_json(body: bytes, settings: Settings) -> Any:
    """Parse JSON bytes; 400 naming line and column when malformed, 400 when nested too deeply, 413 when an
    element repeats too often (``FHIR_MAX_JSON_DEPTH``, ``FHIR_MAX_ARRAY_ITEMS``)."""
    if not body.strip():
        raise bad_request("the request body is empty: a FHIR JSON resource is required", code="structure")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg or "recursion" in exc.msg:
            raise _too_deep(settings.max_json_depth) from None
        raise bad_request(
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", code="structure"
        ) from None
    if isinstance(value, (dict, list)):
        check_shape(value, settings.max_json_depth, settings.max_array_items)
    return value


def _too_deep(max_depth: int) -> FhirError:
    return bad_request(f"JSON nested deeper than the limit of {max_depth} levels", code="too-costly")


def require_resource(value: Any, expected_type: str | None = None) -> dict[str, Any]:
    """The parsed body as a resource dict; 400 when it is not an object or names the wrong type."""
    if not isinstance(value, dict):
        raise bad_request("the request body must be a JSON object (a FHIR resource)", code="structure")
    resource_type = value.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise bad_request("the resource has no resourceType", "resourceType", code="required")
    if expected_type is not None and resource_type != expected_type:
        raise bad_request(
            f"resourceType {resource_type!r} does not match the type {expected_type!r} of the URL", "resourceType"
        )
    return value


async def read_resource(request: Request, settings: Settings, expected_type: str | None = None) -> dict[str, Any]:
    """Content type, size, JSON and resourceType checks in one step, for every interaction with a body."""
    check_content_type(request)
    body = await read_body(request, settings.max_body_bytes)
    return require_resource(parse_json(body, settings), expected_type)


async def read_search_form(request: Request, settings: Settings) -> list[tuple[str, str]]:
    """Parameters of ``POST [base]/Type/_search``: the URL's plus the form-encoded body's."""
    check_content_type(request, allow_form=True)
    body = await read_body(request, settings.max_body_bytes)
    form = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True) if body else []
    return request.query_params.multi_items() + form


def search_parameters(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Query parameters minus those about the representation (``_format``, ``_pretty``), which paging links do
    not repeat."""
    return [(name, value) for name, value in params if name not in PRESENTATION_PARAMS]


def http_date(stored: StoredResource) -> str:
    """``Last-Modified`` value of a stored version (stores keep UTC-aware times)."""
    return format_datetime(stored.last_updated.astimezone(timezone.utc), usegmt=True)


def version_headers(stored: StoredResource) -> dict[str, str]:
    """ETag and Last-Modified of one stored version."""
    return {"ETag": stored.etag, "Last-Modified": http_date(stored)}


def fhir_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A FHIR JSON answer (``None`` content: an empty body, e.g. ``Prefer: return=minimal``)."""
    body = b"" if content is None else orjson.dumps(content)
    return Response(body, status_code=status, headers=headers, media_type=FHIR_JSON_UTF8)
