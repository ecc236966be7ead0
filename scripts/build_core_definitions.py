"""Build the core FHIR R4 definitions the server ships in ``fhir_server/fhir/data/``.

Usage: ``python scripts/build_core_definitions.py <unpacked hl7.fhir.r4.examples package dir>``

The server validates against the official StructureDefinitions, but the official package is large (hundreds of
MB with examples) and is not available at run time. This script keeps only what validation and snapshot
generation need and writes two gzipped JSON files:

- ``structure-definitions.json.gz``: a list of the base resource, complex and primitive type definitions
  (derivation ``specialization`` plus the abstract roots), stripped of narrative and mapping text;
- ``required-valuesets.json.gz``: ``{valueSetUrl: {"codes": [[system, code], ...]}}`` for every ValueSet
  reached by a ``required`` binding, plus ``{"unexpandable": true}`` for those this script cannot expand (the
  validator skips them rather than rejecting codes it cannot judge);
- ``code-displays.json.gz``: ``{system: {code: display}}`` for the code systems of those value sets, so error
  messages and UIs can name a code.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any, Iterable

OUTPUT_DIR = Path(__file__).resolve().parent.parent / "fhir_server" / "fhir" / "data"

ROOT_TYPES = {"Resource", "DomainResource", "Element", "BackboneElement"}
KEPT_KINDS = {"resource", "complex-type", "primitive-type"}

KEPT_SD_KEYS = (
    "resourceType", "id", "url", "version", "name", "status", "fhirVersion", "kind", "abstract", "type",
    "baseDefinition", "derivation",
)
KEPT_ELEMENT_KEYS = (
    "id", "path", "sliceName", "short", "definition", "min", "max", "base", "type", "contentReference",
    "binding", "slicing", "isModifier", "isSummary", "maxLength", "mustSupport", "constraint",
)
KEPT_TYPE_EXTENSIONS = {
    "http://hl7.org/fhir/StructureDefinition/regex",
    "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type",
}
# ele-1 / ext-1 are checked structurally by the validator; carrying them on every element only adds bulk.
STRUCTURAL_CONSTRAINTS = {"ele-1", "ext-1"}


def strip_type(type_ref: dict[str, Any]) -> dict[str, Any]:
    """Keep a type's code and profiles, and only the extensions that carry the primitive regex / FHIR type."""
    out = {k: type_ref[k] for k in ("code", "profile", "targetProfile") if k in type_ref}
    extensions = [e for e in type_ref.get("extension", []) if e.get("url") in KEPT_TYPE_EXTENSIONS]
    if extensions:
        out["extension"] = extensions
    return out


def strip_element(element: dict[str, Any]) -> dict[str, Any]:
    """Keep the element facts validation and snapshot generation use; drop mappings, comments and examples."""
    out: dict[str, Any] = {}
    for key in KEPT_ELEMENT_KEYS:
        if key in element:
            out[key] = element[key]
    for key, value in element.items():
        if key.startswith(("fixed", "pattern")):
            out[key] = value
    if "type" in out:
        out["type"] = [strip_type(t) for t in out["type"]]
    if "binding" in out:
        out["binding"] = {k: out["binding"][k] for k in ("strength", "valueSet", "description") if k in out["binding"]}
    if "constraint" in out:
        kept = [
            {k: c[k] for k in ("key", "severity", "expression") if k in c}
            for c in out["constraint"]
            if c.get("key") not in STRUCTURAL_CONSTRAINTS and "expression" in c
        ]
        if kept:
            out["constraint"] = kept
        else:
            del out["constraint"]
    return out


def strip_definition(sd: dict[str, Any]) -> dict[str, Any]:
    out = {k: sd[k] for k in KEPT_SD_KEYS if k in sd}
    for part in ("snapshot", "differential"):
        if part in sd:
            out[part] = {"element": [strip_element(e) for e in sd[part]["element"]]}
    return out


def is_kept(sd: dict[str, Any]) -> bool:
    if sd.get("type") in ROOT_TYPES and sd.get("derivation") in (None, "specialization"):
        return True
    return sd.get("kind") in KEPT_KINDS and sd.get("derivation") == "specialization"


