"""A resource's search index in the shape the ``resources`` collection stores it.

:func:`fhir_server.search.index.extract_index` gives parameter -> values; MongoDB gets them as one flat
``_idx`` array of entries that name their parameter (so a fixed set of compound multikey indexes serves every
parameter), plus ``_sort``: parameter -> the values it sorts by.
"""

from __future__ import annotations

from typing import Any

from fhir_server.search.index import IndexValue, extract_index
from fhir_server.storage.mongo.documents import INDEX_ENTRY_ATTRIBUTES

# The attribute a value sorts by: a string/uri/reference by its value, a token by its code, a date by its start.
SORT_ATTRIBUTES = ("value", "code", "low")


def _entry(param: str, value: IndexValue) -> dict[str, Any]:
    entry: dict[str, Any] = {"param": param}
    for attribute in INDEX_ENTRY_ATTRIBUTES:
        found = getattr(value, attribute)
        if found is not None:
            entry[attribute] = found
    return entry


def _sort_value(value: IndexValue) -> str | None:
    return next((found for found in (getattr(value, a) for a in SORT_ATTRIBUTES) if found is not None), None)


def search_fields(resource_type: str, resource: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """``(_idx entries, _sort keys)`` of a stored resource; a deletion marker has neither."""
    if resource is None:
        return [], {}
    index = extract_index(resource_type, resource)
    entries = [_entry(param, value) for param, values in index.items() for value in values]
    sort_keys = {
        param: sorted(found for found in map(_sort_value, values) if found is not None) for param, values in index.items()
    }
    return entries, {param: keys for param, keys in sort_keys.items() if keys}
