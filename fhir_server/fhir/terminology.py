"""CodeSystems and ValueSets: the R4 core required-binding expansions plus the project's own terminology.

Only what binding checks need: a value set is expanded once to a set of ``(system, code)`` pairs. A value set
this module cannot expand (external systems such as UCUM or BCP-13, or complex filters) answers ``None`` -
"cannot tell" - so the validator never rejects a code it has no way to judge.
The ``ValueSetExpander`` also serves ``scripts/build_core_definitions.py``, which expands the core value sets
at build time.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from typing import Any, Iterable, Iterator, Mapping

from fhir_server.fhir.definitions import DATA_DIR, canonical

CodePairs = frozenset[tuple[str, str]]


def iter_concepts(concepts: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every concept of a (possibly hierarchical) concept list, each before its children; iterative, so a deep
    hierarchy cannot exhaust the recursion limit."""
    stack = list(reversed(list(concepts)))
    while stack:
        concept = stack.pop()
        yield concept
        stack.extend(reversed(concept.get("concept", [])))


def all_codes(concepts: Iterable[dict[str, Any]]) -> Iterable[str]:
    """Every code of a (possibly hierarchical) concept list."""
    return (concept["code"] for concept in iter_concepts(concepts))


def find_concept(concepts: Iterable[dict[str, Any]], code: str | None) -> dict[str, Any] | None:
    return next((concept for concept in iter_concepts(concepts) if concept.get("code") == code), None)


def displays_of(code_system: dict[str, Any]) -> dict[str, str]:
    """code -> display for every concept of a CodeSystem that has a display."""
    return {
        concept["code"]: concept["display"]
        for concept in iter_concepts(code_system.get("concept", []))
        if concept.get("display")
    }


class ValueSetExpander:
    """Expands simple ValueSet composes: whole systems, concept lists, single is-a/descendent-of filters."""

    def __init__(self, code_systems: Mapping[str, dict[str, Any]], value_sets: Mapping[str, dict[str, Any]]) -> None:
        self.code_systems = code_systems
        self.value_sets = value_sets

    def expand(self, url: str, seen: frozenset[str] = frozenset()) -> set[tuple[str, str]] | None:
        """The ``(system, code)`` pairs of a value set, or None when some part cannot be expanded here."""
        url = canonical(url)
        value_set = self.value_sets.get(url)
        if value_set is None or url in seen:
            return None
        compose = value_set.get("compose")
        if not compose:
            return None
        codes: set[tuple[str, str]] = set()
        for include in compose.get("include", []):
            part = self.expand_include(include, seen | {url})
            if part is None:
                return None
            codes |= part
        for exclude in compose.get("exclude", []):
            part = self.expand_include(exclude, seen | {url})
            if part is None:
                return None
            codes -= part
        return codes

    def expand_include(self, include: dict[str, Any], seen: frozenset[str]) -> set[tuple[str, str]] | None:
        result: set[tuple[str, str]] | None = None
        system = include.get("system")
        if system:
            if "concept" in include:
                result = {(system, c["code"]) for c in include["concept"]}
            elif "filter" in include:
                result = self.filtered(system, include["filter"])
            else:
                result = self.whole_system(system)
            if result is None:
                return None
        for nested_url in include.get("valueSet", []):
            nested = self.expand(nested_url, seen)
            if nested is None:
                return None
            result = nested if result is None else result & nested
        return result

    def whole_system(self, system: str) -> set[tuple[str, str]] | None:
        code_system = self.code_systems.get(system)
        if code_system is None or code_system.get("content", "complete") != "complete":
            return None
        return {(system, code) for code in all_codes(code_system.get("concept", []))}

    def filtered(self, system: str, filters: list[dict[str, Any]]) -> set[tuple[str, str]] | None:
        code_system = self.code_systems.get(system)
        if code_system is None or len(filters) != 1:
            return None
        only = filters[0]
        if only.get("property") != "concept" or only.get("op") not in ("is-a", "descendent-of"):
            return None
        root = find_concept(code_system.get("concept", []), only.get("value"))
        if root is None:
            return None
        codes = set(all_codes(root.get("concept", [])))
        if only["op"] == "is-a":
            codes.add(root["code"])
        return {(system, code) for code in codes}


