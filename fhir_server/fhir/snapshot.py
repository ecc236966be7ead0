"""Snapshot generation for the profiles this server hosts.

Profiles are written by hand as differentials (only what they change), but validators, clients and the
server's own element lookup need the snapshot: every element, with the constraints of the base and the
profile merged. Generating it keeps the two from drifting apart; the command line

    python -m fhir_server.fhir.snapshot profiles/

regenerates every snapshot in place, so editing a differential is one command away from a current profile.

The rules followed are those of FHIR R4 for ``derivation = constraint`` profiles:

* the snapshot starts as a copy of the base definition's snapshot, so element order and ``base`` come from it;
* a differential element is merged onto the snapshot element with the same ``id``;
* an element inside a complex datatype that the base does not unroll (``ServiceRequest.code.coding``) is
  reached by unrolling the datatype's children from its own StructureDefinition, with ids and paths rebased;
* a slice (``id`` ``path:sliceName``) starts as a copy of the sliced element, children included, and is
  placed after the sliced element's children and any earlier slices;
* a choice element renamed for its one remaining type (``Observation.valueQuantity``) is ``value[x]`` narrowed to
  that type, and its children (``Observation.valueQuantity.value``) are those of ``value[x]``;
* an element of type ``Resource`` (``Bundle.entry.resource``, ``Parameters.parameter.resource``) may be narrowed
  to a resource type, whose elements can then be constrained below it.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Resolver = Callable[[str], "dict[str, Any] | None"]

# Differential keys that are identity, not constraints: they are never copied onto the snapshot element.
_IDENTITY_KEYS = frozenset({"id", "path", "base"})
# List keys a profile adds to (its invariants join the base's); every other key replaces the base value as a
# whole, because a binding or a type list is one decision, not a patch.
_LIST_KEYS_APPENDED = frozenset({"constraint", "condition", "mapping", "alias", "code", "example"})
_UNBOUNDED = "*"


class SnapshotError(ValueError):
    """A differential that cannot be applied to its base (unknown element, widening a cardinality, ...)."""


def generate_snapshot(profile: dict[str, Any], resolve: Resolver) -> dict[str, Any]:
    """Return a copy of ``profile`` whose ``snapshot`` is built from its differential over its base.

    ``resolve(url_or_type)`` returns a StructureDefinition (with a snapshot) by canonical URL or type name; it
    is called for the base definition and for any datatype whose children must be unrolled.
    """
    base_url = profile.get("baseDefinition")
    if not base_url:
        raise SnapshotError(f"{profile.get('url')}: a constraint profile needs a baseDefinition")
    base = _resolve_with_snapshot(resolve, base_url)
    if base is None:
        raise SnapshotError(f"{profile.get('url')}: base definition {base_url} not found")
    builder = _SnapshotBuilder(copy.deepcopy(base["snapshot"]["element"]), resolve)
    for differential_element in profile.get("differential", {}).get("element", []):
        builder.apply(differential_element)
    result = copy.deepcopy(profile)
    result["snapshot"] = {"element": builder.elements}
    return result


def _resolve_with_snapshot(resolve: Resolver, url_or_type: str) -> dict[str, Any] | None:
    definition = resolve(url_or_type)
    if definition is None or not definition.get("snapshot", {}).get("element"):
        return None
    return definition


def _element_id(element: dict[str, Any]) -> str:
    """An element's id; R4 differentials may leave it out, in which case the path (no slices) is the id."""
    return element.get("id") or element["path"]


def _split_last_segment(element_id: str) -> tuple[str, str]:
    """``A.b:s.c`` -> (``A.b:s``, ``c``). Slice names in this project never contain a dot."""
    parent, _, last = element_id.rpartition(".")
    return parent, last


