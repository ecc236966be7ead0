"""Resource -> search index values, shared by every store.

Each store persists the output of :func:`extract_index` next to the resource (rows in SQLite, an embedded
field in MongoDB) and answers a :class:`~fhir_server.search.query.SearchQuery` from it.

This runs on every write, so the parameter paths are compiled once per resource type and the walk is plain
dict/list traversal. Dates become fixed-width UTC instants (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) so that both
stores can compare them as strings.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from fhir_server.search.parameters import SearchParamDef, params_for


class IndexValue(NamedTuple):
    """One indexed value of one search parameter (a tuple: built, hashed and compared in C, thousands per write).

    token:     ``system`` (may be None) and ``code``; ``text`` holds a display/text for ``:text`` (normalised).
    string:    ``value`` normalised (casefold, accents stripped); ``exact`` the original text.
    reference: ``value`` "Type/id" for local references (``ref_type`` / ``ref_id`` split), or the absolute URL
               (also split when its tail is ``Type/id``); a Reference carrying only an ``identifier`` gives
               ``system`` / ``code`` (for ``:identifier``).
    date:      ``low`` / ``high``: UTC ISO instants bounding the value's period (inclusive low, exclusive high),
               always in the fixed-width form ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
    uri:       ``value``.
    """

    system: str | None = None
    code: str | None = None
    text: str | None = None
    value: str | None = None
    exact: str | None = None
    ref_type: str | None = None
    ref_id: str | None = None
    low: str | None = None
    high: str | None = None


# ---------------------------------------------------------------------------------------------------------------
# Normalisation and dates (also used by the query parser, so search values and index values agree)

def normalize_text(text: str) -> str:
    """Accent- and case-insensitive form of a string: NFKD, combining marks dropped, casefolded."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


MIN_INSTANT = "0001-01-01T00:00:00.000000Z"
MAX_INSTANT = "9999-12-31T23:59:59.999999Z"

