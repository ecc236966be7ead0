"""StructureDefinitions: the shipped R4 core plus the project's own profiles, with fast element lookup.

The validator walks JSON against snapshots many thousands of times per second, so each StructureDefinition is
indexed once (``StructureIndex``): elements by id, children by parent id, the JSON property names each child
accepts (choice types expanded: ``value[x]`` -> ``valueString``...) and slices by sliced element. Children are
keyed by element *id* rather than path because a profile's slices share their path with the unsliced element.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Iterable

DATA_DIR = Path(__file__).resolve().parent / "data"
CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
FHIR_TYPE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXTENSION = "http://hl7.org/fhir/StructureDefinition/regex"
FHIRPATH_SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."


def canonical(url: str) -> str:
    """A canonical URL without its ``|version`` suffix: the registry holds one version of each artifact."""
    return url.split("|", 1)[0]


def type_code(type_ref: dict[str, Any]) -> str:
    """The FHIR type of an ElementDefinition.type entry (``System.String`` ids and urls map to their FHIR type)."""
    code = type_ref["code"]
    if code.startswith(FHIRPATH_SYSTEM_PREFIX):
        for extension in type_ref.get("extension", ()):
            if extension.get("url") == FHIR_TYPE_EXTENSION:
                return extension["valueUrl"]
        return "string"
    return code


def choice_suffix(code: str) -> str:
    """``dateTime`` -> ``DateTime``: how a type names itself in a choice property (``valueDateTime``)."""
    return code[0].upper() + code[1:]


def parent_id(element_id: str) -> str:
    return element_id.rsplit(".", 1)[0] if "." in element_id else ""


def is_concrete_resource(definition: dict[str, Any]) -> bool:
    """A resource type a server can hold: not abstract (``DomainResource``), not a profile of another type."""
    return (
        definition.get("kind") == "resource"
        and not definition.get("abstract")
        and definition.get("derivation") == "specialization"
    )


@dataclass(frozen=True, slots=True)
class Child:
    """One JSON property a parent element accepts: ``name`` is the FHIRPath name (``value`` for ``valueString``)."""

    name: str
    element: dict[str, Any]
    type: str  # the FHIR type this property carries ("" for contentReference elements)
    is_array: bool  # FHIR JSON: repeating elements (base max != 1) are always arrays
    is_choice: bool


@dataclass(frozen=True, slots=True)
class Cardinality:
    """An element's min/max, precomputed; ``narrowed``: a profile changed it from the base (only then re-checked)."""

    element: dict[str, Any]
    name: str
    min: int
    max: int | None  # None: unbounded
    narrowed: bool


def cardinality_of(element: dict[str, Any]) -> Cardinality:
    maximum = element.get("max", "*")
    base = element.get("base", {})
    narrowed = element.get("min", 0) != base.get("min", 0) or maximum != base.get("max", "*")
    name = element["path"].rsplit(".", 1)[-1].removesuffix("[x]")
    return Cardinality(element, name, element.get("min", 0), None if maximum == "*" else int(maximum), narrowed)


@dataclass
class StructureIndex:
    """Lookup tables of one StructureDefinition snapshot, built once."""

    definition: dict[str, Any]
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # parent id -> unsliced children
    properties: dict[str, dict[str, Child]] = field(default_factory=dict)  # parent id -> JSON name -> Child
    choice_stems: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # parent id -> stem -> element
    slices: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # sliced element id -> slice elements
    cardinality: dict[int, Cardinality] = field(default_factory=dict)  # id(child element) -> its cardinality
    required: dict[str, list[Cardinality]] = field(default_factory=dict)  # parent id -> children with min > 0
    sliced: dict[str, list[Cardinality]] = field(default_factory=dict)  # parent id -> children that are sliced
    # (slice id, discriminator path) -> the element that path names in the slice (filled by slicing, on first use)
    discriminator_targets: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)

    @classmethod
    def build(cls, definition: dict[str, Any]) -> "StructureIndex":
        index = cls(definition)
        for element in definition.get("snapshot", {}).get("element", []):
            element_id = element.get("id") or element["path"]
            index.by_id[element_id] = element
            last_segment = element_id.rsplit(".", 1)[-1]
            if ":" in last_segment:
                if "[x]:" in last_segment:
                    continue  # type slices of a choice element (valueString slice of value[x]) add no new property
                index.slices.setdefault(element_id.rsplit(":", 1)[0], []).append(element)
                continue
            if "." not in element_id:
                continue
            parent = parent_id(element_id)
            index.children.setdefault(parent, []).append(element)
            index._add_properties(parent, last_segment, element)
        for parent, children in index.children.items():
            for child in children:
                rule = index.cardinality[id(child)] = cardinality_of(child)
                if rule.min > 0:
                    index.required.setdefault(parent, []).append(rule)
                if child.get("id") in index.slices:
                    index.sliced.setdefault(parent, []).append(rule)
        return index

    def _add_properties(self, parent: str, segment: str, element: dict[str, Any]) -> None:
        properties = self.properties.setdefault(parent, {})
        is_array = (element.get("base", {}).get("max") or element.get("max")) != "1"
        if segment.endswith("[x]"):
            stem = segment[:-3]
            self.choice_stems.setdefault(parent, {})[stem] = element
            for type_ref in element.get("type", []):
                code = type_code(type_ref)
                properties[stem + choice_suffix(code)] = Child(stem, element, code, is_array, True)
            return
        types = element.get("type", [])
        code = type_code(types[0]) if types else ""
        properties[segment] = Child(segment, element, code, is_array, False)

    @property
    def root_id(self) -> str:
        return self.definition["type"]

    @property
    def url(self) -> str:
        return self.definition["url"]

    def element(self, element_id: str) -> dict[str, Any] | None:
        return self.by_id.get(element_id)

    def has_children(self, element_id: str) -> bool:
        return element_id in self.properties


