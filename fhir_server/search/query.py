"""The backend-neutral search model.

``parse_search`` turns a query string into a :class:`SearchQuery`; each store translates that one model
(SQL for the embedded store, a Mongo filter for MongoDB). Values from clients only ever become data in this
model, never query syntax.

Semantics: criteria are ANDed; the values of one criterion are ORed (``code=a,b``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Literal

from fhir_server.errors import FhirError, bad_request, not_supported
from fhir_server.search.index import date_range, normalize_text, parse_reference
from fhir_server.search.parameters import ParamType, SearchParamDef, get_param, params_for


@dataclass(frozen=True)
class TokenValue:
    """``[system]|[code]``. ``system=None``: any system; ``system=""``: no system (``|code``);
    ``code=None``: any code in ``system`` (``system|``)."""

    system: str | None
    code: str | None


@dataclass(frozen=True)
class StringValue:
    value: str  # already normalised (casefolded, accents stripped) unless the modifier is ``exact``


@dataclass(frozen=True)
class ReferenceValue:
    """``Patient/123``, ``123`` (type from the parameter's single target or ``:Type`` modifier), or an
    absolute URL / canonical (``url`` set, ``resource_type``/``id`` None)."""

    resource_type: str | None
    id: str | None
    url: str | None = None


@dataclass(frozen=True)
class DateValue:
    """A prefixed date: the search value denotes the range ``[low, high)`` in UTC ISO-8601 instants."""

    prefix: Literal["eq", "ne", "lt", "le", "gt", "ge", "sa", "eb", "ap"]
    low: str
    high: str


@dataclass(frozen=True)
class UriValue:
    """A uri parameter's value, compared exactly."""

    value: str


SearchValue = TokenValue | StringValue | ReferenceValue | DateValue | UriValue


@dataclass(frozen=True)
class Criterion:
    """One ``name[:modifier]=v1,v2`` of the query string."""

    name: str  # search parameter code, e.g. "subject", "_id", "_lastUpdated"
    type: ParamType
    values: tuple[SearchValue, ...]
    modifier: str | None = None  # exact, contains, missing, not, text, or a resource type for references
    missing: bool | None = None  # set for ``:missing=true|false``


@dataclass(frozen=True)
class SortKey:
    name: str
    type: ParamType
    descending: bool = False


@dataclass(frozen=True)
class Include:
    """``_include=Source:param[:Target]`` or ``_revinclude=Source:param[:Target]``."""

    source_type: str
    param: str
    target_type: str | None = None
    iterate: bool = False


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = 20
    offset: int = 0
    total: Literal["none", "estimate", "accurate"] = "accurate"
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    summary: str | None = None  # _summary
    elements: list[str] = field(default_factory=list)  # _elements
    # Parameters the server does not know, kept so the searchset can name them in an OperationOutcome.
    ignored: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SearchLimits:
    """What one search may ask for (each a 400 beyond, naming the limit), from the settings (``FHIR_MAX_SEARCH_*``,
    ``FHIR_MAX_SORT_KEYS``). Each bounds work a short query string could otherwise make enormous: every value is a
    condition for the store to evaluate, every sort key a subquery per candidate row, and an offset past the
    stores' 64-bit integers cannot even be asked."""

    max_values: int = 100  # values of all criteria (OR values and repeated parameters) and includes, together
    max_sort_keys: int = 5
    max_value_length: int = 1024  # characters of one value
    max_offset: int = 1_000_000


# ---------------------------------------------------------------------------------------------------------------
# Parsing

DATE_PREFIXES = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "sa", "eb", "ap"})
TOTAL_MODES = frozenset({"none", "estimate", "accurate"})
SUMMARY_MODES = frozenset({"true", "false", "text", "data", "count"})
# Parameters that change only the presentation, which the API layer handles itself.
PRESENTATION_PARAMS = frozenset({"_format", "_pretty"})
# Modifiers each parameter type accepts (a reference also accepts a resource type: ``subject:Patient``).
MODIFIERS: dict[str, frozenset[str]] = {
    "token": frozenset({"missing", "not", "text"}),
    "string": frozenset({"missing", "exact", "contains"}),
    "reference": frozenset({"missing", "identifier"}),
    "date": frozenset({"missing"}),
    "uri": frozenset({"missing"}),
}
_RESOURCE_TYPE_RE = re.compile(r"^[A-Z][A-Za-z]+$")
_ESCAPABLE = "\\,$|"