class _SnapshotBuilder:
    """Holds the snapshot under construction and places each differential element in it."""

    def __init__(self, elements: list[dict[str, Any]], resolve: Resolver) -> None:
        self.elements = elements
        self._resolve = resolve

    # --- lookup -------------------------------------------------------------------------------------------

    def _index_of(self, element_id: str) -> int | None:
        for index, element in enumerate(self.elements):
            if _element_id(element) == element_id:
                return index
        return None

    def _subtree_end(self, index: int) -> int:
        """Index just past the element at ``index``, its children, its slices and theirs."""
        element_id = _element_id(self.elements[index])
        end = index + 1
        while end < len(self.elements) and _element_id(self.elements[end]).startswith(
            (element_id + ".", element_id + ":")
        ):
            end += 1
        return end

    def _children_end(self, index: int) -> int:
        """Index just past the element's own children (not its slices)."""
        element_id = _element_id(self.elements[index])
        end = index + 1
        while end < len(self.elements) and _element_id(self.elements[end]).startswith(element_id + "."):
            end += 1
        return end

    # --- placing ------------------------------------------------------------------------------------------

    def apply(self, differential_element: dict[str, Any]) -> None:
        """Merge one differential element onto its snapshot element, creating that element first if needed."""
        element_id, renamed_type = self._unrename(_element_id(differential_element))
        index = self._ensure(element_id)
        if renamed_type is not None and "type" not in differential_element:
            differential_element = {**differential_element, "type": [{"code": renamed_type}]}
        _merge(self.elements[index], differential_element, self._is_resource_type)

    def _is_resource_type(self, code: str) -> bool:
        definition = self._resolve(code)
        return definition is not None and definition.get("kind") == "resource"

    def _unrename(self, element_id: str) -> tuple[str, str | None]:
        """``Observation.valueQuantity.value`` -> (``Observation.value[x].value``, None); the renamed element itself
        also answers its type (``Quantity``), which the differential narrows ``value[x]`` to."""
        segments = element_id.split(".")
        renamed_type = None
        for position in range(1, len(segments)):
            prefix = ".".join(segments[:position])
            name, colon, slice_name = segments[position].partition(":")
            if self._index_of(f"{prefix}.{segments[position]}") is not None:
                continue
            for candidate in (e for e in self.elements if _element_id(e).startswith(prefix + ".")):
                stem = _element_id(candidate)[len(prefix) + 1:]
                if not stem.endswith("[x]") or "." in stem or ":" in stem:
                    continue
                suffix = name[len(stem) - 3:]
                if name.startswith(stem[:-3]) and suffix[:1].isupper():
                    codes = {t.get("code") for t in candidate.get("type", ())}
                    code = suffix if suffix in codes else suffix[0].lower() + suffix[1:]
                    segments[position] = stem + colon + slice_name
                    if position == len(segments) - 1:
                        renamed_type = code
                    break
        return ".".join(segments), renamed_type

    def _ensure(self, element_id: str) -> int:
        """Index of the element ``element_id``, creating it (unrolling a datatype, adding a slice) if needed."""
        index = self._index_of(element_id)
        if index is not None:
            return index
        parent_id, last = _split_last_segment(element_id)
        if not parent_id:
            raise SnapshotError(f"{element_id}: not an element of the base definition")
        name, _, slice_name = last.partition(":")
        if slice_name:
            return self._add_slice(f"{parent_id}.{name}", slice_name)
        parent_index = self._ensure(parent_id)
        if self._children_end(parent_index) == parent_index + 1:
            self._unroll(parent_index)
        index = self._index_of(element_id)
        if index is None:
            raise SnapshotError(f"{element_id}: no such element in {parent_id}")
        return index

    def _add_slice(self, sliced_id: str, slice_name: str) -> int:
        sliced_index = self._ensure(sliced_id)
        sliced = self.elements[sliced_index]
        if "slicing" not in sliced:
            raise SnapshotError(f"{sliced_id}:{slice_name}: {sliced_id} is not sliced (add its slicing first)")
        slice_id = f"{sliced_id}:{slice_name}"
        # A slice is the sliced element (children included) under a new name: it inherits every constraint.
        subtree = [copy.deepcopy(e) for e in self.elements[sliced_index : self._children_end(sliced_index)]]
        head = subtree[0]
        head.pop("slicing", None)
        head["id"] = slice_id
        head["sliceName"] = slice_name
        for child in subtree[1:]:
            child["id"] = slice_id + _element_id(child)[len(sliced_id) :]
        insert_at = self._subtree_end(sliced_index)
        self.elements[insert_at:insert_at] = subtree
        return insert_at

    def _unroll(self, index: int) -> None:
        """Insert the children of the element at ``index``, taken from its datatype or content reference."""
        parent = self.elements[index]
        (root_id, root_path), children = self._children_source(parent)
        rebased = []
        for child in children:
            copied = copy.deepcopy(child)
            copied["id"] = _element_id(parent) + _element_id(child)[len(root_id) :]
            copied["path"] = parent["path"] + child["path"][len(root_path) :]
            rebased.append(copied)
        self.elements[index + 1 : index + 1] = rebased

    def _children_source(self, parent: dict[str, Any]) -> tuple[tuple[str, str], list[dict[str, Any]]]:
        """The (id, path) root to rebase from, and the elements to copy under ``parent``."""
        reference = parent.get("contentReference")
        if reference:
            target_id = reference.partition("#")[2]
            target_index = self._index_of(target_id)
            if target_index is None:
                raise SnapshotError(f"{_element_id(parent)}: content reference {reference} not found")
            target = self.elements[target_index]
            return (target_id, target["path"]), self.elements[target_index + 1 : self._children_end(target_index)]
        types = parent.get("type", [])
        if len(types) != 1:
            raise SnapshotError(
                f"{_element_id(parent)}: cannot constrain children of an element with {len(types)} types;"
                " narrow its type to one first"
            )
        root, *children = self._datatype_definition(types[0])["snapshot"]["element"]
        return (_element_id(root), root["path"]), children

    def _datatype_definition(self, element_type: dict[str, Any]) -> dict[str, Any]:
        """The definition to unroll: the type's profile when it is resolvable, else the type itself."""
        for profile_url in element_type.get("profile", []):
            definition = _resolve_with_snapshot(self._resolve, profile_url)
            if definition is not None:
                return definition
        definition = _resolve_with_snapshot(self._resolve, element_type["code"])
        if definition is None:
            raise SnapshotError(f"datatype {element_type['code']} not found")
        return definition


