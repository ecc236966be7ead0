"""Seeded mutations of valid FHIR JSON: each takes a ``random.Random`` and a resource and returns a damaged copy.

The table :data:`MUTATORS` is what the generative tests draw from; every mutator is deterministic for a given
generator state, so a failing case replays from its seed.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from typing import Any

Json = Any
Mutator = Callable[[random.Random, dict[str, Any]], Json]

# Values of every JSON type, and FHIR-shaped oddities, that a field may be confused with.
ODD_VALUES: tuple[Json, ...] = (
    None, True, False, 0, -1, 1.5, 1e308, 2**63, "", " ", "x", "\u0000", "\ud7ff\ufffe", "😀" * 3, [], [None], {},
    {"x": 1}, [[]], [{}], {"reference": "#"}, {"$ne": None}, "2026-13-45", "T", "urn:uuid:", "NaN",
)
BAD_IDS = ("a b", "../etc", "x" * 65, "é", "%00", "a/b", "", "$x", "_history", "a\u0000b")
BAD_REFERENCES = (
    "Patient/", "#x", "#", "urn:uuid:", "urn:uuid:00000000-0000-0000-0000-000000000000", "Patient/a b",
    "Unknown/1", "http://", "/", "Patient//1", "Patient/1/_history/x", "?", "Patient?name=x", 42, None, {},
)
BAD_PRIMITIVES: tuple[Json, ...] = (
    "not-a-date", "2026-02-30", "13:99", True, -0.0, "", " padded ", {"value": 1}, ["a"], "1e999", None,
)
NAMES = ("unknownElement", "_unknown", "resourceType", "extension", "modifierExtension", "contained", "id", "meta",
         "_id", "fhir_comments", "text", "", "ünïcödé", "$where", "__proto__")


def positions(value: Json, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path (keys and indexes) below ``value``, its own included, depth first."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from positions(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from positions(child, (*path, index))


def at(value: Json, path: tuple[Any, ...]) -> Json:
    for step in path:
        value = value[step]
    return value


def pick_path(rng: random.Random, resource: Json, inner: bool = True) -> tuple[Any, ...]:
    """A random path; with ``inner`` never the root (so there is a parent to change)."""
    candidates = [p for p in positions(resource) if p or not inner]
    return rng.choice(candidates) if candidates else ()


def pick_container(rng: random.Random, resource: Json, kind: type) -> Json:
    containers = [at(resource, p) for p in positions(resource) if isinstance(at(resource, p), kind)]
    return rng.choice(containers) if containers else resource


def replace_value(rng: random.Random, resource: dict[str, Any]) -> Json:
    """Type confusion: one element becomes a value of another JSON type."""
    path = pick_path(rng, resource)
    if path:
        at(resource, path[:-1])[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return resource


def delete_element(rng: random.Random, resource: dict[str, Any]) -> Json:
    path = pick_path(rng, resource)
    if path:
        del at(resource, path[:-1])[path[-1]]
    return resource


def duplicate_element(rng: random.Random, resource: dict[str, Any]) -> Json:
    """An element repeated: a list item twice, or a single value turned into a list of two."""
    path = pick_path(rng, resource)
    if path:
        parent, key = at(resource, path[:-1]), path[-1]
        value = parent[key]
        parent[key] = [*value, *value] if isinstance(value, list) else [value, copy.deepcopy(value)]
    return resource


def add_unknown_element(rng: random.Random, resource: dict[str, Any]) -> Json:
    target = pick_container(rng, resource, dict)
    target[rng.choice(NAMES)] = copy.deepcopy(rng.choice(ODD_VALUES))
    return resource


def nest_deeply(rng: random.Random, resource: dict[str, Any]) -> Json:
    target = pick_container(rng, resource, dict)
    nested: Json = "bottom"
    for level in range(rng.choice((10, 30, 80))):
        nested = {"extension": [{"url": f"http://x/{level}", "extension": [nested]}]} if level % 2 else [nested]
    target[rng.choice(("extension", "unknownElement", "contained"))] = nested
    return resource


def huge_string(rng: random.Random, resource: dict[str, Any]) -> Json:
    path = pick_path(rng, resource)
    text = rng.choice(("x", "é", "😀", "\u0000", "<div>")) * rng.choice((5_000, 60_000, 300_000))
    if path:
        at(resource, path[:-1])[path[-1]] = text
    return resource


def odd_unicode(rng: random.Random, resource: dict[str, Any]) -> Json:
    """Strings with NUL, control characters, right-to-left marks, non-characters."""
    strings = [p for p in positions(resource) if p and isinstance(at(resource, p), str)]
    for path in rng.sample(strings, min(len(strings), 3)):
        at(resource, path[:-1])[path[-1]] += rng.choice(("\u0000", "\u202e", "\x07", "\uffff", "\U0010ffff", "\r\n"))
    return resource


def wrong_resource_type(rng: random.Random, resource: dict[str, Any]) -> Json:
    resource["resourceType"] = rng.choice(("Patient", "Bundle", "NotAType", "patient", "", None, 7, ["Patient"]))
    return resource


def bad_id(rng: random.Random, resource: dict[str, Any]) -> Json:
    resource["id"] = rng.choice(BAD_IDS)
    return resource


def bad_reference(rng: random.Random, resource: dict[str, Any]) -> Json:
    """A reference somewhere (an existing one, or a new ``subject``) pointing nowhere sensible."""
    references = [p for p in positions(resource) if p and p[-1] == "reference"]
    if references:
        path = rng.choice(references)
        at(resource, path[:-1])[path[-1]] = rng.choice(BAD_REFERENCES)
    else:
        resource["subject"] = {"reference": rng.choice(BAD_REFERENCES)}
    return resource


def extensions_of(resource: dict[str, Any]) -> list[Any]:
    """The resource's ``extension`` list, made one if an earlier mutation turned it into something else."""
    if not isinstance(resource.get("extension"), list):
        resource["extension"] = []
    return resource["extension"]