def split_unescaped(text: str, separator: str) -> list[str]:
    """Split on ``separator`` unless it is escaped with a backslash (escapes are kept for the next split)."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            current.append(ch)
            current.append(next(chars, ""))
        elif ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    """Drop the backslash of ``\\,`` ``\\|`` ``\\$`` ``\\\\``."""
    if "\\" not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append(nxt if nxt in _ESCAPABLE else ch + nxt)
        else:
            out.append(ch)
    return "".join(out)


def _invalid(name: str, message: str) -> FhirError:
    return bad_request(f"Search parameter '{name}': {message}")


def _token(raw: str, definition: SearchParamDef, modifier: str | None) -> TokenValue | StringValue:
    if modifier == "text":
        return StringValue(normalize_text(unescape(raw)))
    parts = split_unescaped(raw, "|")
    if len(parts) == 1:
        return TokenValue(None, unescape(parts[0]))
    if len(parts) > 2:
        raise _invalid(definition.name, f"a token is [system]|[code], got '{raw}'")
    system, code = (unescape(part) for part in parts)
    return TokenValue(system, code or None)


def _string(raw: str, definition: SearchParamDef, modifier: str | None) -> StringValue:
    text = unescape(raw)
    return StringValue(text if modifier == "exact" else normalize_text(text))


def _reference(raw: str, definition: SearchParamDef, modifier: str | None) -> ReferenceValue | TokenValue:
    if modifier == "identifier":
        return _token(raw, definition, None)
    text = unescape(raw)
    if "://" in text or text.startswith("urn:"):
        return ReferenceValue(None, None, url=text)
    if "/" in text:
        ref_type, ref_id = parse_reference(text)
        if ref_type is None:
            raise _invalid(definition.name, f"'{raw}' is neither Type/id, an id nor an absolute URL")
        return ReferenceValue(ref_type, ref_id)
    if modifier is not None:  # a resource type modifier: subject:Patient=123
        return ReferenceValue(modifier, text)
    return ReferenceValue(definition.targets[0] if len(definition.targets) == 1 else None, text)


def _date(raw: str, definition: SearchParamDef, modifier: str | None) -> DateValue:
    prefix, text = "eq", raw
    if raw[:2].isalpha():
        prefix, text = raw[:2], raw[2:]
        if prefix not in DATE_PREFIXES:
            known = ", ".join(sorted(DATE_PREFIXES))
            raise _invalid(definition.name, f"unknown date prefix '{prefix}' (use one of {known})")
    bounds = date_range(text)
    if bounds is None:
        raise _invalid(definition.name, f"'{raw}' is not a date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)")
    return DateValue(prefix, *bounds)  # type: ignore[arg-type]


def _uri(raw: str, definition: SearchParamDef, modifier: str | None) -> UriValue:
    return UriValue(unescape(raw))


ValueParser = Callable[[str, SearchParamDef, "str | None"], SearchValue]
VALUE_PARSERS: dict[str, ValueParser] = {
    "token": _token,
    "string": _string,
    "reference": _reference,
    "date": _date,
    "uri": _uri,
}


def _check_modifier(definition: SearchParamDef, modifier: str | None) -> None:
    if modifier is None or modifier in MODIFIERS.get(definition.type, ()):
        return
    if definition.type == "reference" and _RESOURCE_TYPE_RE.match(modifier):
        return
    raise not_supported(f"Search parameter '{definition.name}' does not support the modifier ':{modifier}'")


def _criterion(definition: SearchParamDef, modifier: str | None, raw_value: str, limits: SearchLimits) -> Criterion:
    _check_modifier(definition, modifier)
    if modifier == "missing":
        if raw_value not in ("true", "false"):
            raise _invalid(f"{definition.name}:missing", f"expects true or false, got '{raw_value}'")
        return Criterion(definition.name, definition.type, (), modifier, missing=raw_value == "true")
    parse_value = VALUE_PARSERS[definition.type]
    raw_values = [raw for raw in split_unescaped(raw_value, ",") if raw]
    if len(raw_values) > limits.max_values:
        raise _too_many_values(limits)
    for raw in raw_values:
        if len(raw) > limits.max_value_length:
            raise _invalid(definition.name, f"a value of {len(raw)} characters exceeds the limit of "
                                            f"{limits.max_value_length}")
    return Criterion(definition.name, definition.type, tuple(parse_value(raw, definition, modifier) for raw in raw_values),
                     modifier)


def _too_many_values(limits: SearchLimits) -> FhirError:
    return bad_request(f"a search may name at most {limits.max_values} values (OR values, repeated parameters and "
                       "includes together)", code="too-costly")


def _non_negative_int(name: str, raw: str, maximum: int | None = None) -> int:
    if not raw.isdigit():
        raise _invalid(name, f"expects a non-negative integer, got '{raw}'")
    if maximum is not None and (len(raw) > len(str(maximum)) or int(raw) > maximum):
        raise _invalid(name, f"expects at most {maximum}, got '{raw[:40]}'")
    return int(raw)


class _QueryBuilder:
    """Holds the query being built and the unknown parameter names while the pairs are read."""

    def __init__(self, resource_type: str, default_count: int, max_count: int, limits: SearchLimits) -> None:
        self.query = SearchQuery(resource_type=resource_type, count=min(default_count, max_count))
        self.max_count = max_count
        self.limits = limits
        self.unknown: list[str] = []

    def count(self, name: str, raw: str) -> None:
        self.query.count = min(_non_negative_int(name, raw[:40]), self.max_count)

    def offset(self, name: str, raw: str) -> None:
        self.query.offset = _non_negative_int(name, raw, self.limits.max_offset)

    def values_named(self) -> int:
        """What counts against ``max_values``: every value of every criterion (a ``:missing`` one counts once)
        and every include."""
        criteria = sum(max(1, len(criterion.values)) for criterion in self.query.criteria)
        return criteria + len(self.query.includes) + len(self.query.revincludes)

    def total(self, name: str, raw: str) -> None:
        if raw not in TOTAL_MODES:
            raise _invalid(name, f"expects none, estimate or accurate, got '{raw}'")
        self.query.total = raw  # type: ignore[assignment]

    def summary(self, name: str, raw: str) -> None:
        if raw not in SUMMARY_MODES:
            raise _invalid(name, f"expects one of {', '.join(sorted(SUMMARY_MODES))}, got '{raw}'")
        self.query.summary = raw
        if raw == "count":
            self.query.count = 0
            self.query.total = "accurate"

    def elements(self, name: str, raw: str) -> None:
        self.query.elements.extend(e.strip() for e in raw.split(",") if e.strip())

    def sort(self, name: str, raw: str) -> None:
        """Keys in order of precedence: each parameter at most once, at most ``max_sort_keys`` of them (every key
        orders by a subquery per candidate, so a hundred keys held the server for seconds)."""
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            if len(self.query.sort) >= self.limits.max_sort_keys:
                raise _invalid(name, f"at most {self.limits.max_sort_keys} sort keys are allowed")
            descending = item.startswith("-")
            param = get_param(self.query.resource_type, item.lstrip("-"))
            if param is None:
                raise _invalid(name, f"cannot sort by unknown parameter '{item.lstrip('-')[:100]}'")
            if any(key.name == param.name for key in self.query.sort):
                raise _invalid(name, f"'{param.name}' is named more than once")
            self.query.sort.append(SortKey(param.name, param.type, descending))

    def include(self, name: str, raw: str, modifier: str | None) -> None:
        if modifier not in (None, "iterate", "recurse"):
            raise not_supported(f"'{name}' does not support the modifier ':{modifier}'")
        parts = raw.split(":")
        if len(parts) not in (2, 3) or not _RESOURCE_TYPE_RE.match(parts[0]):
            raise _invalid(name, f"expects SourceType:parameter[:TargetType], got '{raw}'")
        definition = get_param(parts[0], parts[1])
        if definition is None or definition.type != "reference":
            self.unknown.append(f"{name}={raw}")
            return
        target = parts[2] if len(parts) == 3 else None
        if target is not None and not _RESOURCE_TYPE_RE.match(target):
            raise _invalid(name, f"'{target}' is not a resource type")
        found = Include(parts[0], parts[1], target, iterate=modifier is not None)
        (self.query.includes if name == "_include" else self.query.revincludes).append(found)

    def criterion(self, key: str, name: str, modifier: str | None, raw: str) -> None:
        definition = params_for(self.query.resource_type).get(name)
        if definition is None or definition.type not in VALUE_PARSERS:
            self.unknown.append(key)
            return
        found = _criterion(definition, modifier, raw, self.limits)
        if found.values or found.missing is not None:
            self.query.criteria.append(found)


CONTROL_PARAMS: dict[str, Callable[[_QueryBuilder, str, str], None]] = {
    "_count": _QueryBuilder.count,
    "_offset": _QueryBuilder.offset,
    "_total": _QueryBuilder.total,
    "_summary": _QueryBuilder.summary,
    "_elements": _QueryBuilder.elements,
    "_sort": _QueryBuilder.sort,
}


def parse_search(
    resource_type: str,
    params: list[tuple[str, str]],
    *,
    default_count: int,
    max_count: int,
    strict: bool,
    limits: SearchLimits = SearchLimits(),
) -> SearchQuery:
    """Query-string pairs -> :class:`SearchQuery`.

    Unknown parameters are named in ``query.ignored``, or with ``strict`` (``Prefer: handling=strict``)
    make a 400 naming every one. A malformed value is always a 400 naming its parameter, and so is a search
    beyond ``limits``."""
    if len(params) > limits.max_values + len(CONTROL_PARAMS) + len(PRESENTATION_PARAMS):
        raise _too_many_values(limits)
    builder = _QueryBuilder(resource_type, default_count, max_count, limits)
    for key, raw in params:
        name, _, modifier = key.partition(":")
        if name in PRESENTATION_PARAMS or raw == "":
            continue
        if name in CONTROL_PARAMS and not modifier:
            CONTROL_PARAMS[name](builder, name, raw)
        elif name in ("_include", "_revinclude"):
            builder.include(name, raw, modifier or None)
        else:
            builder.criterion(key, name, modifier or None, raw)
        if builder.values_named() > limits.max_values:
            raise _too_many_values(limits)
    if builder.unknown and strict:
        raise bad_request(
            f"Unknown or unsupported search parameters for {resource_type}: {', '.join(map(repr, builder.unknown))}",
            code="not-supported",
        )
    builder.query.ignored = builder.unknown
    return builder.query
