"""The access rules as data (``mappings/security/access.yaml``): the scope each route needs, the types every
client shares, the server-only types, the references that make an organization a tenant, and those along which a
write shares what it refers to."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ACCESS_FILE = Path("security") / "access.yaml"


@dataclass(frozen=True)
class RouteRule:
    """The scope a route needs: ``permission`` on ``resource_type`` (see the data file), and the roles allowed."""

    resource_type: str
    permission: str | None
    roles: frozenset[str] | None = None
    physician_roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AccessRules:
    public_routes: frozenset[str]
    routes: dict[str, RouteRule]
    shared_types: frozenset[str]
    server_only_types: frozenset[str]
    tenant_elements: dict[str, tuple[str, ...]]
    case_types: frozenset[str] = frozenset()
    # References along which a write shares what it refers to with the organizations it names (see the data file).
    tenant_propagation: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Routes (the pages under /ui) a signed-in person's session cookie authenticates instead of a bearer token.
    session_routes: frozenset[str] = frozenset()

    def is_shared(self, resource_type: str) -> bool:
        return resource_type in self.shared_types


def _route(value: dict[str, Any]) -> RouteRule:
    roles = value.get("roles")
    return RouteRule(value["type"], value.get("permission"), frozenset(roles) if roles else None,
                     frozenset(value.get("physician_roles") or ()))


@lru_cache
def load_access_rules(mappings_dir: Path) -> AccessRules:
    """Read the access rules under ``mappings_dir`` (cached: the file is read once per directory)."""
    data = yaml.safe_load((mappings_dir / ACCESS_FILE).read_text(encoding="utf-8"))
    return AccessRules(
        public_routes=frozenset(data.get("public_routes", ())),
        routes={name: _route(value) for name, value in (data.get("routes") or {}).items()},
        shared_types=frozenset(data.get("shared_types", ())),
        server_only_types=frozenset(data.get("server_only_types", ())),
        tenant_elements={name: tuple(paths or ()) for name, paths in (data.get("tenant_elements") or {}).items()},
        case_types=frozenset(data.get("case_types", ())),
        tenant_propagation={name: tuple(paths or ()) for name, paths in (data.get("tenant_propagation") or {}).items()},
        session_routes=frozenset(data.get("session_routes", ())),
    )
