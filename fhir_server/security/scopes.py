"""SMART scopes: parse ``system/ServiceRequest.cr`` (v2) and ``system/Task.read`` (v1), and decide what they allow.

SMART App Launch 2.x writes a scope as ``context/Type.permissions``: context ``system`` for a backend client
(``user``/``patient`` are accepted too and read the same way here, since a token always acts for one
organization), ``Type`` a resource type or ``*``, permissions a subset of ``cruds`` in that order. The v1 forms
``read`` (= ``rs``), ``write`` (= ``cud``) and ``*`` are understood so older clients keep working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

PERMISSION_ORDER = "cruds"
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE_RE = re.compile(r"^(system|user|patient)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(\?.*)?$")


@dataclass(frozen=True)
class Scope:
    """One parsed resource scope; ``text`` is how the client wrote it (granted scopes are echoed as written)."""

    context: str
    resource_type: str  # "*" for every type
    permissions: frozenset[str]
    text: str

    def allows(self, resource_type: str, permission: str) -> bool:
        return self.resource_type in ("*", resource_type) and permission in self.permissions


def parse_scope(text: str) -> Scope | None:
    """The scope ``text`` names, or None when it is not a resource scope (``launch``, ``openid``, a typo...)."""
    match = _SCOPE_RE.match(text)
    if not match:
        return None
    context, resource_type, letters, _query = match.groups()
    permissions = V1_PERMISSIONS.get(letters, letters)
    if not permissions or any(ch not in PERMISSION_ORDER for ch in permissions):
        return None
    if "".join(ch for ch in PERMISSION_ORDER if ch in permissions) != permissions:
        return None  # v2 letters come in the order c, r, u, d, s, each once
    return Scope(context, resource_type, frozenset(permissions), text)


def parse_scopes(text: str | Iterable[str]) -> list[Scope]:
    """Every resource scope in a space-separated string (or a list); the rest is left out."""
    words = text.split() if isinstance(text, str) else list(text)
    return [scope for scope in map(parse_scope, words) if scope is not None]


def grant(requested: str, registered: Iterable[str]) -> list[str]:
    """Scopes granted = requested ∩ registered: each requested scope all of whose permissions registered scopes
    allow on its type (a requested ``*`` type needs a registered ``*``)."""
    allowed = parse_scopes(list(registered))
    granted = [
        scope.text
        for scope in parse_scopes(requested)
        if all(permits(allowed, scope.resource_type, permission) for permission in scope.permissions)
    ]
    return list(dict.fromkeys(granted))


def permits(scopes: Iterable[Scope], resource_type: str, permission: str) -> bool:
    """Whether any of ``scopes`` allows ``permission`` (one of ``cruds``) on ``resource_type``."""
    return any(scope.allows(resource_type, permission) for scope in scopes)
