"""The backend-neutral search model.

``parse_search`` turns a query string into a :class:`SearchQuery`; each store translates that one model
(SQL for the embedded store, a Mongo filter for MongoDB). Values from clients only ever become data in this
model, never query syntax.

Semantics: criteria are ANDed; the values of one criterion are ORed (``code=a,b``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ParamType = Literal["token", "string", "reference", "date", "uri", "number", "quantity", "special"]


@dataclass(frozen=True)
class TokenValue:
    """``[system]|[code]``. ``system=None``: any system; ``system=""``: no system (``|code``);
    ``code=None``: any code in ``system`` (``system|``)."""

    system: str | None
    code: str | None


@dataclass(frozen=True)
class StringValue:
    value: str  # already normalised (casefolded, accents stripped) unless the modifier is ``exact``


@dataclass(frozen=True)
class ReferenceValue:
    """``Patient/123``, ``123`` (type from the parameter's single target or ``:Type`` modifier), or an
    absolute URL / canonical (``url`` set, ``resource_type``/``id`` None)."""

    resource_type: str | None
    id: str | None
    url: str | None = None


@dataclass(frozen=True)
class DateValue:
    """A prefixed date: the search value denotes the range ``[low, high)`` in UTC ISO-8601 instants."""

    prefix: Literal["eq", "ne", "lt", "le", "gt", "ge", "sa", "eb", "ap"]
    low: str
    high: str


SearchValue = TokenValue | StringValue | ReferenceValue | DateValue


@dataclass(frozen=True)
class Criterion:
    """One ``name[:modifier]=v1,v2`` of the query string."""

    name: str  # search parameter code, e.g. "subject", "_id", "_lastUpdated"
    type: ParamType
    values: tuple[SearchValue, ...]
    modifier: str | None = None  # exact, contains, missing, not, text, or a resource type for references
    missing: bool | None = None  # set for ``:missing=true|false``


@dataclass(frozen=True)
class SortKey:
    name: str
    type: ParamType
    descending: bool = False


@dataclass(frozen=True)
class Include:
    """``_include=Source:param[:Target]`` or ``_revinclude=Source:param[:Target]``."""

    source_type: str
    param: str
    target_type: str | None = None
    iterate: bool = False


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = 20
    offset: int = 0
    total: Literal["none", "estimate", "accurate"] = "accurate"
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    summary: str | None = None  # _summary
    elements: list[str] = field(default_factory=list)  # _elements
    # Parameters the server does not know, kept so the searchset can name them in an OperationOutcome.
    ignored: list[str] = field(default_factory=list)
