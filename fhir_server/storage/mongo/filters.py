"""SearchQuery -> MongoDB filter and sort: the one place search becomes Mongo query syntax.

The filter runs on the ``resources`` collection (current versions, see :mod:`.documents`). A criterion on a
search parameter becomes an ``$elemMatch`` on the ``_idx`` array restricted to that parameter's entries, so the
compound multikey indexes (type, param, ...) serve it. Values from the client only ever appear as operands of
explicit operators on fields named here (``$eq``, ``$lt``...; regexes are built from ``re.escape``): a value
such as ``{"$ne": null}`` or ``$where`` is compared as the plain string it is.

Semantics mirror the embedded SQLite store: criteria are ANDed, the values of one criterion ORed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fhir_server.errors import not_supported
from fhir_server.search.query import (
    Criterion,
    DateValue,
    ReferenceValue,
    SearchQuery,
    SearchValue,
    SortKey,
    StringValue,
    TokenValue,
    UriValue,
)

Filter = dict[str, Any]
IDX = "_idx"
SORT_KEYS = "_sort"

# Parameters every resource has that are real fields of the stored document: sorting on them uses its indexes.
NATIVE_SORT_FIELDS = {"_id": "resource_id", "_lastUpdated": "last_updated"}
# After the requested keys: oldest first, then by id (the default order, and a stable tie-breaker for paging).
TIE_BREAKERS: list[tuple[str, int]] = [("last_updated", 1), ("resource_id", 1)]


def _eq(value: Any) -> Filter:
    return {"$eq": value}


def _prefix(field: str) -> Callable[[StringValue], Filter]:
    return lambda value: {field: {"$regex": "^" + re.escape(value.value)}}


def _token(value: TokenValue) -> Filter:
    """``[system]|[code]``: an absent system means any, an empty one means "no system"."""
    if value.system is None:
        return {"code": _eq(value.code)}
    if value.code is None:
        return {"system": _eq(value.system)}
    if value.system == "":
        return {"system": _eq(None), "code": _eq(value.code)}  # system $eq null: entries with no system
    return {"system": _eq(value.system), "code": _eq(value.code)}


def _reference(value: ReferenceValue) -> Filter:
    """``Type/id``, a bare ``id`` (any type), or an absolute URL / canonical."""
    if value.url is not None:
        return {"value": _eq(value.url)}
    condition: Filter = {"ref_id": _eq(value.id)}
    if value.resource_type is not None:
        condition["ref_type"] = _eq(value.resource_type)
    return condition


# A search value denotes [low, high); an indexed value covers [low, high) too (open ends are stored as the
# minimum / maximum instant). FHIR's prefix semantics, simplified where one branch implies the other (le: starts
# before, or is contained; ge likewise), exactly as the SQLite store does:
DATE_PREFIXES: dict[str, Callable[[str, str], Filter]] = {
    "eq": lambda low, high: {"low": {"$gte": low}, "high": {"$lte": high}},
    "ne": lambda low, high: {"$or": [{"low": {"$lt": low}}, {"high": {"$gt": high}}]},
    "lt": lambda low, high: {"low": {"$lt": low}},
    "le": lambda low, high: {"$or": [{"low": {"$lt": low}}, {"high": {"$lte": high}}]},
    "gt": lambda low, high: {"high": {"$gt": high}},
    "ge": lambda low, high: {"$or": [{"high": {"$gt": high}}, {"low": {"$gte": low}}]},
    "sa": lambda low, high: {"low": {"$gte": high}},
    "eb": lambda low, high: {"high": {"$lte": low}},
    "ap": lambda low, high: {"low": {"$lt": high}, "high": {"$gt": low}},
}


def _date(value: DateValue) -> Filter:
    return DATE_PREFIXES[value.prefix](value.low, value.high)


def _uri(value: UriValue) -> Filter:
    return {"value": _eq(value.value)}


# How one parsed value constrains one index entry. A string value's meaning depends on the modifier
# (``:text`` on a token also arrives as a string value, matched against the coding's display text).
VALUE_CONDITIONS: dict[type, Callable[[Any], Filter]] = {
    TokenValue: _token,
    ReferenceValue: _reference,
    DateValue: _date,
    UriValue: _uri,
}
STRING_CONDITIONS: dict[str | None, Callable[[StringValue], Filter]] = {
    None: _prefix("value"),
    "exact": lambda value: {"exact": _eq(value.value)},
    "contains": lambda value: {"value": {"$regex": re.escape(value.value)}},
    "text": _prefix("text"),
}


def _value_condition(value: SearchValue, modifier: str | None) -> Filter:
    if isinstance(value, StringValue):
        if modifier not in STRING_CONDITIONS:
            raise not_supported(f"the modifier ':{modifier}' is not supported here")
        return STRING_CONDITIONS[modifier](value)
    return VALUE_CONDITIONS[type(value)](value)


def _entry_match(name: str, condition: Filter) -> Filter:
    return {IDX: {"$elemMatch": {"param": _eq(name), **condition}}}


def _criterion_filter(criterion: Criterion) -> Filter:
    if criterion.missing is not None:
        has_entry = {IDX: {"$elemMatch": {"param": _eq(criterion.name)}}}
        return {"$nor": [has_entry]} if criterion.missing else has_entry
    matches = [_entry_match(criterion.name, _value_condition(value, criterion.modifier)) for value in criterion.values]
    if criterion.modifier == "not":
        return {"$nor": matches}
    return matches[0] if len(matches) == 1 else {"$or": matches}


def search_filter(query: SearchQuery) -> Filter:
    """The filter selecting the current, non-deleted resources of ``query``'s type that match it."""
    # A criterion without values constrains nothing (as the parser treats ``name=``).
    clauses = [_criterion_filter(c) for c in query.criteria if c.values or c.missing is not None]
    base: Filter = {"resource_type": _eq(query.resource_type), "deleted": _eq(False)}
    return {**base, "$and": clauses} if clauses else base


def _sort_terms(key: SortKey) -> list[tuple[str, int]]:
    """One ``_sort`` key as MongoDB sort terms, resources without a value last in both directions.

    ``_sort.<param>`` holds ``asc`` (smallest value; a date's start) and ``desc`` (largest; a date's end), see
    :mod:`.indexing`. Descending, a missing value (null) already sorts last; ascending, the ``has`` flag (true
    sorts above null) goes first."""
    if key.name in NATIVE_SORT_FIELDS:
        return [(NATIVE_SORT_FIELDS[key.name], -1 if key.descending else 1)]
    if "." in key.name or key.name.startswith("$"):
        raise not_supported(f"cannot sort by '{key.name}'")
    prefix = f"{SORT_KEYS}.{key.name}"
    if key.descending:
        return [(f"{prefix}.desc", -1)]
    return [(f"{prefix}.has", -1), (f"{prefix}.asc", 1)]


def search_sort(query: SearchQuery) -> list[tuple[str, int]]:
    """``_sort`` keys then the tie-breakers (a field already sorted on is not repeated)."""
    terms = [term for key in query.sort for term in _sort_terms(key)]
    used = {field for field, _ in terms}
    return terms + [(field, direction) for field, direction in TIE_BREAKERS if field not in used]