def bad_primitive_extension(rng: random.Random, resource: dict[str, Any]) -> Json:
    """Extensions and ``_element`` forms with the wrong shapes."""
    choice = rng.randrange(4)
    if choice == 0:
        extensions_of(resource).append({"url": "http://x", "valueDateTime": rng.choice(BAD_PRIMITIVES)})
    elif choice == 1:
        resource["_id"] = rng.choice(({"extension": [{"url": 5}]}, [], "x", {"id": {"nested": 1}}))
    elif choice == 2:
        extensions_of(resource).append(rng.choice(({}, {"url": None}, {"valueString": "no url"},
                                                                 {"url": "http://x", "valueString": "a",
                                                                  "valueInteger": 1}, "string", [])))
    else:
        keys = [key for key in resource if not key.startswith("_") and key != "resourceType"]
        if keys:
            resource["_" + rng.choice(keys)] = rng.choice(({"extension": [{"url": "http://x", "valueCode": 1}]},
                                                           [None, {"id": 3}], 7, "x", None))
    return resource


def odd_contained(rng: random.Random, resource: dict[str, Any]) -> Json:
    """Contained resources in odd places: nested, without resourceType, inside an element, self-referencing."""
    inner = {"resourceType": "Patient", "id": "c1", "contained": [{"resourceType": "Patient", "id": "c2"}]}
    choice = rng.randrange(4)
    if choice == 0:
        resource["contained"] = [inner, {"id": "no-type"}, "text", {"resourceType": "Bundle", "id": "c1"}]
    elif choice == 1:
        pick_container(rng, resource, dict)["contained"] = [inner]
    elif choice == 2:
        resource["contained"] = {"resourceType": "Patient"}
    else:
        resource["contained"] = [{"resourceType": resource.get("resourceType"), "id": "self",
                                  "subject": {"reference": "#self"}}]
    return resource


MUTATORS: tuple[Mutator, ...] = (
    replace_value, delete_element, duplicate_element, add_unknown_element, nest_deeply, huge_string, odd_unicode,
    wrong_resource_type, bad_id, bad_reference, bad_primitive_extension, odd_contained,
)


def mutate(rng: random.Random, resource: dict[str, Any], rounds: int = 1) -> Json:
    """A damaged copy of ``resource``: ``rounds`` mutations drawn from :data:`MUTATORS`."""
    damaged: Json = copy.deepcopy(resource)
    for _ in range(rounds):
        if not isinstance(damaged, dict):
            break
        damaged = rng.choice(MUTATORS)(rng, damaged)
    return damaged


def encode(rng: random.Random, value: Json) -> bytes:
    """JSON bytes of ``value``, now and then damaged at the byte level: truncated, a duplicate key, bad UTF-8,
    a BOM, trailing garbage. (``json`` escapes lone surrogates, so those reach the server as written.)"""
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode("utf-8", errors="surrogatepass")
    damage = rng.randrange(12)
    if damage == 0 and len(text) > 2:
        return text[: rng.randrange(1, len(text))]
    if damage == 1 and text.startswith(b"{"):
        return b'{"resourceType": "Patient", ' + text[1:]
    if damage == 2:
        return text + rng.choice((b"\xff\xfe", b"]", b" garbage", b"\x00"))
    if damage == 3:
        return b"\xef\xbb\xbf" + text
    return text