def _merge(element: dict[str, Any], differential_element: dict[str, Any],
           is_resource_type: Callable[[str], bool] = lambda code: False) -> None:
    """Apply one differential element's constraints onto its snapshot element, refusing any loosening."""
    element_id = _element_id(element)
    for key, value in differential_element.items():
        if key in _IDENTITY_KEYS:
            continue
        if key == "type":
            _check_type_narrowing(element_id, element.get("type", []), value, is_resource_type)
        if key in _LIST_KEYS_APPENDED and isinstance(element.get(key), list):
            present = element[key]
            element[key] = present + [item for item in value if item not in present]
            continue
        element[key] = copy.deepcopy(value)
    _check_cardinality(element_id, element)


_ANY_RESOURCE = "http://hl7.org/fhir/StructureDefinition/Resource"


def _check_type_narrowing(element_id: str, base_types: list[dict[str, Any]], types: list[dict[str, Any]],
                          is_resource_type: Callable[[str], bool] = lambda code: False) -> None:
    """A profile may only keep some of the base's types (a ``Resource`` may become one resource type), and only
    some of a reference's allowed targets."""
    base_by_code = {t.get("code"): t for t in base_types}
    for element_type in types:
        code = element_type.get("code")
        if "Resource" in base_by_code and code not in base_by_code and is_resource_type(code):
            continue
        if base_by_code and code not in base_by_code:
            raise SnapshotError(f"{element_id}: type {code} is not one of {sorted(base_by_code)}")
        base_targets = set(base_by_code.get(code, {}).get("targetProfile", []))
        if not base_targets or _ANY_RESOURCE in base_targets:
            continue
        widened = set(element_type.get("targetProfile", [])) - base_targets
        if widened:
            raise SnapshotError(f"{element_id}: reference targets {sorted(widened)} are not allowed by the base")


def _max_as_number(maximum: str) -> float:
    return float("inf") if maximum == _UNBOUNDED else int(maximum)


def _check_cardinality(element_id: str, element: dict[str, Any]) -> None:
    minimum, maximum = element.get("min", 0), element.get("max", _UNBOUNDED)
    if minimum > _max_as_number(maximum):
        raise SnapshotError(f"{element_id}: min {minimum} exceeds max {maximum}")
    base_max = element.get("base", {}).get("max")
    if base_max is not None and _max_as_number(maximum) > _max_as_number(base_max):
        raise SnapshotError(f"{element_id}: max {maximum} widens the base max {base_max}")


# --- command line ------------------------------------------------------------------------------------------


def dump_json(resource: dict[str, Any]) -> str:
    """The one on-disk layout of profiles/: sorted keys, indent 2, trailing newline (stable diffs)."""
    return json.dumps(resource, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def chain_resolvers(*resolvers: Resolver) -> Resolver:
    """A resolver asking each of ``resolvers`` in turn: local profiles first, then the core definitions."""

    def resolve(url_or_type: str) -> dict[str, Any] | None:
        for resolver in resolvers:
            found = resolver(url_or_type)
            if found is not None:
                return found
        return None

    return resolve


def directory_resolver(definitions: Iterable[dict[str, Any]]) -> Resolver:
    """Resolve StructureDefinitions of a folder (our extensions, say) by canonical URL."""
    by_url = {d["url"]: d for d in definitions if d.get("resourceType") == "StructureDefinition"}
    return by_url.get


def profile_files(directory: Path) -> list[Path]:
    """The StructureDefinitions of a profiles folder, in a stable order."""
    return sorted(directory.glob("StructureDefinition-*.json"))


def core_resolver() -> Resolver:
    """Resolver over the R4 core definitions shipped with the server."""
    from fhir_server.fhir.definitions import core_registry

    return core_registry().get


def regenerate_directory(directory: Path, core: Resolver | None = None) -> list[Path]:
    """Regenerate the snapshot of every StructureDefinition in ``directory``; return the files that changed."""
    files = profile_files(directory)
    definitions = {path: json.loads(path.read_text(encoding="utf-8")) for path in files}
    resolve = chain_resolvers(directory_resolver(definitions.values()), core or core_resolver())
    changed = []
    for path, definition in definitions.items():
        text = dump_json(generate_snapshot(definition, resolve))
        if text != path.read_text(encoding="utf-8"):
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m fhir_server.fhir.snapshot PROFILES_DIRECTORY``: regenerate, and name the files it changed."""
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m fhir_server.fhir.snapshot PROFILES_DIRECTORY", file=sys.stderr)
        return 2
    for path in regenerate_directory(Path(arguments[0])):
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
