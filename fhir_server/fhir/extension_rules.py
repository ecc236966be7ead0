"""Extensions checked against their definitions: where they may appear, modifier or not, value and cardinality.

An extension whose URL the server knows (an extension definition of the R4 core, or one of the project's) must
be used in one of its definition's ``context`` elements, and in ``modifierExtension`` exactly when its definition
is a modifier. A core definition's value type and cardinality are checked here, by walking the extension
against the definition's snapshot; the project's own are checked by the profile pass, as the slices of the
profiles that use them (so a violation is a profile failure, 422, reported once). An unknown URL is a warning:
anyone may define extensions, and a server that cannot read one may still store it; an unknown *modifier*
extension is an error, because its meaning changes that of the element it is on (R4 2.17: a system SHALL NOT
ignore a modifier extension it does not understand).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from fhir_server.fhir.definitions import DefinitionRegistry, canonical
from fhir_server.fhir.findings import Findings

# Cross-version extensions (R4 2.17.4 / the inter-version rules): their definitions are implied by the other
# version's element, e.g. http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.url.
CROSS_VERSION = re.compile(r"http://hl7\.org/fhir/\d\.\d/StructureDefinition/extension-[A-Za-z]+(\.[A-Za-z\[\]]+)*")
# The specification's own publishing extensions, whose declared contexts its own artifacts do not keep (fhir-type
# on ElementDefinition.type rather than .code, normative-version on CodeSystems): never judged by context.
PUBLISHING_EXTENSIONS = frozenset({
    "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type",
    "http://hl7.org/fhir/StructureDefinition/structuredefinition-normative-version",
    "http://hl7.org/fhir/StructureDefinition/regex",
})
# Contexts that admit any element: the HL7 definitions use them for extensions that may go anywhere.
EVERYWHERE = frozenset({"Element", "Base"})


def type_ancestry(registry: DefinitionRegistry, type_name: str) -> list[str]:
    """``SimpleQuantity`` -> [SimpleQuantity, Quantity, Element]; ``Patient`` -> [Patient, DomainResource, Resource]."""
    names: list[str] = []
    current = registry.get(type_name)
    while current is not None and current.get("type") not in names:
        names.append(current.get("name") if current.get("derivation") == "constraint" else current["type"])
        if current.get("derivation") == "constraint":
            names.append(current["type"])
        base = current.get("baseDefinition")
        current = registry.get(base) if base else None
    return names


def element_types(registry: DefinitionRegistry, path: str) -> set[str]:
    """The types of a core element by path (``Patient.birthDate`` -> {date}), for contexts named by path."""
    element = registry.element(path.split(".", 1)[0], path)
    if element is None:
        return set()
    return {t.get("code", "") for t in element.get("type", ())}


def context_allows(registry: DefinitionRegistry, definition: dict[str, Any], parent_path: str,
                   parent_type: str, parent_url: str | None) -> bool:
    """Does one of the definition's contexts admit an extension on this parent?"""
    contexts = definition.get("context") or []
    if not contexts:
        return True
    ancestry = type_ancestry(registry, parent_type) if parent_type else []
    for context in contexts:
        kind, expression = context.get("type"), context.get("expression", "")
        if kind == "extension":
            if parent_url is not None and canonical(expression) == canonical(parent_url):
                return True
            continue
        if kind != "element":
            return True  # fhirpath contexts: not judged here
        if expression in EVERYWHERE or expression == parent_path or expression in ancestry:
            return True
        if "." in expression and parent_type and parent_type in element_types(registry, expression):
            return True  # a context by path, met by a value of that element's type (``Patient.birthDate``)
    return False


def check_extensions(
    findings: Findings,
    items: Iterable[tuple[str, Any]],
    *,
    modifier: bool,
    parent_path: str,
    parent_type: str,
    parent_url: str | None,
    validate_value: Callable[[Any, str, str], None],
) -> None:
    """Check each ``(path, extension)`` of one ``extension`` / ``modifierExtension`` array.

    ``parent_path``/``parent_type``: the element extended (``Patient.contact`` / ``BackboneElement``);
    ``parent_url``: the url of the extension extended, for a nested one; ``validate_value(item, url, path)``
    walks an extension against a core definition's snapshot.
    """
    registry = findings.registry
    hosted = set(registry.hosted_profiles())
    for path, item in items:
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or ":" not in url:
            continue  # relative urls name the slices of a complex extension: its definition judges them
        if CROSS_VERSION.fullmatch(url):
            continue
        definition = registry.get(url)
        if definition is None or definition.get("type") != "Extension" or "snapshot" not in definition:
            if modifier:
                findings.fail("extension", f"Unknown modifier extension {url}: it cannot be ignored", path)
            else:
                findings.warn("extension", f"Unknown extension {url}", path)
            continue
        is_modifier = bool(definition["snapshot"]["element"][0].get("isModifier"))
        if is_modifier and not modifier:
            findings.fail("extension", f"Extension {url} is a modifier: it belongs in modifierExtension", path)
        elif modifier and not is_modifier:
            findings.fail("extension", f"Extension {url} is not a modifier: it belongs in extension", path)
        if canonical(url) not in PUBLISHING_EXTENSIONS and not context_allows(
                registry, definition, parent_path, parent_type, parent_url):
            allowed = ", ".join(c.get("expression", "") for c in definition.get("context", ()))
            findings.fail("extension", f"Extension {url} is not allowed on {parent_path} (contexts: {allowed})",
                          path)
        if canonical(url) not in hosted:
            validate_value(item, canonical(url), path)
