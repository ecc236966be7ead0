"""FHIRPath invariants (``ElementDefinition.constraint``) evaluated with fhirpathpy.

The StructureDefinitions state many rules only as FHIRPath (``per-1``: a period's start is not after its end;
``pat-1``: a contact has some detail; ``dom-3``: every contained resource is referenced...). Each expression is
compiled once, on first use, and cached per (definition, key): compiling all of the core's is seconds of work
that most requests never need.

fhirpathpy does not implement every function the R4 definitions use. ``hasValue()`` and a silent ``trace()``
are supplied here; an expression the engine still cannot compile or evaluate is *skipped*, never reported
against the resource (a validator that rejects valid resources because of its own gaps is worse than one that
misses a rule), and recorded in ``InvariantEngine.skipped`` so the gap is visible.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

LOG = logging.getLogger(__name__)
R4_MODEL = models["r4"]
# Invariants the structural walk checks itself, with a precise location (ref-1: the contained target exists;
# ele-1/ext-1: no empty elements, value or children; dom-3: contained resources referenced, which fhirpathpy
# cannot evaluate). Evaluating them again would report them twice.
STRUCTURAL_KEYS = frozenset({"ele-1", "ext-1", "ref-1", "dom-3"})
# Invariants the core marks as best practice (``elementdefinition-bestpractice``): recommendations the reference
# validator reports only when asked to, not problems of the resource (dom-6: "should have narrative").
BEST_PRACTICE_KEYS = frozenset({"dom-6", "con-3"})
NOT_EVALUATED = STRUCTURAL_KEYS | BEST_PRACTICE_KEYS


def _has_value(inputs: list[Any]) -> list[bool]:
    """FHIR's ``hasValue()``: one primitive that carries a value (not only extensions)."""
    return [len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], (dict, list))]


def _trace(inputs: list[Any], *_: Any) -> list[Any]:
    """``trace()`` returns its input; the engine's default prints it, which a server must not do."""
    return inputs


FUNCTIONS = {
    "hasValue": {"fn": _has_value, "arity": {0: []}},
    "trace": {"fn": _trace, "arity": {0: [], 1: ["String"], 2: ["String", "Expr"]}},
}
# Raw results: an invariant's verdict is a boolean; converting whatever else it returns back to JSON is waste.
OPTIONS = {"userInvocationTable": FUNCTIONS, "returnRawData": True}


# fhirpathpy matches a FHIR primitive only by its FHIR name: ``answerBoolean is Boolean`` (que-7) is false there,
# true in the reference engine, where FHIR.boolean is also a System.Boolean. Invariants test FHIR data, so the
# System name is read as the FHIR one.
SYSTEM_TYPE_TEST = re.compile(r"\b(is|as|ofType)(\s*\(?\s*)(?:System\.)?(Boolean|String|Integer|Decimal|Date|DateTime|Time)\b")
FHIR_PRIMITIVE = {"Boolean": "boolean", "String": "string", "Integer": "integer", "Decimal": "decimal", "Date": "date",
                  "DateTime": "dateTime", "Time": "time"}


def for_engine(expression: str) -> str:
    """The expression as fhirpathpy must read it to mean what the specification means (see SYSTEM_TYPE_TEST)."""
    return SYSTEM_TYPE_TEST.sub(lambda m: f"{m[1]}{m[2]}{FHIR_PRIMITIVE[m[3]]}", expression)


@dataclass(frozen=True, slots=True)
class Invariant:
    """One constraint of an element, as much of it as validation reports."""

    key: str
    severity: str  # error | warning
    human: str
    expression: str
    source: str  # the definition that states it (cache key with ``key``)

    @classmethod
    def of(cls, constraint: dict[str, Any], source: str) -> "Invariant":
        return cls(
            key=constraint["key"],
            severity=constraint.get("severity", "error"),
            human=constraint.get("human", ""),
            expression=constraint["expression"],
            source=constraint.get("source") or source,
        )


def invariants_of(element: dict[str, Any], source: str) -> tuple[Invariant, ...]:
    """The FHIRPath invariants of an element to evaluate (not those checked structurally, nor best practice)."""
    return tuple(
        Invariant.of(constraint, source)
        for constraint in element.get("constraint", ())
        if constraint.get("expression") and constraint.get("key") not in NOT_EVALUATED
    )