class Terminology:
    """Binding checks and code lookups over the core expansions and the project's CodeSystems/ValueSets."""

    def __init__(
        self,
        core_expansions: Mapping[str, dict[str, Any]] | None = None,
        core_displays: Mapping[str, dict[str, str]] | None = None,
    ) -> None:
        self._core_expansions = dict(core_expansions or {})
        self._displays: dict[str, dict[str, str]] = {k: dict(v) for k, v in (core_displays or {}).items()}
        self._code_systems: dict[str, dict[str, Any]] = {}
        self._value_sets: dict[str, dict[str, Any]] = {}
        self._expanded: dict[str, tuple[CodePairs, frozenset[str]] | None] = {}

    @classmethod
    def load_core(cls) -> "Terminology":
        with gzip.open(DATA_DIR / "required-valuesets.json.gz", "rb") as stream:
            expansions = json.load(stream)
        with gzip.open(DATA_DIR / "code-displays.json.gz", "rb") as stream:
            displays = json.load(stream)
        return cls(expansions, displays)

    def copy(self) -> "Terminology":
        """A terminology sharing the core data, so an app can add its own without touching the cached core."""
        other = Terminology()
        other._core_expansions = self._core_expansions
        other._displays = {k: dict(v) for k, v in self._displays.items()}
        other._code_systems = dict(self._code_systems)
        other._value_sets = dict(self._value_sets)
        return other

    def add(self, resource: dict[str, Any]) -> None:
        """Host a CodeSystem or ValueSet (the project's own terminology)."""
        url = canonical(resource["url"])
        if resource.get("resourceType") == "CodeSystem":
            self._code_systems[url] = resource
            self._displays[url] = displays_of(resource)
        elif resource.get("resourceType") == "ValueSet":
            self._value_sets[url] = resource
        else:
            raise ValueError(f"not a CodeSystem or ValueSet: {resource.get('resourceType')}")
        self._expanded.clear()  # a new code system can complete a value set that was unexpandable before

    def code_system(self, url: str) -> dict[str, Any] | None:
        """A hosted CodeSystem; for core systems a minimal one (url, concepts with display) from shipped data."""
        url = canonical(url)
        hosted = self._code_systems.get(url)
        if hosted is not None:
            return hosted
        displays = self._displays.get(url)
        if displays is None:
            return None
        return {
            "resourceType": "CodeSystem",
            "url": url,
            "status": "active",
            "content": "complete",
            "concept": [{"code": code, "display": display} for code, display in displays.items()],
        }

    def value_set(self, url: str) -> dict[str, Any] | None:
        """A hosted ValueSet (core value sets are shipped only as expansions)."""
        return self._value_sets.get(canonical(url))

    def display(self, system: str, code: str) -> str | None:
        return self._displays.get(canonical(system), {}).get(code)

    def expansion(self, value_set_url: str) -> tuple[CodePairs, frozenset[str]] | None:
        """``(pairs, systems)`` of a value set, or None when it is unknown or cannot be expanded."""
        url = canonical(value_set_url)
        if url in self._expanded:
            return self._expanded[url]
        result: tuple[CodePairs, frozenset[str]] | None = None
        if url in self._value_sets:
            pairs = ValueSetExpander(self._code_systems, self._value_sets).expand(url)
            if pairs is not None:
                result = (frozenset(pairs), frozenset(system for system, _ in pairs))
        else:
            core = self._core_expansions.get(url)
            if core is not None and "codes" in core:
                pairs = frozenset((system, code) for system, code in core["codes"])
                result = (pairs, frozenset(system for system, _ in pairs))
        self._expanded[url] = result
        return result

    def validate_code(self, value_set_url: str, system: str | None, code: str) -> bool | None:
        """Is ``code`` (in ``system``; None = the implicit system of a ``code`` element) in the value set?

        None means "cannot tell" (unknown or unexpandable value set): callers must not reject on it.
        """
        expansion = self.expansion(value_set_url)
        if expansion is None:
            return None
        pairs, systems = expansion
        if system is None:
            return any((candidate, code) in pairs for candidate in systems)
        return (system, code) in pairs

    def systems_of(self, value_set_url: str) -> frozenset[str] | None:
        """The code systems a value set draws from (None if it cannot be expanded)."""
        expansion = self.expansion(value_set_url)
        return expansion[1] if expansion else None


@cache
def core_terminology() -> Terminology:
    """The shipped core expansions, loaded once per process. ``copy()`` it before adding the project's own."""
    return Terminology.load_core()
