"""Validation of FHIR R4 JSON against StructureDefinition snapshots, reporting every problem at once.

Two passes, because the API answers them differently (base-rule failures 400, profile failures 422):

* the *structure* pass walks a resource against the core snapshot of its own type: unknown elements, JSON
  array/single shape, choice types, primitive formats (R4 regexes), cardinality, required bindings, extension
  shape, contained and Bundle/Parameters resources recursively, reference target types, the FHIRPath invariants
  of the core (``invariants``), and the rules stated in prose that one module per family checks (resource ids and
  Attachments: ``datatype_rules``; Bundles: ``bundle_rules``; extensions against their definitions:
  ``extension_rules``; Questionnaires: ``questionnaire_rules``);
* the *profile* pass walks it against a profile snapshot and reports only what the profile adds to the base:
  narrowed cardinality, fixed/pattern values, min/maxValue, changed bindings and reference targets, restricted
  choice types, type profiles, the profile's own invariants, slices (``slicing``: value, pattern, exists, type
  and profile discriminators) and the extension definitions the slices name; a QuestionnaireResponse is held
  to the Questionnaire it names here too (``questionnaire_rules``).

The walk works on plain dicts and precomputed lookup tables (``definitions.StructureIndex``); it never builds
model objects. ``bench/validator.py`` measures it per resource over the official examples.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterator

from fhir_server.errors import Issue, error, warning
from fhir_server.fhir.definitions import (
    CORE_PREFIX,
    FHIRPATH_SYSTEM_PREFIX,
    Child,
    DefinitionRegistry,
    StructureIndex,
    canonical,
    choice_suffix,
)
from fhir_server.fhir.bundle_rules import check_bundle
from fhir_server.fhir.datatype_rules import check_contained_referenced, check_resource_id
from fhir_server.fhir.extension_rules import check_extensions
from fhir_server.fhir.invariants import Invariant, InvariantEngine, invariants_of
from fhir_server.fhir.questionnaire_rules import check_response
from fhir_server.fhir.slicing import Undecidable, contains_pattern, matching_slice, value_constraint
from fhir_server.fhir.terminology import Terminology
from fhir_server.fhir.type_rules import TYPE_RULES

INTEGER_RANGES = {
    "integer": (-2147483648, 2147483647),
    "positiveInt": (1, 2147483647),
    "unsignedInt": (0, 2147483647),
}
JSON_KIND_CHECKS: dict[str, Callable[[Any], bool]] = {
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
}
JSON_KIND_NAMES = {"boolean": "a JSON boolean", "integer": "a JSON integer", "number": "a JSON number",
                   "string": "a JSON string"}
# Types whose regex accepts impossible calendar dates (1990-02-30): their leading full date is checked too.
CALENDAR_TYPES = frozenset({"date", "dateTime", "instant"})
FULL_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
LITERAL_REFERENCE = re.compile(
    r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
# A relative literal reference as a whole (R4 3.3.3): Type/id, optionally with its version.
RELATIVE_REFERENCE = re.compile(r"^([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
RESOURCE_TYPE = "Resource"
EXTENSION_KEYS = {"extension": False, "modifierExtension": True}  # JSON name -> is the modifier array
CONTAINED_STEP = re.compile(r"\.contained\[\d+\]$")


@dataclass(frozen=True, slots=True)
class ReferenceScope:
    """What local references can resolve to: contained resources (``#id``) and Bundle entries (``fullUrl``)."""

    contained: dict[str, str] = field(default_factory=dict)  # id -> resourceType
    bundle: dict[str, str] = field(default_factory=dict)  # fullUrl -> resourceType


EMPTY_SCOPE = ReferenceScope()


def is_value_key(key: str) -> bool:
    return key.startswith("value") and len(key) > 5 and key[5].isupper()


def type_profiles(element: dict[str, Any] | None) -> tuple[str, ...]:
    return tuple(sorted(p for t in (element or {}).get("type", ()) for p in t.get("profile", ())))


def prefixed(element: dict[str, Any], stem: str) -> tuple[str, Any] | None:
    """The ``stem[x]`` entry of an element (``minValueInteger``), if any."""
    return next(((key, value) for key, value in element.items() if key.startswith(stem) and len(key) > len(stem)),
                None)


def comparable_bound(value: Any) -> Any:
    """What a min/maxValue compares: numbers, a Quantity's value, ISO date/time strings as written."""
    if isinstance(value, dict):
        return value.get("value")
    return value


def outside_bounds(item: Any, minimum: Any, maximum: Any) -> str | None:
    """Why the item breaks a minValue/maxValue (None: it does not, or they cannot be compared)."""
    value = comparable_bound(item)
    for bound, word, breaks in ((minimum, "less", lambda a, b: a < b), (maximum, "more", lambda a, b: a > b)):
        if bound is None:
            continue
        limit = comparable_bound(bound)
        if isinstance(value, str) and isinstance(limit, str) and len(value) != len(limit):
            continue  # date/time strings of different precision do not compare by text
        try:
            if value is not None and limit is not None and breaks(value, limit):
                return f"{value!r} is {word} than the profile allows ({limit!r})"
        except TypeError:
            continue
    return None


def is_system_typed(element: dict[str, Any]) -> bool:
    """An element typed with a FHIRPath system type (``Resource.id``, ``Element.id``, ``Extension.url``): a bare
    JSON value that has no ``_name`` companion with an id or extensions."""
    return any(t.get("code", "").startswith(FHIRPATH_SYSTEM_PREFIX) for t in element.get("type", ()))


def max_allows(maximum: str | None, count: int) -> bool:
    return maximum in (None, "*") or count <= int(maximum)


def reference_targets(element: dict[str, Any] | None) -> tuple[str, ...]:
    return tuple(sorted(
        p for t in (element or {}).get("type", ()) if t.get("code") == "Reference" for p in t.get("targetProfile", ())
    ))


@dataclass(frozen=True, slots=True)
class ElementRules:
    """What an element demands of each value, worked out once; ``*_changed``: differs from the core element."""

    element: dict[str, Any]  # kept so the cache key id(element) stays this element's
    strength: str | None
    value_set: str | None
    binding_changed: bool
    targets: tuple[str, ...]
    targets_changed: bool
    constraint: tuple[str, Any] | None
    invariants: tuple[Invariant, ...]  # FHIRPath constraints (the profile pass: only those the profile adds)
    profiles_changed: bool  # the element's type profiles differ from the core element's
    bounds: tuple[tuple[str, Any] | None, tuple[str, Any] | None]  # (minValue[x], maxValue[x]) as (JSON key, value)

    @classmethod
    def of(cls, element: dict[str, Any], base: dict[str, Any] | None, source: str,
           core_keys: frozenset[str] = frozenset()) -> "ElementRules":
        binding = element.get("binding") or {}
        value_set = binding.get("valueSet")
        targets = reference_targets(element)
        return cls(
            element=element,
            strength=binding.get("strength"),
            value_set=value_set,
            binding_changed=value_set != (base or {}).get("binding", {}).get("valueSet"),
            targets=targets,
            targets_changed=targets != reference_targets(base),
            constraint=value_constraint(element),
            invariants=tuple(i for i in invariants_of(element, source) if i.key not in core_keys),
            profiles_changed=type_profiles(element) != type_profiles(base),
            bounds=(prefixed(element, "minValue"), prefixed(element, "maxValue")),
        )


class Validator:
    """Validates resources against the core definitions and the profiles a ``DefinitionRegistry`` hosts."""

    def __init__(self, registry: DefinitionRegistry, terminology: Terminology) -> None:
        self.registry = registry
        self.terminology = terminology
        self.invariants = InvariantEngine()
        # per pass (profile?): id(element) -> its binding/target/value rules; each entry holds its element, so ids
        # stay its own
        self.element_rules_cache: dict[bool, dict[int, ElementRules]] = {False: {}, True: {}}

    def validate_structure(self, resource: dict[str, Any]) -> list[Issue]:
        """Base R4 rules of the resource's own type (and of every resource it contains)."""
        run = _Run(self, profile_mode=False)
        run.resource(resource, "", EMPTY_SCOPE)
        return run.issues

    def validate_profiles(
        self, resource: dict[str, Any], profiles: Sequence[str] = (), *, check_meta_profiles: bool = True
    ) -> list[Issue]:
        """Rules of the hosted profiles in ``meta.profile`` (unhosted: a warning) and of ``profiles`` (unknown: error)."""
        issues: list[Issue] = []
        resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(resource_type, str):
            return issues
        to_check: list[str] = []
        if check_meta_profiles:
            claimed = (resource.get("meta") or {}).get("profile") if isinstance(resource.get("meta"), dict) else None
            for position, url in enumerate(claimed if isinstance(claimed, list) else []):
                if not isinstance(url, str) or canonical(url) == CORE_PREFIX + resource_type:
                    continue
                if self.registry.is_profile(url):
                    to_check.append(canonical(url))
                else:
                    issues.append(warning(
                        "not-supported",
                        f"Profile {url} is not hosted by this server; the resource was not validated against it",
                        f"{resource_type}.meta.profile[{position}]",
                    ))
        for url in profiles:
            if self.registry.get(url) is None:
                issues.append(error("not-supported", f"Unknown profile {url}", resource_type))
            elif canonical(url) not in to_check:
                to_check.append(canonical(url))
        for url in to_check:
            issues.extend(self._validate_one_profile(resource, url))
        if resource_type == "QuestionnaireResponse":
            issues.extend(self._validate_against_questionnaire(resource))
        return issues

    def _validate_against_questionnaire(self, response: dict[str, Any]) -> list[Issue]:
        """A response against the Questionnaire it names: the form is to a response what a profile is to a
        resource, so its failures are profile failures (422), not invalid FHIR (400)."""
        run = _Run(self, profile_mode=True)
        check_response(run, response, "QuestionnaireResponse")
        return run.issues

    def validate(
        self, resource: dict[str, Any], profiles: Sequence[str] = (), *, check_meta_profiles: bool = True
    ) -> list[Issue]:
        """Structure and profile issues together."""
        return self.validate_structure(resource) + self.validate_profiles(
            resource, profiles, check_meta_profiles=check_meta_profiles
        )

    def _validate_one_profile(self, resource: dict[str, Any], url: str) -> list[Issue]:
        index = self.registry.index(url)
        resource_type = resource["resourceType"]
        if index is None or "snapshot" not in index.definition:
            return [error("not-supported", f"Profile {url} has no snapshot to validate against", resource_type)]
        if index.root_id != resource_type:
            return [error("invalid", f"Profile {url} constrains {index.root_id}, not {resource_type}", resource_type)]
        run = _Run(self, profile_mode=True)
        run.resources.append((resource, resource))
        run.obj(resource, index, index.root_id, resource_type, run.scope_of(resource, EMPTY_SCOPE), is_root=True)
        return run.issues


class _Run:
    """One validation pass: the issues found so far and whether base or profile rules apply."""

    def __init__(self, validator: Validator, *, profile_mode: bool) -> None:
        self.validator = validator
        self.registry = validator.registry
        self.terminology = validator.terminology
        self.rules = self.registry.primitive_rules()
        self.profile_mode = profile_mode
        self.rules_cache = validator.element_rules_cache[profile_mode]
        self.invariant_engine = validator.invariants
        self.issues: list[Issue] = []
        self.resources: list[tuple[Any, Any]] = []  # (%resource, %rootResource) of the resources being walked
        self.bundle_references: list[list[tuple[str, str]]] = []  # per Bundle being walked: (reference, path)

    def element_rules(self, element: dict[str, Any], source: str = "") -> "ElementRules":
        rules = self.rules_cache.get(id(element))
        if rules is None:
            core_keys = self.registry.core_constraint_keys() if self.profile_mode else frozenset()
            rules = self.rules_cache[id(element)] = ElementRules.of(
                element, self.registry.base_element(element), source, core_keys
            )
        return rules

    def invariants(self, node: Any, element: dict[str, Any], type_path: str, source: str, expression: str) -> None:
        """The element's FHIRPath invariants on one value: error-severity ones fail, warning ones warn."""
        rules = self.element_rules(element, source)
        if rules.invariants and self.resources:
            self.element_invariants(node, rules, type_path, expression)

    def element_invariants(self, node: Any, rules: "ElementRules", type_path: str, expression: str) -> None:
        resource, root = self.resources[-1]
        for invariant in rules.invariants:
            if self.invariant_engine.holds(invariant, node, type_path, resource, root):
                continue
            text = f"Constraint {invariant.key} failed: {invariant.human}"
            if invariant.severity == "error":
                self.issues.append(error("invariant", text, expression))
            else:
                self.issues.append(warning("invariant", text, expression))

    def fail(self, code: str, diagnostics: str, expression: str) -> None:
        self.issues.append(error(code, diagnostics, expression))

    def warn(self, code: str, diagnostics: str, expression: str) -> None:
        self.issues.append(warning(code, diagnostics, expression))

    # -- resources ----------------------------------------------------------------------------------------

    def scope_of(self, resource: dict[str, Any], outer: ReferenceScope) -> ReferenceScope:
        contained = resource.get("contained")
        entries = resource.get("entry") if resource.get("resourceType") == "Bundle" else None
        if not isinstance(contained, list) and not isinstance(entries, list):
            return outer
        contained_types = dict(outer.contained)
        for item in contained if isinstance(contained, list) else ():
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                contained_types[item["id"]] = item.get("resourceType", "")
        bundle_types = outer.bundle
        if isinstance(entries, list):
            bundle_types = {
                entry["fullUrl"]: entry["resource"].get("resourceType", "")
                for entry in entries
                if isinstance(entry, dict) and isinstance(entry.get("fullUrl"), str)
                and isinstance(entry.get("resource"), dict)
            }
        return ReferenceScope(contained_types, bundle_types)

    def resource(self, resource: Any, expression: str, outer: ReferenceScope) -> None:
        """Validate a whole resource (root, contained, or inside a Bundle entry / Parameters) by its own type."""
        if not isinstance(resource, dict):
            self.fail("structure", "A resource must be a JSON object", expression)
            return
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str) or not self.registry.is_resource_type(resource_type):
            self.fail("invalid", f"Unknown resourceType {resource_type!r}", expression + ".resourceType"
                      if expression else "resourceType")
            return
        index = self.registry.index(resource_type)
        assert index is not None
        # %rootResource of a contained resource is its container; of anything else, the resource itself.
        root = self.resources[-1][1] if self.resources and CONTAINED_STEP.search(expression) else resource
        self.resources.append((resource, root))
        is_bundle = resource_type == "Bundle"
        if is_bundle:
            self.bundle_references.append([])
        try:
            self.obj(resource, index, resource_type, expression or resource_type, self.scope_of(resource, outer),
                     is_root=True)
        finally:
            self.resources.pop()
            references = self.bundle_references.pop() if is_bundle else []
        if is_bundle:
            check_bundle(self, resource, expression or resource_type, references)

    # -- objects --------------------------------------------------------------------------------------------

    def obj(
        self,
        value: Any,
        index: StructureIndex,
        element_id: str,
        expression: str,
        scope: ReferenceScope,
        *,
        is_root: bool = False,
    ) -> None:
        """Walk one JSON object against the children of ``element_id``; then check the children's cardinality."""
        if not isinstance(value, dict):
            if not self.profile_mode:
                self.fail("structure", "Expected a JSON object", expression)
            return
        if not value and not self.profile_mode:
            self.fail("structure", "Empty objects are not allowed", expression)
            return
        properties = index.properties.get(element_id, {})
        counts: dict[int, int] = {}
        for key, item in value.items():
            if key == "resourceType" and is_root:
                continue
            if key.startswith("_"):
                self.primitive_extension(key, item, value, properties, expression, counts)
                continue
            child = properties.get(key)
            if child is None:
                self.unknown_property(key, index, element_id, expression)
                continue
            if item is not None:  # a JSON null is not a value: "required" still applies
                counts[id(child.element)] = counts.get(id(child.element), 0) + (
                    len(item) if isinstance(item, list) else 1
                )
            self.property(item, value.get("_" + key), child, index, expression, scope)
            if key in EXTENSION_KEYS and not self.profile_mode and isinstance(item, list):
                self.extensions(item, EXTENSION_KEYS[key], value, index, element_id, f"{expression}.{key}")
        self.cardinality(index, element_id, counts, expression)
        if not self.profile_mode and element_id == index.root_id:
            if element_id == "Extension":
                self.extension_shape(value, expression)
            if is_root:
                check_resource_id(self, value, expression)
                check_contained_referenced(self, value, expression)
            type_rule = TYPE_RULES.get(element_id)
            if type_rule is not None:
                type_rule(self, value, expression)
        if element_id == index.root_id:
            self.invariants(value, index.by_id[element_id], element_id, index.url, expression)

    def unknown_property(self, key: str, index: StructureIndex, element_id: str, expression: str) -> None:
        """A property the element does not define: a choice of a type not allowed, or an unknown element."""
        for stem, element in index.choice_stems.get(element_id, {}).items():
            if key.startswith(stem) and len(key) > len(stem) and key[len(stem)].isupper():
                allowed = ", ".join(stem + choice_suffix(t["code"]) for t in element.get("type", []))
                rule = "the profile" if self.profile_mode else "the definition"
                self.fail("structure", f"'{key}' is not allowed by {rule} (allowed: {allowed})",
                          f"{expression}.{stem}")
                return
        if not self.profile_mode:
            self.fail("structure", f"Unknown element '{key}'", f"{expression}.{key}")

    def cardinality(self, index: StructureIndex, element_id: str, counts: dict[int, int], expression: str) -> None:
        """min/max of the children (the profile pass re-checks only what a profile narrowed), slices of absent ones."""
        profile_mode = self.profile_mode
        for key, count in counts.items():
            rule = index.cardinality[key]
            if rule.max is not None and count > rule.max and (rule.narrowed or not profile_mode):
                self.fail("structure", f"Element '{rule.name}' allows at most {rule.max} (found {count})",
                          f"{expression}.{rule.name}")
        for rule in index.required.get(element_id, ()):
            count = counts.get(id(rule.element), 0)
            if count < rule.min and (rule.narrowed or not profile_mode):
                self.fail("required", f"Element '{rule.name}' is required (min {rule.min}, found {count})",
                          f"{expression}.{rule.name}")
        if profile_mode:
            for rule in index.sliced.get(element_id, ()):
                if id(rule.element) not in counts:  # an absent sliced element still owes its required slices
                    self.slices([], rule.element, rule.name, index.slices[rule.element["id"]], index, expression,
                                EMPTY_SCOPE)

    def extensions(self, items: list[Any], modifier: bool, parent: dict[str, Any], index: StructureIndex,
                   element_id: str, path: str) -> None:
        """Known extensions against their definitions (context, modifier, value); unknown ones warned about."""
        element = index.by_id.get(element_id, {})
        if element_id == index.root_id:
            parent_type = index.root_id
        else:
            types = element.get("type") or [{"code": "BackboneElement"}]
            parent_type = types[0].get("code", "BackboneElement")
        check_extensions(
            self,
            ((f"{path}[{position}]", item) for position, item in enumerate(items)),
            modifier=modifier,
            parent_path=element.get("path", element_id),
            parent_type=parent_type,
            parent_url=parent.get("url") if parent_type == "Extension" else None,
            validate_value=self.extension_value,
        )

    def extension_value(self, item: Any, url: str, path: str) -> None:
        """Walk one extension against its (core) definition's snapshot, as a profile: value type, cardinality."""
        definition_index = self.registry.index(url)
        if definition_index is None:
            return
        run = _Run(self.validator, profile_mode=True)
        run.issues = self.issues
        run.resources = self.resources
        run.obj(item, definition_index, definition_index.root_id, path, EMPTY_SCOPE)

    def extension_shape(self, extension: dict[str, Any], expression: str) -> None:
        has_value = any(is_value_key(key) for key in extension)
        if has_value == ("extension" in extension):
            self.fail("invalid", "An extension must have either a value[x] or nested extensions, not both",
                      expression)

    # -- properties -----------------------------------------------------------------------------------------

    def items(self, value: Any, child: Child, expression: str) -> Iterator[tuple[str, Any, int | None]]:
        """(expression, item, array position) of a property's value, checking the JSON array/single shape."""
        path = f"{expression}.{child.name}"
        if isinstance(value, list):
            if not self.profile_mode:
                if not child.is_array:
                    self.fail("structure", f"'{child.name}' repeats at most once: give a single value, not an array",
                              path)
                elif not value:
                    self.fail("structure", "Empty arrays are not allowed", path)
            for position, item in enumerate(value):
                yield f"{path}[{position}]", item, position
            return
        if child.is_array and not self.profile_mode:
            self.fail("structure", f"'{child.name}' repeats: FHIR JSON requires an array", path)
        yield path, value, None

    def property(
        self,
        value: Any,
        companion: Any,
        child: Child,
        index: StructureIndex,
        expression: str,
        scope: ReferenceScope,
    ) -> None:
        element = child.element
        type_name = child.type
        profile_mode = self.profile_mode
        rules = self.element_rules(element, index.url)  # worked out once for every item of the property
        is_primitive = type_name in self.rules
        has_children = index.has_children(element.get("id", ""))
        slice_elements = index.slices.get(element.get("id", "")) if profile_mode else None
        is_resource = not is_primitive and type_name == RESOURCE_TYPE and not has_children
        target = None if is_primitive or is_resource else self.registry.descend(index, child)
        if target is not None and profile_mode and target[0] is not index:
            target = None
        check_invariants = bool(rules.invariants) and bool(self.resources)
        invariant_path = element["path"] if not is_primitive and has_children else type_name
        collected: list[tuple[str, Any]] = []
        for path, item, position in self.items(value, child, expression):
            if is_primitive:
                if not profile_mode:
                    self.primitive(item, type_name, path, self.companion_at(companion, position))
            elif is_resource:
                if not profile_mode:
                    self.resource(item, path, scope)
            elif target is not None:
                self.obj(item, target[0], target[1], path, scope)
            if item is not None and check_invariants:
                self.element_invariants(item, rules, invariant_path, path)
            self.item_rules(item, element, type_name, path, scope, rules)
            if profile_mode and item is not None and rules.profiles_changed:
                self.type_profiles(item, element, path, scope)
            if slice_elements:
                collected.append((path, item))
        if slice_elements:
            self.slices(collected, child.element, child.name, slice_elements, index, expression, scope)

    @staticmethod
    def companion_at(companion: Any, position: int | None) -> Any:
        if position is None:
            return companion
        if isinstance(companion, list) and position < len(companion):
            return companion[position]
        return None

    def primitive_extension(
        self,
        key: str,
        value: Any,
        parent: dict[str, Any],
        properties: dict[str, Child],
        expression: str,
        counts: dict[int, int],
    ) -> None:
        """``_birthDate``: the id/extensions of a primitive, alone or beside its value."""
        child = properties.get(key[1:])
        if child is None or child.type not in self.rules:
            if not self.profile_mode:
                self.fail("structure", f"Unknown element '{key}'", f"{expression}.{key}")
            return
        if key[1:] not in parent:
            counts[id(child.element)] = counts.get(id(child.element), 0) + (
                len(value) if isinstance(value, list) else 1
            )
        if self.profile_mode:
            return
        if is_system_typed(child.element):
            self.fail("structure", f"'{key[1:]}' cannot have an id or extensions", f"{expression}.{key}")
            return
        values = parent.get(key[1:])
        if isinstance(value, list) and isinstance(values, list) and len(value) != len(values):
            self.fail("structure", f"'{key}' has {len(value)} items but '{key[1:]}' has {len(values)}: the two "
                      "arrays must align", f"{expression}.{key}")
        index = self.registry.index(child.type)
        assert index is not None
        for path, item, _ in self.items(value, child, expression):
            if item is not None:
                self.obj(item, index, child.type, path, EMPTY_SCOPE)

    def primitive(self, value: Any, type_name: str, expression: str, companion: Any) -> None:
        if value is None:
            if companion is None:
                self.fail("structure", "null is only allowed where the primitive has an extension", expression)
            return
        rule = self.rules[type_name]
        if not JSON_KIND_CHECKS[rule.json_kind](value):
            self.fail("structure", f"A {type_name} must be {JSON_KIND_NAMES[rule.json_kind]}, not {value!r}",
                      expression)
            return
        if rule.json_kind == "integer":
            low, high = INTEGER_RANGES.get(type_name, INTEGER_RANGES["integer"])
            if not low <= value <= high:
                self.fail("value", f"{value} is out of range for {type_name}", expression)
            return
        if rule.json_kind != "string":
            return
        if not value:
            self.fail("value", f"A {type_name} must not be empty", expression)
        elif rule.pattern is not None and not rule.pattern.fullmatch(value):
            self.fail("value", f"{value!r} is not a valid {type_name}", expression)
        elif type_name in CALENDAR_TYPES and not self.is_calendar_date(value):
            self.fail("value", f"{value!r} is not a valid {type_name}: no such date", expression)

    @staticmethod
    def is_calendar_date(value: str) -> bool:
        match = FULL_DATE.match(value)
        if match is None:
            return True
        try:
            date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return False
        return True

    # -- per-item rules: bindings, fixed/pattern, references ---------------------------------------------------

    def item_rules(self, item: Any, element: dict[str, Any], type_name: str, expression: str,
                   scope: ReferenceScope, rules: ElementRules | None = None) -> None:
        """Bindings, reference targets and (profile pass) fixed/pattern values of one item."""
        if rules is None:
            rules = self.element_rules(element)
        profile_mode = self.profile_mode
        if rules.value_set is not None and (rules.binding_changed or not profile_mode):
            if rules.strength == "required":
                self.binding(item, type_name, rules.value_set, expression)
            elif rules.strength == "extensible" and type_name in ("Coding", "CodeableConcept"):
                self.extensible_binding(item, type_name, rules.value_set, expression)
        if type_name == "Reference" and isinstance(item, dict) and not profile_mode:
            self.reference_form(item, expression, scope)
            if self.bundle_references and isinstance(item.get("reference"), str):
                self.bundle_references[-1].append((item["reference"], expression))
        if type_name == "Reference" and isinstance(item, dict) and (rules.targets_changed or not profile_mode):
            self.reference_target(item, rules.targets, expression, scope)
        low, high = rules.bounds
        if (low is not None or high is not None) and item is not None:
            problem = outside_bounds(item, low[1] if low else None, high[1] if high else None)
            if problem is not None:
                self.fail("value", problem, expression)
        if profile_mode and rules.constraint is not None:
            kind, expected = rules.constraint
            matches = item == expected if kind == "fixed" else contains_pattern(item, expected)
            if not matches:
                self.fail("value", f"Value does not match the profile's {kind} value {expected!r}", expression)

    def binding(self, item: Any, type_name: str, value_set: str, expression: str) -> None:
        checker = BINDING_CHECKS.get(type_name)
        if checker is not None:
            checker(self, item, value_set, expression)

    def code_binding(self, item: Any, value_set: str, expression: str) -> None:
        if isinstance(item, str) and self.terminology.validate_code(value_set, None, item) is False:
            self.fail("code-invalid", f"Code '{item}' is not in the required value set {value_set}", expression)

    def coding_binding(self, item: Any, value_set: str, expression: str) -> None:
        if isinstance(item, dict) and self.coding_verdict(item, value_set) is False:
            self.fail("code-invalid", f"Coding {item.get('system')}|{item.get('code')} is not in the required "
                      f"value set {value_set}", expression + ".code")

    def coding_verdict(self, coding: dict[str, Any], value_set: str) -> bool | None:
        code = coding.get("code")
        if not isinstance(code, str):
            return None
        system = coding.get("system")
        return self.terminology.validate_code(value_set, system if isinstance(system, str) else None, code)

    def codeable_concept_binding(self, item: Any, value_set: str, expression: str) -> None:
        if not isinstance(item, dict):
            return
        codings = [c for c in item.get("coding", []) if isinstance(c, dict)] if isinstance(
            item.get("coding"), list) else []
        verdicts = [self.coding_verdict(coding, value_set) for coding in codings]
        if not codings:
            if self.terminology.expansion(value_set) is not None:
                self.fail("code-invalid", f"A coding from the required value set {value_set} is needed", expression)
            return
        if any(verdict is not False for verdict in verdicts):
            return
        for position, coding in enumerate(codings):
            self.fail("code-invalid", f"Coding {coding.get('system')}|{coding.get('code')} is not in the required "
                      f"value set {value_set}", f"{expression}.coding[{position}].code")

    def extensible_binding(self, item: Any, type_name: str, value_set: str, expression: str) -> None:
        """Extensible: other codes are fine, but a code from the value set's own system must be one of its codes."""
        systems = self.terminology.systems_of(value_set)
        if not systems or not isinstance(item, dict):
            return
        if type_name == "Coding":
            located = [(expression, item)]
        else:
            codings = item.get("coding") if isinstance(item.get("coding"), list) else []
            located = [(f"{expression}.coding[{n}]", c) for n, c in enumerate(codings) if isinstance(c, dict)]
        for path, coding in located:
            system = coding.get("system")
            if isinstance(system, str) and system in systems and self.coding_verdict(coding, value_set) is False:
                self.issues.append(warning(
                    "code-invalid",
                    f"Code '{coding.get('code')}' is from {coding.get('system')} but not in the value set {value_set}",
                    path + ".code",
                ))

    def reference_target(self, reference: dict[str, Any], target_profiles: Sequence[str], expression: str,
                         scope: ReferenceScope) -> None:
        allowed = {self.registry.type_of(url) for url in target_profiles}
        if not allowed or None in allowed or RESOURCE_TYPE in allowed:
            return  # any type, or a target profile this server cannot resolve: nothing to judge
        target = self.referenced_type(reference, scope)
        if target is not None and target not in allowed:
            self.fail("invalid", f"Reference to {target} is not allowed here (allowed: {', '.join(sorted(allowed))})",
                      expression + ".reference" if "reference" in reference else expression)

    def reference_form(self, reference: dict[str, Any], expression: str, scope: ReferenceScope) -> None:
        """ref-1 and the literal forms a server can follow: ``#id`` names a contained resource (``#`` alone, the
        container); a relative reference is ``Type/id`` of a resource type. Absolute URLs and URNs (resolved
        among a Bundle's entries) and conditional references (``Type?query``, resolved in a transaction) are
        left to the interaction that resolves them."""
        literal = reference.get("reference")
        if not isinstance(literal, str):
            return
        where = expression + ".reference"
        if literal.startswith("#"):
            if literal != "#" and literal[1:] not in scope.contained:
                self.fail("invalid", f"Reference {literal!r} names no contained resource (ref-1)", where)
            return
        if ":" in literal or "?" in literal:
            return
        match = RELATIVE_REFERENCE.match(literal)
        if match is None or not self.registry.is_resource_type(match[1]):
            self.fail("invalid", f"Reference {literal!r} is not Type/id of a FHIR resource type", where)

    def referenced_type(self, reference: dict[str, Any], scope: ReferenceScope) -> str | None:
        literal = reference.get("reference")
        if isinstance(literal, str):
            if literal.startswith("#"):
                return scope.contained.get(literal[1:]) or None
            if literal in scope.bundle:
                return scope.bundle[literal] or None
            match = LITERAL_REFERENCE.search(literal)
            if match and self.registry.is_resource_type(match[1]):
                return match[1]
            return None
        declared = reference.get("type")
        if isinstance(declared, str) and self.registry.is_resource_type(declared):
            return declared
        return None

    # -- slicing -----------------------------------------------------------------------------------------------

    def slices(
        self,
        items: list[tuple[str, Any]],
        sliced: dict[str, Any],
        name: str,
        slice_elements: list[dict[str, Any]],
        index: StructureIndex,
        expression: str,
        scope: ReferenceScope,
    ) -> None:
        """Assign items to slices by discriminator, validate each member against its slice, count the slices."""
        slicing = sliced.get("slicing") or {}
        discriminators = slicing.get("discriminator", [])
        members: dict[str, int] = {element["id"]: 0 for element in slice_elements}
        placed: list[tuple[str, Any, dict[str, Any] | None]] = []
        try:
            for path, item in items:
                found = matching_slice(item, slice_elements, discriminators, index, self.conforms) \
                    if discriminators else None
                placed.append((path, item, found))
        except Undecidable:
            return  # a discriminator this validator cannot follow: leave the slicing unjudged, never guess
        for path, item, matched in placed:
            if matched is None:
                if slicing.get("rules") == "closed":
                    self.fail("structure", f"The item matches none of the slices of '{name}' and the slicing "
                              "is closed", path)
                continue
            members[matched["id"]] += 1
            self.slice_member(item, matched, index, path, scope)
        for element in slice_elements:
            count, minimum, maximum = members[element["id"]], element.get("min", 0), element.get("max")
            label = f"Slice '{element.get('sliceName')}' of '{name}'"
            if count < minimum:
                self.fail("required", f"{label} is required (min {minimum}, found {count})",
                          f"{expression}.{name}")
            elif not max_allows(maximum, count):
                self.fail("structure", f"{label} allows at most {maximum} (found {count})",
                          f"{expression}.{name}")

    def slice_member(self, item: Any, element: dict[str, Any], index: StructureIndex, path: str,
                     scope: ReferenceScope) -> None:
        types = element.get("type", [])
        type_name = types[0]["code"] if types else ""
        self.item_rules(item, element, type_name, path, scope)
        if index.has_children(element["id"]):
            self.obj(item, index, element["id"], path, scope)
        for profile_url in (p for t in types for p in t.get("profile", ())):
            profile_index = self.registry.index(profile_url)
            if profile_index is not None and profile_index is not index and "snapshot" in profile_index.definition:
                self.obj(item, profile_index, profile_index.root_id, path, scope)

    def conforms(self, value: Any, url: str) -> bool:
        """Does a value meet a profile (a ``profile`` discriminator)? Judged by a silent profile pass."""
        profile_index = self.registry.index(url)
        if profile_index is None or "snapshot" not in profile_index.definition:
            return False
        if isinstance(value, dict) and "resourceType" in value and value["resourceType"] != profile_index.root_id:
            return False
        run = _Run(self.validator, profile_mode=True)
        run.resources = self.resources
        run.obj(value, profile_index, profile_index.root_id, "", EMPTY_SCOPE,
                is_root=isinstance(value, dict) and "resourceType" in value)
        return not any(issue.is_error for issue in run.issues)

    def type_profiles(self, item: Any, element: dict[str, Any], path: str, scope: ReferenceScope) -> None:
        """A profile on an element's type (``Parameters.parameter.resource`` of a given profile): walk the value
        against it; a resource of a type none of the profiles constrains fails outright."""
        urls = [p for t in element.get("type", ()) for p in t.get("profile", ())]
        indexes = [i for i in (self.registry.index(u) for u in urls) if i is not None and "snapshot" in i.definition]
        if not indexes or not isinstance(item, dict):
            return
        is_resource = "resourceType" in item
        if is_resource:
            fitting = [i for i in indexes if i.root_id == item["resourceType"]]
            if not fitting:
                self.fail("invalid", f"A {item['resourceType']} is not what the profile requires here "
                          f"({', '.join(urls)})", path)
                return
            indexes = fitting[:1]
        for profile_index in indexes[:1]:
            self.obj(item, profile_index, profile_index.root_id, path, scope, is_root=is_resource)


BINDING_CHECKS: dict[str, Callable[[_Run, Any, str, str], None]] = {
    "code": _Run.code_binding,
    "string": _Run.code_binding,
    "uri": _Run.code_binding,
    "Coding": _Run.coding_binding,
    "Quantity": _Run.coding_binding,  # a Quantity bound to units is judged by its system and code
    "CodeableConcept": _Run.codeable_concept_binding,
}