Compiled = Callable[[Any, dict[str, Any]], list[Any]]
STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Expressions that can see more than their node's own children (the whole resource, any depth, other resources).
REACHES_BEYOND = re.compile(r"%|\bdescendants\b|\bchildren\b|\brepeat\b|\bresolve\b|\$this")


def names_used(expression: str) -> frozenset[str] | None:
    """The names an expression can reach its node's children by, or None when it can see beyond them.

    A node with none of these children answers as an empty node of its type would (``qty-3`` on a Quantity
    without ``code`` or ``system``), which is worked out once per type instead of once per value: evaluating
    FHIRPath costs a fraction of a millisecond, and a large Bundle has thousands of nodes with invariants.
    """
    without_strings = STRING_LITERAL.sub("''", expression)
    if REACHES_BEYOND.search(without_strings):
        return None
    return frozenset(NAME.findall(without_strings))


def root_names(expression: str) -> frozenset[str] | None:
    """The names an expression can reach its node's children by (a narrower :func:`names_used`), or None when it
    can see beyond them.

    A navigation step written after a dot (``meta`` in ``contained.meta.versionId``) starts from what an earlier
    step found, never from the node itself, so only the names not written after a dot can name the node's own
    children: the first steps of paths, the arguments of functions (``where(system = ...)``: evaluated on the
    node's children or on the node itself) and anything else, which only ever adds names. ``dom-4`` on a resource
    without contained resources then reads as it does on an empty resource, whatever its ``meta``. A type name in
    first position (``Observation.component``: the node itself, by its type) or a quoted name (backticks) is read
    the coarser way, every name counted.
    """
    without_strings = STRING_LITERAL.sub("''", expression)
    if REACHES_BEYOND.search(without_strings):
        return None
    if "`" in without_strings:
        return names_used(expression)
    names = set()
    for match in NAME.finditer(without_strings):
        before = without_strings[: match.start()].rstrip()
        if before.endswith("."):
            continue
        if match[0][0].isupper() and not without_strings[match.end():].lstrip().startswith("("):
            return names_used(expression)
        names.add(match[0])
    return frozenset(names)


def touches(node: dict[str, Any], names: frozenset[str]) -> bool:
    """Does the node have a child an expression using ``names`` could reach (``valueQuantity`` for ``value``)?"""
    starts = _name_starts(names)
    for key in node:
        if starts(key) is not None and key != "resourceType" and key != "_resourceType":
            return True
    return False


@lru_cache(maxsize=None)
def _name_starts(names: frozenset[str]) -> Callable[[str], Any]:
    """Matches a JSON key (``_`` of a primitive's companion aside) that begins with one of ``names``."""
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    return re.compile(f"_?(?:{alternatives})").match if names else (lambda key: None)


# ---- invariants evaluated natively ------------------------------------------------------------------------------
# Most of the core's invariants ask only whether children exist (``bdl-5``: ``resource.exists() or
# request.exists() or response.exists()``; ``cpt-2``: ``value.empty() or system.exists()``). For those, a node's
# verdict is worked out here the way fhirpathpy works it out, without its parser and node objects (a fraction
# of a millisecond each, thousands of times per large Bundle): ``name.exists()`` is true exactly when fhirpathpy's
# member navigation finds a node, i.e. when ``name`` or ``_name`` holds anything but null or an empty array (for
# a choice element, ``nameType`` / ``_nameType`` of one of its types, the element's path looked up in the
# engine's own model as the engine does), ``empty()`` is its negation, and ``and``/``or`` of booleans are plain.
CHOICE_TYPE_PATHS: dict[str, list[str]] = R4_MODEL["choiceTypePaths"]
PATHS_DEFINED_ELSEWHERE: dict[str, str] = R4_MODEL["pathsDefinedElsewhere"]
EXISTENCE_TERM = re.compile(r"\s*([a-z][A-Za-z0-9_]*)\.(exists|empty)\(\)\s*")
NativeCheck = Callable[[dict[str, Any], str], bool | None]  # (node, its path) -> verdict; None: ask the engine


def _some(value: Any) -> bool:
    """fhirpathpy's ``util.is_some``: anything but None and an empty list makes a node."""
    return value is not None and not (isinstance(value, list) and not value)