def load_by_type(package: Path, resource_type: str) -> Iterable[dict[str, Any]]:
    for path in sorted(package.glob(f"{resource_type}-*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        if resource.get("resourceType") == resource_type:
            yield resource


def canonical(url: str) -> str:
    return url.split("|", 1)[0]


class ValueSetExpander:
    """Expands the simple ValueSet composes found in the core package (system includes, concept lists, is-a)."""

    def __init__(self, code_systems: dict[str, dict[str, Any]], value_sets: dict[str, dict[str, Any]]) -> None:
        self.code_systems = code_systems
        self.value_sets = value_sets

    def expand(self, url: str, seen: frozenset[str] = frozenset()) -> set[tuple[str, str]] | None:
        """The (system, code) pairs of a value set, or None when some part cannot be expanded here."""
        value_set = self.value_sets.get(canonical(url))
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
        if code_system is None or code_system.get("content") not in ("complete", None):
            return None
        return {(system, code) for code in self.all_codes(code_system.get("concept", []))}

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
        codes = set(self.all_codes(root.get("concept", [])))
        if only["op"] == "is-a":
            codes.add(root["code"])
        return {(system, code) for code in codes}

    def all_codes(self, concepts: list[dict[str, Any]]) -> Iterable[str]:
        for concept in concepts:
            yield concept["code"]
            yield from self.all_codes(concept.get("concept", []))


def find_concept(concepts: list[dict[str, Any]], code: str | None) -> dict[str, Any] | None:
    for concept in concepts:
        if concept.get("code") == code:
            return concept
        found = find_concept(concept.get("concept", []), code)
        if found is not None:
            return found
    return None


def displays_of(code_system: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}

    def walk(concepts: list[dict[str, Any]]) -> None:
        for concept in concepts:
            if concept.get("display"):
                out[concept["code"]] = concept["display"]
            walk(concept.get("concept", []))

    walk(code_system.get("concept", []))
    return out


def required_bindings(definitions: list[dict[str, Any]]) -> set[str]:
    return {
        canonical(element["binding"]["valueSet"])
        for sd in definitions
        for element in sd.get("snapshot", {}).get("element", [])
        if element.get("binding", {}).get("strength") == "required" and element["binding"].get("valueSet")
    }


def write_gzipped_json(path: Path, data: Any) -> None:
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")
    # mtime=0 keeps the output byte-identical across runs, so regenerating does not churn git.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(payload)


def build(package: Path, output_dir: Path = OUTPUT_DIR) -> None:
    definitions = [strip_definition(sd) for sd in load_by_type(package, "StructureDefinition") if is_kept(sd)]
    code_systems = {cs["url"]: cs for cs in load_by_type(package, "CodeSystem") if "url" in cs}
    value_sets = {vs["url"]: vs for vs in load_by_type(package, "ValueSet") if "url" in vs}
    expander = ValueSetExpander(code_systems, value_sets)

    expansions: dict[str, dict[str, Any]] = {}
    systems_used: set[str] = set()
    for url in sorted(required_bindings(definitions)):
        codes = expander.expand(url)
        if codes is None:
            expansions[url] = {"unexpandable": True}
            continue
        expansions[url] = {"codes": sorted([system, code] for system, code in codes)}
        systems_used |= {system for system, _ in codes}
    displays = {system: displays_of(code_systems[system]) for system in sorted(systems_used) if system in code_systems}

    output_dir.mkdir(parents=True, exist_ok=True)
    write_gzipped_json(output_dir / "structure-definitions.json.gz", sorted(definitions, key=lambda sd: sd["url"]))
    write_gzipped_json(output_dir / "required-valuesets.json.gz", expansions)
    write_gzipped_json(output_dir / "code-displays.json.gz", displays)
    unexpandable = sorted(url for url, entry in expansions.items() if entry.get("unexpandable"))
    print(f"{len(definitions)} StructureDefinitions, {len(expansions)} required ValueSets "
          f"({len(unexpandable)} unexpandable)")
    for url in unexpandable:
        print(f"  unexpandable: {url}")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    build(Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
