"""Which slice an item belongs to: the discriminators of R4 profiling.html (value, pattern, exists, type, profile).

Each discriminator answers per slice: ``True`` (the item meets what the slice sets there), ``False`` (it does not)
or ``None`` (the slice sets nothing at that discriminator's path, so it does not discriminate on it). An item
belongs to the first slice that every discriminator admits and at least one positively matches: a slice
constraining only some of the discriminators matches on those. A discriminator this module cannot evaluate
(``resolve()``, ``extension('url')`` paths) raises :class:`Undecidable`, and the caller leaves that element's
slicing unjudged rather than reject items it cannot place.
"""

from __future__ import annotations

from typing import Any, Callable

from fhir_server.fhir.definitions import StructureIndex, canonical

Conforms = Callable[[Any, str], bool]  # (value, profile url) -> does the value meet that profile?


class Undecidable(Exception):
    """A discriminator path this validator cannot follow."""


def value_constraint(element: dict[str, Any]) -> tuple[str, Any] | None:
    """``("fixed" | "pattern", value)`` of an element, if it carries one."""
    for key, value in element.items():
        if key.startswith("fixed") and len(key) > 5:
            return "fixed", value
        if key.startswith("pattern") and len(key) > 7:
            return "pattern", value
    return None


def contains_pattern(instance: Any, pattern: Any) -> bool:
    """FHIR ``pattern[x]`` semantics: objects by their pattern keys, arrays by containment, primitives by equality."""
    if isinstance(pattern, dict):
        return isinstance(instance, dict) and all(
            key in instance and contains_pattern(instance[key], value) for key, value in pattern.items()
        )
    if isinstance(pattern, list):
        items = instance if isinstance(instance, list) else [instance]
        return all(any(contains_pattern(item, wanted) for item in items) for wanted in pattern)
    return instance == pattern


def typed_values_at(item: Any, path: str) -> list[tuple[Any, str | None]]:
    """The values a simple dotted path reaches, each with its type when the JSON tells it (choice suffix, resource).

    ``value`` reaches ``valueQuantity`` (type Quantity); a resource value is typed by its ``resourceType``.
    """
    if "(" in path:
        raise Undecidable(path)
    current: list[tuple[Any, str | None]] = [(item, None)]
    if path == "$this":
        return [(item, item.get("resourceType") if isinstance(item, dict) else None)]
    for step in path.split("."):
        following: list[tuple[Any, str | None]] = []
        for value, _ in current:
            if not isinstance(value, dict):
                continue
            if step in value:
                found, kind = value[step], None
            else:
                choice = next((key for key in value if key.startswith(step) and key[len(step):len(step) + 1].isupper()),
                              None)
                if choice is None:
                    continue
                found, kind = value[choice], choice[len(step)].lower() + choice[len(step) + 1:]
            for element in found if isinstance(found, list) else [found]:
                resource_type = element.get("resourceType") if isinstance(element, dict) else None
                following.append((element, resource_type or kind))
        current = following
    return current


def values_at(item: Any, path: str) -> list[Any]:
    return [value for value, _ in typed_values_at(item, path)]


def unsliced(element_id: str) -> str:
    return ".".join(segment.split(":", 1)[0] for segment in element_id.split("."))


def slice_element_at(index: StructureIndex, slice_element: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The element of a slice a discriminator path names; through nested slices too (bp's component slices fix
    ``code.coding:SBPCode.code``, reached by the path ``code.coding.code``), preferring one that fixes a value."""
    if path == "$this":
        return slice_element
    base = f"{slice_element['id']}.{path}"
    direct = index.by_id.get(base) or index.by_id.get(base + "[x]")
    if direct is not None and value_constraint(direct) is not None:
        return direct
    key = (slice_element["id"], path)
    if key not in index.discriminator_targets:
        prefix = slice_element["id"] + "."
        wanted = {unsliced(base), unsliced(base) + "[x]"}
        nested = [e for element_id, e in index.by_id.items()
                  if element_id.startswith(prefix) and unsliced(element_id) in wanted]
        index.discriminator_targets[key] = next((e for e in nested if value_constraint(e) is not None), direct)
    return index.discriminator_targets[key]


def discriminator_matches(item: Any, slice_element: dict[str, Any], discriminator: dict[str, Any],
                          index: StructureIndex, conforms: Conforms) -> bool | None:
    """Does the item meet the slice at this discriminator (None: the slice does not constrain it)?"""
    kind = discriminator.get("type")
    path = discriminator.get("path", "$this")
    if "(" in path:
        raise Undecidable(path)  # resolve(), extension('url'), ofType(): not a path of the JSON itself
    target = slice_element_at(index, slice_element, path)
    if kind in ("value", "pattern"):
        constraint = value_constraint(target) if target is not None else None
        if constraint is None and path == "url":
            profiles = [p for t in slice_element.get("type", ()) for p in t.get("profile", ())]
            constraint = ("fixed", canonical(profiles[0])) if profiles else None
        if constraint is None:
            return None
        expected_kind, expected = constraint
        candidates = values_at(item, path)
        if expected_kind == "fixed":
            return any(candidate == expected for candidate in candidates)
        return any(contains_pattern(candidate, expected) for candidate in candidates)
    if target is None:
        return None
    if kind == "exists":
        if target.get("min", 0) >= 1:
            return bool(values_at(item, path))
        if target.get("max") == "0":
            return not values_at(item, path)
        return None
    if kind == "type":
        wanted = {t.get("code") for t in target.get("type", ())}
        if not wanted or wanted & {"Resource", "DomainResource"}:
            return None
        found = [value_type for _, value_type in typed_values_at(item, path)]
        return any(value_type in wanted for value_type in found if value_type is not None)
    if kind == "profile":
        profiles = [p for t in target.get("type", ()) for p in t.get("profile", ())]
        if not profiles:
            return None
        values = values_at(item, path)
        return any(conforms(value, url) for value in values for url in profiles)
    raise Undecidable(str(kind))


def matching_slice(item: Any, slice_elements: list[dict[str, Any]], discriminators: list[dict[str, Any]],
                   index: StructureIndex, conforms: Conforms) -> dict[str, Any] | None:
    """The first slice the item belongs to, or None. Raises :class:`Undecidable`."""
    for element in slice_elements:
        verdicts = [discriminator_matches(item, element, d, index, conforms) for d in discriminators]
        if True in verdicts and False not in verdicts:
            return element
    return None
