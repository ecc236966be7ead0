"""A resource's search index in the shape the ``resources`` collection stores it.

:func:`fhir_server.search.index.extract_index` gives parameter -> values; MongoDB gets them as one flat
``_idx`` array of entries that name their parameter (so a fixed set of compound multikey indexes serves every
parameter), plus ``_sort``: parameter -> ``{"has": True, "asc": smallest, "desc": largest}``, what ``_sort`` on
that parameter orders by (as the SQLite store's MIN / MAX over its index rows).
"""

from __future__ import annotations

from typing import Any

from fhir_server.search.index import IndexValue, extract_index
from fhir_server.search.parameters import get_param
from fhir_server.storage.mongo.documents import INDEX_ENTRY_ATTRIBUTES
from fhir_server.storage.mongo.filters import NATIVE_SORT_FIELDS
from fhir_server.storage.versioning import SORT_ATTRIBUTES

def _entry(param: str, value: IndexValue) -> dict[str, Any]:
    entry: dict[str, Any] = {"param": param}
    for attribute in INDEX_ENTRY_ATTRIBUTES:
        found = getattr(value, attribute)
        if found is not None:
            entry[attribute] = found
    return entry


def _sort_key(resource_type: str, param: str, values: list[IndexValue]) -> dict[str, Any] | None:
    definition = get_param(resource_type, param)
    if definition is None or definition.type not in SORT_ATTRIBUTES:
        return None
    ascending, descending = SORT_ATTRIBUTES[definition.type]
    lows = [found for found in (getattr(v, ascending) for v in values) if found is not None]
    highs = [found for found in (getattr(v, descending) for v in values) if found is not None]
    return {"has": True, "asc": min(lows), "desc": max(highs)} if lows and highs else None


def search_fields(
    resource_type: str, resource: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """``(_idx entries, _sort keys)`` of a stored resource; a deletion marker has neither."""
    if resource is None:
        return [], {}
    index = extract_index(resource_type, resource)
    entries = [_entry(param, value) for param, values in index.items() for value in values]
    # _id and _lastUpdated sort on the document's own indexed fields, so they need no sort key
    sortable = (
        (param, _sort_key(resource_type, param, values)) for param, values in index.items()
        if param not in NATIVE_SORT_FIELDS
    )
    sort_keys = {param: key for param, key in sortable if key}
    return entries, sort_keys
