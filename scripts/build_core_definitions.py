"""Build the core FHIR R4 definitions the server ships in ``fhir_server/fhir/data/``.

Usage: ``python scripts/build_core_definitions.py <unpacked hl7.fhir.r4.examples package dir>``

The server validates against the official StructureDefinitions, but the official package is large (hundreds of
MB with examples) and is not available at run time. This script keeps only what validation and snapshot
generation need and writes two gzipped JSON files:

- ``structure-definitions.json.gz``: a list of the base resource, complex and primitive type definitions
  (derivation ``specialization`` plus the abstract roots), stripped of narrative and mapping text;
- ``core-profiles.json.gz``: the profiles and extension definitions the base specification itself publishes
  (``vitalsigns``, ``bp``, ``patient-birthPlace``...), snapshots only, stripped the same way;
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fhir_server.fhir.definitions import DATA_DIR, canonical  # noqa: E402
from fhir_server.fhir.terminology import ValueSetExpander, displays_of  # noqa: E402

OUTPUT_DIR = DATA_DIR

ROOT_TYPES = {"Resource", "DomainResource", "Element", "BackboneElement"}
KEPT_KINDS = {"resource", "complex-type", "primitive-type"}

KEPT_SD_KEYS = (
    "resourceType", "id", "url", "version", "name", "status", "fhirVersion", "kind", "abstract", "type",
    "baseDefinition", "derivation", "context", "contextInvariant",
)
KEPT_ELEMENT_KEYS = (
    "id", "path", "sliceName", "short", "definition", "min", "max", "base", "type", "contentReference",
    "binding", "slicing", "isModifier", "isModifierReason", "isSummary", "maxLength", "mustSupport", "constraint",
)
# Element keys kept by prefix: fixed[x], pattern[x], minValue[x], maxValue[x].
KEPT_ELEMENT_PREFIXES = ("fixed", "pattern", "minValue", "maxValue")
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
        if key.startswith(KEPT_ELEMENT_PREFIXES):
            out[key] = value
    if "type" in out:
        out["type"] = [strip_type(t) for t in out["type"]]
    if "binding" in out:
        out["binding"] = {k: out["binding"][k] for k in ("strength", "valueSet", "description") if k in out["binding"]}
    if "constraint" in out:
        kept = [
            {k: c[k] for k in ("key", "severity", "human", "expression") if k in c}
            for c in out["constraint"]
            if c.get("key") not in STRUCTURAL_CONSTRAINTS and "expression" in c
        ]
        if kept:
            out["constraint"] = kept
        else:
            del out["constraint"]
    return out


def strip_definition(sd: dict[str, Any], parts: tuple[str, ...] = ("snapshot", "differential")) -> dict[str, Any]:
    out = {k: sd[k] for k in KEPT_SD_KEYS if k in sd}
    for part in parts:
        if part in sd:
            out[part] = {"element": [strip_element(e) for e in sd[part]["element"]]}
    return out


def is_kept(sd: dict[str, Any]) -> bool:
    if sd.get("type") in ROOT_TYPES and sd.get("derivation") in (None, "specialization"):
        return True
    return sd.get("kind") in KEPT_KINDS and sd.get("derivation") == "specialization"


def is_core_profile(sd: dict[str, Any]) -> bool:
    """A profile or extension definition of the base specification (``vitalsigns``, ``patient-birthPlace``)."""
    return sd.get("derivation") == "constraint" and sd.get("kind") in ("resource", "complex-type") and "snapshot" in sd


def load_by_type(package: Path, resource_type: str) -> Iterable[dict[str, Any]]:
    for path in sorted(package.glob(f"{resource_type}-*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        if resource.get("resourceType") == resource_type:
            yield resource


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
    all_definitions = list(load_by_type(package, "StructureDefinition"))
    definitions = [strip_definition(sd) for sd in all_definitions if is_kept(sd)]
    profiles = [strip_definition(sd, ("snapshot",)) for sd in all_definitions if is_core_profile(sd)]
    code_systems = {cs["url"]: cs for cs in load_by_type(package, "CodeSystem") if "url" in cs}
    value_sets = {vs["url"]: vs for vs in load_by_type(package, "ValueSet") if "url" in vs}
    expander = ValueSetExpander(code_systems, value_sets)

    expansions: dict[str, dict[str, Any]] = {}
    systems_used: set[str] = set()
    for url in sorted(required_bindings(definitions + profiles)):
        codes = expander.expand(url)
        if codes is None:
            expansions[url] = {"unexpandable": True}
            continue
        expansions[url] = {"codes": sorted([system, code] for system, code in codes)}
        systems_used |= {system for system, _ in codes}
    displays = {system: displays_of(code_systems[system]) for system in sorted(systems_used) if system in code_systems}

    output_dir.mkdir(parents=True, exist_ok=True)
    write_gzipped_json(output_dir / "structure-definitions.json.gz", sorted(definitions, key=lambda sd: sd["url"]))
    write_gzipped_json(output_dir / "core-profiles.json.gz", sorted(profiles, key=lambda sd: sd["url"]))
    write_gzipped_json(output_dir / "required-valuesets.json.gz", expansions)
    write_gzipped_json(output_dir / "code-displays.json.gz", displays)
    unexpandable = sorted(url for url, entry in expansions.items() if entry.get("unexpandable"))
    print(f"{len(definitions)} StructureDefinitions, {len(profiles)} core profiles, {len(expansions)} required ValueSets "
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