def present(node: dict[str, Any], name: str, node_path: str) -> bool:
    """Does fhirpathpy's member navigation ``name`` find anything on ``node`` (a JSON object of ``node_path``)?"""
    child_path = f"{node_path}.{name}" if node_path else f"_.{name}"
    types = CHOICE_TYPE_PATHS.get(PATHS_DEFINED_ELSEWHERE.get(child_path, child_path))
    if types:
        return any(_some(node.get(name + t)) or _some(node.get(f"_{name}{t}")) for t in types)
    return _some(node.get(name)) or _some(node.get("_" + name))


def existence_check(expression: str) -> NativeCheck | None:
    """A native check for ``a.exists() or b.empty() ...`` (one operator throughout: ``or`` or ``and``), else None."""
    for operator, combine in ((" or ", any), (" and ", all)):
        terms = [EXISTENCE_TERM.fullmatch(part) for part in expression.split(operator)]
        if all(terms):
            wanted = tuple((term[1], term[2] == "exists") for term in terms if term)

            def check(node: dict[str, Any], node_path: str, wanted: Any = wanted, combine: Any = combine) -> bool:
                return combine(present(node, name, node_path) is exists for name, exists in wanted)

            return check
    return None


def top_level_parts(expression: str, operator: str) -> list[str] | None:
    """The operands of ``operator`` (``or``) at the top level of an expression (string literals blanked: only
    their places matter here), or None when the expression also has an operator binding more loosely than
    ``or`` there (``implies``; ``xor``, as loose as ``or`` and left-associative), so the split would not be
    the expression's own structure."""
    text = STRING_LITERAL.sub("''", expression)
    if "`" in text:  # a quoted name could be spelled like an operator
        return None
    parts, depth, start = [], 0, 0
    for match in re.finditer(r"[()]|\b(or|and|xor|implies)\b", text):
        if match[0] == "(":
            depth += 1
        elif match[0] == ")":
            depth -= 1
        elif depth == 0 and match[1] in ("xor", "implies"):
            return None
        elif depth == 0 and match[1] == operator:
            parts.append(text[start:match.start()].strip())
            start = match.end()
    parts.append(text[start:].strip())
    return parts


PATH_STEP = re.compile(r"\.(?:[a-z][A-Za-z0-9_]*(?![A-Za-z0-9_]|\s*\()|where\()")


def empty_path_head(term: str) -> str | None:
    """``name.child.where(...).empty()``: the first step ``name``, when the term is a path of member steps and
    ``where`` filters ending in ``empty()`` (true when ``name`` finds nothing: every later step of nothing is
    nothing); else None."""
    head = re.match(r"([a-z][A-Za-z0-9_]*)(?=\.)", term)
    if head is None or not term.endswith(".empty()"):
        return None
    position, end = head.end(), len(term) - len(".empty()")
    while position < end:
        step = PATH_STEP.match(term, position)
        if step is None:
            return None
        position = step.end()
        if step[0] == ".where(":
            depth = 1
            while depth and position < end:
                depth += {"(": 1, ")": -1}.get(term[position], 0)
                position += 1
            if depth:
                return None
    return head[1] if position == end else None


def disjunction_check(expression: str) -> NativeCheck | None:
    """``a.empty() or <anything>``, ``a.b.where(...).empty() or <anything>``, ``a.exists() or <anything>``: true
    whenever one such operand is true (``true or x`` is true, whatever ``x`` is, even empty); otherwise the
    engine decides."""
    parts = top_level_parts(expression, "or")
    if parts is None or len(parts) < 2:
        return None
    tests: list[tuple[str, bool]] = []  # (first step, true when it is present?)
    for part in parts:
        term = EXISTENCE_TERM.fullmatch(part)
        if term is not None:
            tests.append((term[1], term[2] == "exists"))
        elif (head := empty_path_head(part)) is not None:
            tests.append((head, False))
    if not tests:
        return None

    def check(node: dict[str, Any], node_path: str) -> bool | None:
        return True if any(present(node, name, node_path) is exists for name, exists in tests) else None

    return check