_DATE_RE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def format_instant(moment: datetime) -> str:
    """Fixed-width UTC form that sorts as text in time order. ``isoformat`` rather than ``strftime``: it always
    writes four year digits (``%Y`` gives "1" for year 1 on glibc, breaking the text order) and is faster."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _add_months(moment: datetime, months: int) -> datetime | None:
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    if year > 9999:
        return None
    return moment.replace(year=year, month=month_index % 12 + 1)


def date_range(text: str) -> tuple[str, str] | None:
    """``[low, high)`` of a FHIR date/dateTime/instant at its own precision, or None when it is not one.

    "2024" -> [2024-01-01T00:00:00Z, 2025-01-01T00:00:00Z); a time without zone is taken as UTC."""
    match = _DATE_RE.match(text)
    if match is None:
        return None
    parts = match.groupdict()
    try:
        zone = parts["zone"]
        tz = timezone.utc
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        fraction = (parts["fraction"] or "")[:6]
        low = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction.ljust(6, "0")) if fraction else 0,
            tzinfo=tz,
        )
    except ValueError:
        return None
    if parts["fraction"]:
        high: datetime | None = low + timedelta(microseconds=10 ** (6 - len(fraction)))
    elif parts["second"]:
        high = low + timedelta(seconds=1)
    elif parts["minute"]:
        high = low + timedelta(minutes=1)
    elif parts["day"]:
        high = low + timedelta(days=1)
    elif parts["month"]:
        high = _add_months(low, 1)
    else:
        high = _add_months(low, 12)
    return format_instant(low), format_instant(high) if high is not None else MAX_INSTANT


# ---------------------------------------------------------------------------------------------------------------
# Path walking

_STEP_RE = re.compile(r"([^.\[]+)(?:\[([^\]]*)\])?")
Step = tuple[str, str | None]  # (element name, extension url filter)


def compile_path(path: str) -> tuple[Step, ...]:
    """``Type.a.extension[url].b`` -> steps after the resource type."""
    steps = [(m.group(1), m.group(2)) for m in _STEP_RE.finditer(path)]
    return tuple(steps[1:])


def walk(node: Any, steps: tuple[Step, ...]) -> Iterator[Any]:
    """Every value at ``steps`` below ``node``, arrays flattened, in document order. One layer of the tree per
    step rather than one generator per element: this runs for every path of every write."""
    layer = [node]
    for name, url_filter in steps:
        children = []
        for item in _dicts(layer):
            child = item.get(name)
            if child is None:
                continue
            if url_filter is not None:
                child = [ext for ext in (child if isinstance(child, list) else [child]) if ext.get("url") == url_filter]
            children.append(child)
        layer = children
    for value in layer:
        if isinstance(value, list):
            yield from value
        elif value is not None:
            yield value


def _dicts(layer: list[Any]) -> Iterator[dict[str, Any]]:
    """The objects of ``layer``, arrays flattened at any depth, in order (anything else has no children)."""
    for item in layer:
        if isinstance(item, dict):
            yield item
        elif isinstance(item, list):
            yield from _dicts(item)


# ---------------------------------------------------------------------------------------------------------------
# Element -> index values, one converter per parameter type

CONTACT_POINT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
HUMAN_NAME_PARTS = ("family", "given", "text", "prefix", "suffix")
ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
_LOCAL_REF_RE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
_ABSOLUTE_REF_TAIL_RE = re.compile(r"/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


def _normalized_or_none(text: Any) -> str | None:
    return normalize_text(text) if isinstance(text, str) and text else None


def _coding_value(coding: dict[str, Any], text: str | None = None) -> IndexValue:
    return IndexValue(
        system=coding.get("system"),
        code=coding.get("code"),
        text=_normalized_or_none(coding.get("display")) or text,
    )


def token_values(element: Any, definition: SearchParamDef) -> Iterator[IndexValue]:
    """code / boolean / string / Coding / CodeableConcept / Identifier / ContactPoint."""
    if isinstance(element, bool):
        yield IndexValue(code="true" if element else "false")
    elif isinstance(element, str):
        yield IndexValue(code=element)
    elif isinstance(element, dict):
        if "coding" in element or ("text" in element and "code" not in element and "value" not in element):
            text = _normalized_or_none(element.get("text"))
            for coding in element.get("coding") or ():
                yield _coding_value(coding, text)
            if not element.get("coding") and text:
                yield IndexValue(text=text)
        elif "code" in element:
            yield _coding_value(element)
        elif "value" in element:
            system = element.get("system")
            if system in CONTACT_POINT_SYSTEMS:
                system = None
            type_text = _normalized_or_none((element.get("type") or {}).get("text"))
            yield IndexValue(system=system, code=element.get("value"), text=type_text)


def _string_value(text: Any) -> IndexValue | None:
    if not isinstance(text, str) or not text:
        return None
    return IndexValue(value=normalize_text(text), exact=text)


def string_values(element: Any, definition: SearchParamDef) -> Iterator[IndexValue]:
    """string, or every part of a HumanName / Address."""
    if isinstance(element, str):
        parts: Iterable[Any] = (element,)
    elif isinstance(element, dict):
        names = HUMAN_NAME_PARTS if ("family" in element or "given" in element) else ADDRESS_PARTS
        parts = (part for name in names for part in _as_list(element.get(name)))
    else:
        return
    for part in parts:
        value = _string_value(part)
        if value is not None:
            yield value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse_reference(reference: str) -> tuple[str | None, str | None]:
    """(type, id) of ``Type/id`` or of an absolute URL ending in ``Type/id``; (None, None) otherwise."""
    match = _LOCAL_REF_RE.match(reference)
    if match is None and "://" in reference:
        match = _ABSOLUTE_REF_TAIL_RE.search(reference)
    if match is None:
        return None, None
    return match.group(1), match.group(2)


def reference_values(element: Any, definition: SearchParamDef) -> Iterator[IndexValue]:
    """Reference (relative, absolute, ``urn:``, or identifier-only) or canonical."""
    if isinstance(element, str):  # canonical / uri
        yield IndexValue(value=element)
        return
    if not isinstance(element, dict):
        return
    reference = element.get("reference")
    if isinstance(reference, str) and reference:
        ref_type, ref_id = parse_reference(reference)
        if ref_type is not None and definition.targets and ref_type not in definition.targets:
            return
        local = ref_type is not None and "://" not in reference
        yield IndexValue(value=f"{ref_type}/{ref_id}" if local else reference, ref_type=ref_type, ref_id=ref_id)
    identifier = element.get("identifier")
    if isinstance(identifier, dict) and identifier.get("value"):
        yield IndexValue(system=identifier.get("system"), code=identifier["value"])


def date_values(element: Any, definition: SearchParamDef) -> Iterator[IndexValue]:
    """date / dateTime / instant at their precision, or a Period (open ends unbounded)."""
    if isinstance(element, str):
        bounds = date_range(element)
        if bounds is not None:
            yield IndexValue(low=bounds[0], high=bounds[1])
    elif isinstance(element, dict) and ("start" in element or "end" in element):
        start = date_range(element["start"]) if isinstance(element.get("start"), str) else None
        end = date_range(element["end"]) if isinstance(element.get("end"), str) else None
        yield IndexValue(low=start[0] if start else MIN_INSTANT, high=end[1] if end else MAX_INSTANT)


def uri_values(element: Any, definition: SearchParamDef) -> Iterator[IndexValue]:
    if isinstance(element, str) and element:
        yield IndexValue(value=element)


Converter = Callable[[Any, SearchParamDef], Iterator[IndexValue]]
CONVERTERS: dict[str, Converter] = {
    "token": token_values,
    "string": string_values,
    "reference": reference_values,
    "date": date_values,
    "uri": uri_values,
}


Walker = Callable[[dict[str, Any]], Iterable[Any]]
# One parameter ready to extract: its definition, its paths as steps, the converter of its type, and a walker per
# path (what :func:`walk` yields for it).
CompiledParam = tuple[SearchParamDef, tuple[tuple[Step, ...], ...], Converter, tuple[Walker, ...]]


def walker(steps: tuple[Step, ...]) -> Walker:
    """:func:`walk` for these steps; for one plain step (``Patient.gender``, ``Task.owner``: most paths) or two
    through an object (``Resource.meta.tag``) direct lookups that yield the same values without the layers and
    generators the general walk needs."""
    if len(steps) == 1 and steps[0][1] is None:
        name = steps[0][0]

        def element(node: dict[str, Any]) -> Iterable[Any]:
            child = node.get(name)
            if child is None:
                return ()
            return child if isinstance(child, list) else (child,)

        return element
    if len(steps) == 2 and steps[0][1] is None and steps[1][1] is None:
        first, second = steps[0][0], steps[1][0]

        def grandchild(node: dict[str, Any]) -> Iterable[Any]:
            child = node.get(first)
            if child is None:
                return ()
            if not isinstance(child, dict):  # an array (or a value without children): the general walk
                return walk(node, steps)
            value = child.get(second)
            if value is None:
                return ()
            return value if isinstance(value, list) else (value,)

        return grandchild
    return lambda node: walk(node, steps)


@lru_cache(maxsize=None)
def _compiled(resource_type: str) -> dict[str, CompiledParam]:
    compiled = {}
    for definition in params_for(resource_type).values():
        if definition.type in CONVERTERS:
            paths = tuple(compile_path(path) for path in definition.paths)
            compiled[definition.name] = (definition, paths, CONVERTERS[definition.type],
                                         tuple(walker(steps) for steps in paths))
    return compiled


@lru_cache(maxsize=None)
def _by_first_element(resource_type: str) -> tuple[tuple[frozenset[str] | None, str, CompiledParam], ...]:
    """Each parameter with the top-level elements its paths start from (None: a path of the resource itself).

    A resource has a handful of the thirty-odd elements its type's parameters look at: a parameter none of whose
    first elements is present has no value, and :func:`extract_index` skips it without walking its paths
    (this runs on every write)."""
    ordered = []
    for name, compiled in _compiled(resource_type).items():
        firsts = {steps[0][0] for steps in compiled[1] if steps}
        always = any(not steps for steps in compiled[1])
        ordered.append((None if always else frozenset(firsts), name, compiled))
    return tuple(ordered)


def _values_of(resource: dict[str, Any], compiled: CompiledParam) -> list[IndexValue]:
    """The parameter's distinct values in document order. A dict, not a list scan, drops the repeats: with a list,
    a resource repeating an element n times cost n² comparisons (20,000 names: minutes on the event loop)."""
    definition, _, convert, walkers = compiled
    values: dict[IndexValue, None] = {}
    for walk_path in walkers:
        for element in walk_path(resource):
            for value in convert(element, definition):
                values[value] = None
    return list(values)


def extract_index(resource_type: str, resource: dict[str, Any]) -> dict[str, list[IndexValue]]:
    """Search parameter name -> its values in ``resource`` (parameters with no value are absent)."""
    index: dict[str, list[IndexValue]] = {}
    present = resource.keys()
    for firsts, name, compiled in _by_first_element(resource_type):
        if firsts is not None and firsts.isdisjoint(present):
            continue
        values = _values_of(resource, compiled)
        if values:
            index[name] = values
    return index


def parameter_values(resource_type: str, resource: dict[str, Any], name: str) -> list[IndexValue]:
    """The values of one parameter, as :func:`extract_index` gives them, without walking every other parameter's
    paths: ``_include`` reads a single reference parameter of each match."""
    compiled = _compiled(resource_type).get(name)
    return _values_of(resource, compiled) if compiled is not None else []