@dataclass(frozen=True, slots=True)
class PrimitiveRule:
    """How a primitive's JSON value is checked: its JSON kind and, for strings, the R4 regex."""

    json_kind: str  # "boolean" | "integer" | "number" | "string"
    pattern: re.Pattern[str] | None


JSON_KIND_OF_PRIMITIVE = {
    "boolean": "boolean",
    "integer": "integer",
    "positiveInt": "integer",
    "unsignedInt": "integer",
    "decimal": "number",
}


class DefinitionRegistry:
    """All StructureDefinitions the server knows: the R4 core it ships, plus profiles added at start-up."""

    def __init__(self, definitions: Iterable[dict[str, Any]] = ()) -> None:
        self._by_url: dict[str, dict[str, Any]] = {}
        self._hosted: list[str] = []
        self._indexes: dict[str, StructureIndex] = {}
        self._primitive_rules: dict[str, PrimitiveRule] | None = None
        self._core_constraint_keys: frozenset[str] | None = None
        self._questionnaires: dict[str, dict[str, Any]] = {}
        for definition in definitions:
            self._by_url[definition["url"]] = definition

    @classmethod
    def load_core(cls) -> "DefinitionRegistry":
        """The base types plus the profiles and extension definitions the R4 specification publishes."""
        definitions: list[dict[str, Any]] = []
        for name in ("structure-definitions.json.gz", "core-profiles.json.gz"):
            with gzip.open(DATA_DIR / name, "rb") as stream:
                definitions.extend(json.load(stream))
        return cls(definitions)

    def copy(self) -> "DefinitionRegistry":
        """A registry sharing the core definitions, so an app can add profiles without touching the cached core."""
        other = DefinitionRegistry()
        other._by_url = dict(self._by_url)
        other._hosted = list(self._hosted)
        other._indexes = dict(self._indexes)
        other._primitive_rules = self._primitive_rules
        other._core_constraint_keys = self._core_constraint_keys
        other._questionnaires = dict(self._questionnaires)
        return other

    # -- lookup -------------------------------------------------------------------------------------------

    def add(self, structure_definition: dict[str, Any]) -> None:
        """Host a profile (or extension definition); it replaces any earlier definition with the same URL."""
        url = structure_definition["url"]
        self._by_url[url] = structure_definition
        self._indexes.pop(url, None)
        if url not in self._hosted:
            self._hosted.append(url)

    def add_questionnaire(self, questionnaire: dict[str, Any]) -> None:
        """Host a Questionnaire: responses naming it are validated against its items."""
        self._questionnaires[canonical(questionnaire["url"])] = questionnaire

    def questionnaire(self, url: str) -> dict[str, Any] | None:
        return self._questionnaires.get(canonical(url))

    def get(self, url_or_type: str) -> dict[str, Any] | None:
        """A StructureDefinition by canonical URL (``|version`` ignored) or by bare type name (``Patient``)."""
        url = canonical(url_or_type)
        if "/" not in url and ":" not in url:
            url = CORE_PREFIX + url
        return self._by_url.get(url)

    def index(self, url_or_type: str) -> StructureIndex | None:
        """The lookup tables of a StructureDefinition, built on first use."""
        definition = self.get(url_or_type)
        if definition is None:
            return None
        url = definition["url"]
        index = self._indexes.get(url)
        if index is None:
            index = self._indexes[url] = StructureIndex.build(definition)
        return index

    def is_resource_type(self, name: str) -> bool:
        definition = self._by_url.get(CORE_PREFIX + name)
        return definition is not None and is_concrete_resource(definition)

    def resource_types(self) -> list[str]:
        """Concrete resource types, sorted."""
        return sorted(
            d["type"] for url, d in self._by_url.items() if url.startswith(CORE_PREFIX) and is_concrete_resource(d)
        )

    def core_constraint_keys(self) -> frozenset[str]:
        """Keys of the invariants the core definitions state: the structure pass evaluates those, so the profile
        pass evaluates only the keys a profile adds (``vs-2``), not ``qty-3`` a second time."""
        if self._core_constraint_keys is None:
            self._core_constraint_keys = frozenset(
                constraint["key"]
                for url, definition in self._by_url.items()
                if url.startswith(CORE_PREFIX) and definition.get("derivation") != "constraint"
                for element in definition.get("snapshot", {}).get("element", ())
                for constraint in element.get("constraint", ())
                if "key" in constraint
            )
        return self._core_constraint_keys

    def is_primitive_type(self, name: str) -> bool:
        return name in self.primitive_rules()

    def is_profile(self, url: str) -> bool:
        """A profile (or extension definition) validation can use: one this server hosts or one the core ships."""
        definition = self.get(url)
        return definition is not None and definition.get("derivation") == "constraint" and "snapshot" in definition

    def hosted_profiles(self) -> list[str]:
        """URLs of the definitions added with ``add()`` (the project's profiles and extensions)."""
        return list(self._hosted)

    def type_of(self, url: str) -> str | None:
        """The base type a profile constrains (``Patient`` for a Patient profile), or None if unknown."""
        definition = self.get(url)
        return definition.get("type") if definition else None

    # -- element helpers ----------------------------------------------------------------------------------

    def children(self, url_or_type: str, element_id: str) -> list[dict[str, Any]]:
        """The unsliced child elements of ``element_id`` in a definition's snapshot."""
        index = self.index(url_or_type)
        return index.children.get(element_id, []) if index else []

    def element(self, url_or_type: str, element_id: str) -> dict[str, Any] | None:
        """An element by id (= path for core definitions), following ``contentReference`` if it has one."""
        index = self.index(url_or_type)
        if index is None:
            return None
        found = index.element(element_id)
        if found is None:
            return None
        reference = found.get("contentReference")
        return index.element(reference.split("#", 1)[1]) if reference else found

    def base_element(self, element: dict[str, Any]) -> dict[str, Any] | None:
        """The core element a profile element constrains (via ``base.path``), e.g. to tell what a profile narrowed."""
        base_path = element.get("base", {}).get("path")
        if not base_path:
            return None
        return self.element(base_path.split(".", 1)[0], base_path)

    def descend(self, index: StructureIndex, child: Child) -> tuple[StructureIndex, str] | None:
        """Where the children of ``child`` are defined: inline (backbone, contentReference) or in its type's SD."""
        element = child.element
        reference = element.get("contentReference")
        child_id = element.get("id") or element["path"]
        if reference:
            return index, reference.split("#", 1)[1]
        if index.has_children(child_id):
            return index, child_id
        type_index = self.index(child.type) if child.type else None
        if type_index is None:
            return None
        return type_index, type_index.root_id

    def primitive_rules(self) -> dict[str, PrimitiveRule]:
        """Per primitive type: JSON kind and compiled regex (from the ``<type>.value`` element of its definition)."""
        if self._primitive_rules is None:
            rules: dict[str, PrimitiveRule] = {}
            for definition in self._by_url.values():
                if definition.get("kind") != "primitive-type" or not definition["url"].startswith(CORE_PREFIX):
                    continue
                name = definition["type"]
                value_element = next(
                    (e for e in definition["snapshot"]["element"] if e["path"] == name + ".value"), {}
                )
                regex = next(
                    (
                        x["valueString"]
                        for t in value_element.get("type", [])
                        for x in t.get("extension", [])
                        if x.get("url") == REGEX_EXTENSION
                    ),
                    None,
                )
                kind = JSON_KIND_OF_PRIMITIVE.get(name, "string")
                # FHIR regexes follow XML Schema, where \\s is ASCII whitespace only (a no-break space is text).
                compiled = re.compile(regex, re.ASCII) if regex and kind == "string" else None
                rules[name] = PrimitiveRule(kind, compiled)
            self._primitive_rules = rules
        return self._primitive_rules


@cache
def core_registry() -> DefinitionRegistry:
    """The shipped R4 core, loaded once per process. Use ``core_registry().copy()`` before adding profiles."""
    return DefinitionRegistry.load_core()