def period_check(node: dict[str, Any], node_path: str) -> bool | None:
    """``per-1`` (``start.hasValue().not() or end.hasValue().not() or (start <= end)``): true when ``start`` or
    ``end`` is absent (an empty navigation has no value, ``not()`` makes that true, and ``true or x`` is true);
    the comparison of two dates, with their precisions and zones, is left to the engine."""
    if not present(node, "start", node_path) or not present(node, "end", node_path):
        return True
    return None


SPECIAL_CHECKS: dict[str, NativeCheck] = {
    "start.hasValue().not() or end.hasValue().not() or (start <= end)": period_check,
}


def native_check(expression: str) -> NativeCheck | None:
    return SPECIAL_CHECKS.get(expression) or existence_check(expression) or disjunction_check(expression)


class InvariantEngine:
    """Compiles and evaluates invariants; remembers those the engine cannot evaluate."""

    def __init__(self) -> None:
        # (key, expression) -> compiled; a profile that redefines a key with another expression gets its own entry
        self._compiled: dict[tuple[str, str], Compiled | None] = {}
        self._names: dict[tuple[str, str], frozenset[str] | None] = {}
        self._native: dict[str, NativeCheck | None] = {}  # expression -> its native check, if it has one
        self._empty_results: dict[tuple[str, str, str], bool] = {}  # (key, expression, type) -> verdict when empty
        self.skipped: dict[tuple[str, str], str] = {}  # (definition, key) -> why it could not be evaluated

    def compiled(self, invariant: Invariant) -> Compiled | None:
        cache_key = (invariant.key, invariant.expression)
        try:
            return self._compiled[cache_key]
        except KeyError:
            pass
        try:
            function: Compiled | None = compile_fhirpath(for_engine(invariant.expression), R4_MODEL, OPTIONS)
        except Exception as problem:  # noqa: BLE001 - any parser failure means "cannot evaluate", never a crash
            self._skip(invariant, f"does not compile: {problem}")
            function = None
        self._compiled[cache_key] = function
        return function

    def holds(self, invariant: Invariant, node: Any, type_path: str, resource: Any, root: Any) -> bool:
        """Does ``node`` (of FHIR type/path ``type_path``) satisfy the invariant? Unevaluable counts as yes.

        Only an explicit ``false`` fails: an empty result means the rule had nothing to judge.
        """
        if isinstance(node, dict):
            names_key = (invariant.key, invariant.expression)
            names = self._names.get(names_key, ())
            if names == ():
                names = self._names[names_key] = root_names(invariant.expression)
            if names is not None and not touches(node, names):
                return self._holds_when_empty(invariant, node, type_path, resource, root)
            try:
                check = self._native[invariant.expression]
            except KeyError:
                check = self._native[invariant.expression] = native_check(invariant.expression)
            if check is not None:
                verdict = check(node, node["resourceType"] if "resourceType" in node else type_path)
                if verdict is not None:
                    return verdict
        return self._evaluate(invariant, node, type_path, resource, root)

    def _holds_when_empty(self, invariant: Invariant, node: dict[str, Any], type_path: str, resource: Any,
                          root: Any) -> bool:
        empty_key = (invariant.key, invariant.expression, node.get("resourceType") or type_path)
        verdict = self._empty_results.get(empty_key)
        if verdict is None:
            empty = {"resourceType": node["resourceType"]} if "resourceType" in node else {}
            verdict = self._empty_results[empty_key] = self._evaluate(invariant, empty, type_path, resource, root)
        return verdict

    def _evaluate(self, invariant: Invariant, node: Any, type_path: str, resource: Any, root: Any) -> bool:
        function = self.compiled(invariant)
        if function is None:
            return True
        context = node if isinstance(node, dict) and "resourceType" in node else ResourceNode.create_node(
            node, type_path
        )
        try:
            result = function(context, {"resource": resource, "rootResource": root})
        except Exception as problem:  # noqa: BLE001 - an engine gap must not reject a valid resource
            self._skip(invariant, f"cannot be evaluated: {problem}")
            return True
        return result != [False]

    def _skip(self, invariant: Invariant, why: str) -> None:
        cache_key = (invariant.source, invariant.key)
        if cache_key not in self.skipped:
            self.skipped[cache_key] = why
            LOG.info("FHIRPath invariant %s of %s skipped: %s", invariant.key, invariant.source, why)
