"""The embedded default store: one SQLite file, no server to run.

Schema
------
``resources`` holds every version of every resource (history and vread need them all): ``type``, ``id``,
``version``, ``last_updated`` (ISO-8601 with milliseconds and ``+00:00``, so text order is time order),
``deleted`` (1 for a deletion marker, whose ``json`` is NULL), ``is_current`` and ``json`` (orjson bytes),
primary key ``(type, id, version)``.

Current versions are marked by the ``is_current`` flag rather than copied into a separate table: partial
indexes restricted to ``is_current = 1`` give reads and searches the same one-probe lookup a current-only table
would, while a write stores the JSON once instead of twice (a write only flips the flag of the old row).

``search_index`` holds the :func:`~fhir_server.search.index.extract_index` values of current, non-deleted
versions only (a write replaces the resource's rows), one row per value: ``type, id, param, system, code, text,
value, exact, ref_type, ref_id, low, high``. ``outbox`` holds the messages to deliver after a commit (see
:mod:`fhir_server.storage.sqlite_outbox`). Every table and index lives in :data:`SCHEMA`.

Search
------
A :class:`~fhir_server.search.query.SearchQuery` becomes ONE parameterised statement: each criterion is an
``r.id [NOT] IN (SELECT id FROM search_index WHERE type = ? AND param = ? AND (<value> OR <value>))``; client
values only ever travel as bound parameters. Each subquery is answered from one index alone (partial indexes per
column family, ``id`` included), and the resource rows are named with ``INDEXED BY``: the matching ids probed one
by one when a criterion narrows, the live resources in time order otherwise (``bench/query_plans.py`` prints the
plans). ``_sort`` orders by a correlated MIN (ascending) or MAX
(descending) over the parameter's index rows, missing values last. ``has_more`` comes from fetching one row
more than the page; ``_total`` is a COUNT over the same WHERE clause.

Concurrency
-----------
sqlite3 calls run directly in the event loop: the statements are small (sub-millisecond on an indexed file),
and a thread hop per statement would cost more than the statement itself. Waiting for another process's write
lock and checkpointing the WAL happen off the loop (:mod:`fhir_server.storage.sqlite_connection`, which also says
what a commit survives). One writer connection is guarded by an
``asyncio.Lock``: every write is a ``BEGIN IMMEDIATE ... COMMIT`` under the lock, so ``update(if_match=n)``
checks and writes atomically, and an open :meth:`SqliteStore.transaction` keeps other writers waiting until it
ends. Reads outside a transaction use a second connection that, thanks to WAL, sees only committed data (an
open transaction's writes stay invisible to it). Do not write through the store itself from inside its own
transaction block (use the ``tx`` object): the lock is not re-entrant.

``sqlite:///:memory:`` is a throw-away database file in a temporary directory removed on close: a true
in-memory database cannot be shared by two connections, and a throw-away file keeps exactly the same
isolation and locking behaviour as a durable one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson

from fhir_server.clock import Now, utc_now
from fhir_server.errors import conflict, gone, not_found
from fhir_server.search.index import extract_index, normalize_text
from fhir_server.search.query import (
    Criterion,
    DateValue,
    ReferenceValue,
    SearchQuery,
    SortKey,
    StringValue,
    TokenValue,
    UriValue,
)
from fhir_server.storage import sqlite_connection, sqlite_outbox
from fhir_server.storage.base import (
    OutboxMessage,
    OutboxSummary,
    Page,
    ResourceOperations,
    StoredResource,
    StoreUnavailable,
)
from fhir_server.storage.delegation import ReadsDelegated
from fhir_server.storage.versioning import (
    SORT_ATTRIBUTES,
    MillisecondClock,
    ceil_to_millisecond,
    check_id,
    check_if_match,
    format_timestamp,
    history_method,
    resource_type_of,
    stamp,
    update_target,
)

EXPUNGE_BATCH = 500  # ids per statement (well under SQLite's limit on bound parameters)

SCHEMA: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS resources (
        type TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        last_updated TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        is_current INTEGER NOT NULL DEFAULT 1,
        json BLOB,
        PRIMARY KEY (type, id, version)
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS resources_current ON resources (type, id) WHERE is_current = 1",
    """CREATE INDEX IF NOT EXISTS resources_live_by_time ON resources (type, last_updated)
        WHERE is_current = 1 AND deleted = 0""",
    "CREATE INDEX IF NOT EXISTS resources_history_by_type ON resources (type, last_updated)",
    "CREATE INDEX IF NOT EXISTS resources_history ON resources (last_updated)",
    """CREATE TABLE IF NOT EXISTS search_index (
        type TEXT NOT NULL,
        id TEXT NOT NULL,
        param TEXT NOT NULL,
        system TEXT,
        code TEXT,
        text TEXT,
        value TEXT,
        exact TEXT,
        ref_type TEXT,
        ref_id TEXT,
        low TEXT,
        high TEXT
    )""",
    # Each criterion's subquery is answered from one of these alone (``id`` is in every one). A row goes only into
    # the indexes of the columns its parameter type fills: fewer pages written per commit. ``search_by_value`` is
    # complete, so any (type, param) scan (``:missing``, ``:text``, ``:contains``, a ``gt`` date) has one.
    "CREATE INDEX IF NOT EXISTS search_by_value ON search_index (type, param, value, id)",
    "CREATE INDEX IF NOT EXISTS search_by_code ON search_index (type, param, code, system, id) WHERE code IS NOT NULL",
    """CREATE INDEX IF NOT EXISTS search_by_reference ON search_index (type, param, ref_id, ref_type, id)
        WHERE ref_id IS NOT NULL""",
    "CREATE INDEX IF NOT EXISTS search_by_date ON search_index (type, param, low, high, id) WHERE low IS NOT NULL",
    # A resource's rows: replaced on every write, and read by ``_sort`` one parameter at a time.
    "CREATE INDEX IF NOT EXISTS search_by_owner ON search_index (type, id, param)",
    # Files made before the indexes above had these instead.
    *(f"DROP INDEX IF EXISTS {old}" for old in ("search_token", "search_value", "search_reference", "search_date",
                                                 "search_owner")),
    *sqlite_outbox.OUTBOX_SCHEMA,
)

_PREFIX_END = "\U0010ffff"  # sorts after every character: [p, p + this) is "starts with p"

Sql = tuple[str, list[Any]]
T = TypeVar("T")
# Index rows counted per criterion to choose the one that drives a search with several (see _where_sql).
ESTIMATE_CAP = 1000


# ---------------------------------------------------------------------------------------------------------------
# SearchQuery -> SQL


def _token_sql(value: TokenValue) -> Sql:
    if value.system is None:
        return "code = ?", [value.code]
    if value.code is None:
        return "system = ?", [value.system]
    if value.system == "":
        return "system IS NULL AND code = ?", [value.code]
    return "system = ? AND code = ?", [value.system, value.code]


def _prefix_sql(column: str, prefix: str) -> Sql:
    return f"{column} >= ? AND {column} < ?", [prefix, prefix + _PREFIX_END]


def _string_sql(value: StringValue, modifier: str | None, column: str = "value") -> Sql:
    if modifier == "exact":  # the normalised form too, so that the value index finds the rows
        return "value = ? AND exact = ?", [normalize_text(value.value), value.value]
    if modifier == "contains":
        return f"instr({column}, ?) > 0", [value.value]
    return _prefix_sql(column, value.value)


def _reference_sql(value: ReferenceValue) -> Sql:
    if value.url is not None:
        return "value = ?", [value.url]
    if value.resource_type is None:
        return "ref_id = ?", [value.id]
    return "ref_id = ? AND ref_type = ?", [value.id, value.resource_type]


# For a search range [sl, sh) and an indexed range [low, high): FHIR's prefix semantics, simplified where one
# branch implies the other (le: low < sl OR contained == low < sl OR high <= sh, and ge likewise).
_DATE_SQL: dict[str, tuple[str, Callable[[DateValue], list[str]]]] = {
    "eq": ("low >= ? AND high <= ?", lambda v: [v.low, v.high]),
    "ne": ("NOT (low >= ? AND high <= ?)", lambda v: [v.low, v.high]),
    "lt": ("low < ?", lambda v: [v.low]),
    "gt": ("high > ?", lambda v: [v.high]),
    "le": ("(low < ? OR high <= ?)", lambda v: [v.low, v.high]),
    "ge": ("(high > ? OR low >= ?)", lambda v: [v.high, v.low]),
    "sa": ("low >= ?", lambda v: [v.high]),
    "eb": ("high <= ?", lambda v: [v.low]),
    "ap": ("low < ? AND high > ?", lambda v: [v.high, v.low]),
}


def _date_sql(value: DateValue) -> Sql:
    template, bind = _DATE_SQL[value.prefix]
    return template, bind(value)


def _value_sql(criterion: Criterion, value: Any) -> Sql:
    """One value of a criterion as a condition on an index row."""
    if isinstance(value, TokenValue):
        return _token_sql(value)
    if isinstance(value, StringValue):
        column = "text" if criterion.type == "token" else "value"
        return _string_sql(value, criterion.modifier, column)
    if isinstance(value, ReferenceValue):
        return _reference_sql(value)
    if isinstance(value, DateValue):
        return _date_sql(value)
    if isinstance(value, UriValue):
        return "value = ?", [value.value]
    raise TypeError(f"unsupported search value {value!r}")


def _narrows(criterion: Criterion) -> bool:
    """Whether the criterion keeps only resources with matching index rows (``IN``) rather than dropping them
    (``NOT IN``: ``:not``, ``:missing=true``)."""
    return not criterion.missing if criterion.missing is not None else criterion.modifier != "not"


def _applies(criterion: Criterion) -> bool:
    """A criterion with nothing to match against is skipped: the parser never builds one, a hand-made query may."""
    return bool(criterion.values) or criterion.missing is not None


# True of every index row of a parameter type, and the condition of that type's partial index: stating it lets the
# planner use the index even for a comparison it cannot seek on (``gt``: ``high > ?``), index-only.
_ROWS_OF_TYPE: dict[str, str] = {"date": " AND low IS NOT NULL"}


def _rows_sql(resource_type: str, criterion: Criterion, owner: str = "") -> Sql:
    """The conditions on index rows that a criterion matches (``:missing`` only names the parameter); ``owner``
    ties them to the resource row being checked (a correlated form)."""
    rows = f"type = ? AND param = ?{owner}"
    params: list[Any] = [resource_type, criterion.name]
    if criterion.missing is not None:
        return rows, params
    rows += _ROWS_OF_TYPE.get(criterion.type, "")
    alternatives = []
    for value in criterion.values:
        condition, bound = _value_sql(criterion, value)
        alternatives.append(f"({condition})")
        params.extend(bound)
    return f"{rows} AND {_any_of(alternatives)}", params


def _any_of(conditions: list[str]) -> str:
    """``(a OR b OR ...)`` nested as a balanced tree: SQLite parses a flat chain of n ORs into a tree n deep and
    refuses one deeper than 1000 ("Expression tree is too large"); balanced, it is log2(n) deep, so an
    ``_include`` batch or a client's OR values never reach that limit, whatever their number."""
    if len(conditions) == 1:
        return conditions[0]
    middle = len(conditions) // 2
    return f"({_any_of(conditions[:middle])} OR {_any_of(conditions[middle:])})"


def _criterion_sql(resource_type: str, criterion: Criterion) -> Sql:
    """``r.id [NOT] IN (matching ids)``: SQLite walks the list (or builds it once, for ``NOT IN``)."""
    rows, params = _rows_sql(resource_type, criterion)
    membership = "IN" if _narrows(criterion) else "NOT IN"
    return f"r.id {membership} (SELECT id FROM search_index WHERE {rows})", params


# Values whose condition fixes every column of their value index before ``id``: with ``id = r.id`` added, the check
# is one seek in that (covering) index. Any other value would make the planner scan all of the value's rows.
_SEEKS_TO_ID: dict[type, Callable[[Any], bool]] = {
    ReferenceValue: lambda value: value.url is not None or value.resource_type is not None,
    TokenValue: lambda value: bool(value.system) and value.code is not None,
    UriValue: lambda value: True,
}


def _check_sql(resource_type: str, criterion: Criterion) -> Sql:
    """``EXISTS`` over the resource's own index rows of the parameter: a narrowing criterion that does not drive
    the search costs one index probe per candidate, however many resources it matches. The probe is a seek in the
    value's own index when the value fixes it up to ``id`` (:data:`_SEEKS_TO_ID`), else the resource's rows of
    the parameter (``search_by_owner``)."""
    rows, params = _rows_sql(resource_type, criterion, " AND id = r.id")
    seeks = (criterion.modifier is None and len(criterion.values) == 1
             and _SEEKS_TO_ID.get(type(criterion.values[0]), lambda _value: False)(criterion.values[0]))
    index = "" if seeks else " INDEXED BY search_by_owner"
    return f"EXISTS (SELECT 1 FROM search_index{index} WHERE {rows})", params


def _estimate_sql(resource_type: str, criterion: Criterion, cap: int) -> Sql:
    """How many index rows a criterion matches, counted up to ``cap``: enough to pick the most selective one."""
    rows, params = _rows_sql(resource_type, criterion)
    return f"SELECT COUNT(*) FROM (SELECT 1 FROM search_index WHERE {rows} LIMIT ?)", [*params, cap]


def _where_sql(query: SearchQuery, driver: Criterion | None = None) -> Sql:
    """The WHERE clause. One narrowing criterion drives the search (``driver``, by default the first): the resources
    its index rows name are probed one by one, and every other narrowing criterion is checked on each of them
    (:func:`_check_sql`) rather than listed in full: with several criteria, the cost follows the most selective
    one, not the largest (``Task?owner=&status=``: a group's few open tasks among all its closed ones)."""
    clauses = ["r.type = ?", "r.is_current = 1", "r.deleted = 0"]
    params: list[Any] = [query.resource_type]
    applied = [criterion for criterion in query.criteria if _applies(criterion)]
    if driver is None:
        driver = next((criterion for criterion in applied if _narrows(criterion)), None)
    for criterion in applied:
        narrowing_check = _narrows(criterion) and criterion is not driver
        make = _check_sql if narrowing_check else _criterion_sql
        clause, bound = make(query.resource_type, criterion)
        clauses.append(clause)
        params.extend(bound)
    return " AND ".join(clauses), params


def _from_sql(query: SearchQuery) -> str:
    """The resource rows a search starts from, named rather than left to the planner, which (with no statistics)
    walks every version of the type: with a narrowing criterion, its matching ids one index probe each
    (``resources_current``); with none, the live resources already in the default order."""
    narrowed = any(_applies(criterion) and _narrows(criterion) for criterion in query.criteria)
    return f"resources r INDEXED BY {'resources_current' if narrowed else 'resources_live_by_time'}"


# Columns of the resource row itself, faster than index rows for these two.
_SORT_COLUMNS = {"_id": "r.id", "_lastUpdated": "r.last_updated"}


def _order_sql(sort: list[SortKey]) -> Sql:
    terms: list[str] = []
    params: list[Any] = []
    for key in sort:
        direction = "DESC" if key.descending else "ASC"
        if key.name in _SORT_COLUMNS:
            terms.append(f"{_SORT_COLUMNS[key.name]} {direction}")
            continue
        ascending_column, descending_column = SORT_ATTRIBUTES[key.type]
        aggregate = f"MAX({descending_column})" if key.descending else f"MIN({ascending_column})"
        terms.append(
            f"(SELECT {aggregate} FROM search_index i INDEXED BY search_by_owner"
            " WHERE i.type = r.type AND i.id = r.id AND i.param = ?)"
            f" {direction} NULLS LAST"
        )
        params.append(key.name)
    terms += ["r.last_updated ASC", "r.id ASC"]  # default order, and a stable tie-breaker for paging
    return "ORDER BY " + ", ".join(terms), params


# ---------------------------------------------------------------------------------------------------------------
# Rows <-> StoredResource


def _stored(resource_type: str, row: tuple[Any, ...]) -> StoredResource:
    """Row ``(id, version, last_updated, deleted, json)`` -> StoredResource."""
    resource_id, version, last_updated, deleted, body = row
    return StoredResource(
        resource_type=resource_type,
        id=resource_id,
        version_id=version,
        last_updated=datetime.fromisoformat(last_updated),
        resource=None if deleted else orjson.loads(body),
        method=history_method(version, bool(deleted)),
    )


# ---------------------------------------------------------------------------------------------------------------
# Operations on one connection


class SqliteOperations(ResourceOperations):
    """Reads and writes on one connection. The store wraps writes in BEGIN IMMEDIATE/COMMIT under its lock;
    inside :meth:`SqliteStore.transaction` this object is the ``tx`` and sees its own uncommitted writes."""

    def __init__(self, connection: sqlite3.Connection, clock: MillisecondClock) -> None:
        self._db = connection
        self._clock = clock

    # -- helpers ---------------------------------------------------------------------------------------------

    def _current(self, resource_type: str, resource_id: str) -> tuple[Any, ...] | None:
        return self._db.execute(
            "SELECT id, version, last_updated, deleted, json FROM resources"
            " WHERE type = ? AND id = ? AND is_current = 1",
            (resource_type, resource_id),
        ).fetchone()

    def _write_version(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any] | None,
        current: tuple[Any, ...] | None,
    ) -> StoredResource:
        """Append the version after ``current`` (the current row, None for a new resource; a deletion marker
        when ``resource`` is None) and refresh the index rows. Its time is after ``current``'s, which another
        process sharing the file may have written."""
        version = current[1] + 1 if current is not None else 1
        moment = self._clock.next(datetime.fromisoformat(current[2]) if current is not None else None)
        stored = stamp(resource, resource_id, version, moment) if resource is not None else None
        db = self._db
        if current is not None:  # a new resource has no current row to retire and no index rows to replace
            db.execute(
                "UPDATE resources SET is_current = 0 WHERE type = ? AND id = ? AND is_current = 1",
                (resource_type, resource_id),
            )
            db.execute("DELETE FROM search_index WHERE type = ? AND id = ?", (resource_type, resource_id))
        db.execute(
            "INSERT INTO resources (type, id, version, last_updated, deleted, is_current, json)"
            " VALUES (?, ?, ?, ?, ?, 1, ?)",
            (
                resource_type,
                resource_id,
                version,
                format_timestamp(moment),
                stored is None,
                orjson.dumps(stored) if stored is not None else None,
            ),
        )
        if stored is not None:
            db.executemany(
                "INSERT INTO search_index (type, id, param, system, code, text, value, exact, ref_type, ref_id,"
                " low, high) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (resource_type, resource_id, name, v.system, v.code, v.text, v.value, v.exact, v.ref_type,
                     v.ref_id, v.low, v.high)
                    for name, values in extract_index(resource_type, stored).items()
                    for v in values
                ],
            )
        return StoredResource(
            resource_type=resource_type,
            id=resource_id,
            version_id=version,
            last_updated=moment,
            resource=stored,
            method=history_method(version, stored is None),
        )

    def delete_everything(self) -> None:
        """Every version and index row (``clear``)."""
        self._db.execute("DELETE FROM search_index")
        self._db.execute("DELETE FROM resources")
        sqlite_outbox.delete_all(self._db)

    # -- ResourceOperations -----------------------------------------------------------------------------------

    async def create(self, resource: dict[str, Any], *, resource_id: str | None = None) -> StoredResource:
        resource_type = resource_type_of(resource)
        if resource_id is None:
            resource_id = str(uuid.uuid4())
        else:
            check_id(resource_id)
            exists = self._db.execute(
                "SELECT 1 FROM resources WHERE type = ? AND id = ? LIMIT 1", (resource_type, resource_id)
            ).fetchone()
            if exists:
                raise conflict(f"{resource_type}/{resource_id} already exists")
        return self._write_version(resource_type, resource_id, resource, None)

    async def read(self, resource_type: str, resource_id: str) -> StoredResource:
        row = self._current(resource_type, resource_id)
        if row is None:
            raise not_found(f"{resource_type}/{resource_id} is not known")
        if row[3]:
            raise gone(f"{resource_type}/{resource_id} was deleted")
        return _stored(resource_type, row)

    async def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        row = self._db.execute(
            "SELECT id, version, last_updated, deleted, json FROM resources WHERE type = ? AND id = ? AND version = ?",
            (resource_type, resource_id, version_id),
        ).fetchone()
        if row is None:
            raise not_found(f"{resource_type}/{resource_id}/_history/{version_id} is not known")
        return _stored(resource_type, row)

    async def update(
        self, resource: dict[str, Any], *, if_match: int | None = None
    ) -> tuple[StoredResource, bool]:
        resource_type, resource_id = update_target(resource)
        current = self._current(resource_type, resource_id)
        live = current is not None and not current[3]
        check_if_match(f"{resource_type}/{resource_id}", if_match, current[1] if live else None)
        return self._write_version(resource_type, resource_id, resource, current), not live

    async def delete(
        self, resource_type: str, resource_id: str, *, if_match: int | None = None
    ) -> StoredResource | None:
        current = self._current(resource_type, resource_id)
        if current is None or current[3]:
            return None
        check_if_match(f"{resource_type}/{resource_id}", if_match, current[1])
        return self._write_version(resource_type, resource_id, None, current)

    async def enqueue(self, message: OutboxMessage) -> bool:
        return sqlite_outbox.enqueue(self._db, *self._clock.stamp_outbox(message))

    async def lock(self, key: str) -> None:
        """Nothing to do: a write transaction holds the file's one write lock (``BEGIN IMMEDIATE``) from its
        start, so every transaction, in every process sharing the file, already runs after or before this one,
        and its reads see everything committed before it."""

    def _driver(self, query: SearchQuery) -> Criterion | None:
        """The narrowing criterion that matches the fewest index rows (counted up to :data:`ESTIMATE_CAP` each),
        when there is a choice."""
        narrowing = [criterion for criterion in query.criteria if _applies(criterion) and _narrows(criterion)]
        if len(narrowing) < 2:
            return None

        def estimate(criterion: Criterion) -> int:
            sql, params = _estimate_sql(query.resource_type, criterion, ESTIMATE_CAP)
            return self._db.execute(sql, params).fetchone()[0]

        return min(narrowing, key=estimate)

    async def search(self, query: SearchQuery) -> Page:
        where, params = _where_sql(query, self._driver(query))
        source = _from_sql(query)
        total = None
        if query.total != "none" or query.count == 0:
            total = self._db.execute(f"SELECT COUNT(*) FROM {source} WHERE {where}", params).fetchone()[0]
        if query.count == 0:
            return Page([], total, has_more=False)
        order, order_params = _order_sql(query.sort)
        rows = self._db.execute(
            f"SELECT r.id, r.version, r.last_updated, r.deleted, r.json FROM {source} WHERE {where} {order}"
            " LIMIT ? OFFSET ?",
            [*params, *order_params, query.count + 1, query.offset],
        ).fetchall()
        items = [_stored(query.resource_type, row) for row in rows[: query.count]]
        return Page(items, total, has_more=len(rows) > query.count)

    async def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        *,
        since: datetime | None = None,
        count: int = 20,
        offset: int = 0,
    ) -> Page:
        filters = [("type = ?", resource_type), ("id = ?", resource_id)]
        if since is not None:
            filters.append(("last_updated >= ?", format_timestamp(ceil_to_millisecond(since))))
        active = [(clause, value) for clause, value in filters if value is not None]
        where = " AND ".join(clause for clause, _ in active) or "1 = 1"
        params = [value for _, value in active]
        total = self._db.execute(f"SELECT COUNT(*) FROM resources WHERE {where}", params).fetchone()[0]
        rows = self._db.execute(
            f"SELECT type, id, version, last_updated, deleted, json FROM resources WHERE {where}"
            " ORDER BY last_updated DESC, version DESC LIMIT ? OFFSET ?",
            [*params, count + 1, offset],
        ).fetchall()
        items = [_stored(row[0], row[1:]) for row in rows[:count]]
        return Page(items, total, has_more=len(rows) > count)


# ---------------------------------------------------------------------------------------------------------------
# The store


def _prepare_directory(file: Path) -> None:
    """Create the store file's directory, or say in one line why it cannot be (a parent is a file, no rights)."""
    directory = file.parent
    blocker = next((p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise StoreUnavailable(f"cannot create the SQLite store {file}: {blocker} is a file, not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create the data directory {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise StoreUnavailable(f"the data directory {directory} is not writable")


class SqliteStore(ReadsDelegated):
    """:class:`~fhir_server.storage.base.ResourceStore` on one SQLite file (or ``:memory:``)."""

    def __init__(self, path: str | Path, clock: Now = utc_now, synchronous: str = "full") -> None:
        self.path = str(path)
        self.synchronous = synchronous
        self._scratch_dir: str | None = None  # the temporary directory of a ``:memory:`` store
        self._lock = asyncio.Lock()
        self._clock = MillisecondClock(clock)
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._checkpointer: sqlite_connection.Checkpointer | None = None
        self._turn: sqlite_connection.WriterTurn | None = None
        self._group_sync: sqlite_connection.GroupSync | None = None  # durable stores: see sqlite_connection

    @classmethod
    def from_url(cls, url: str, clock: Now = utc_now) -> "SqliteStore":
        """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite:///:memory:``, optionally followed by
        ``?synchronous=normal`` (COMMIT without a sync: see :mod:`~fhir_server.storage.sqlite_connection`)."""
        prefix = "sqlite:///"
        if not url.startswith(prefix):
            raise ValueError(f"not a SQLite store URL: {url!r} (use sqlite:///path/file.db)")
        path, _, query = url[len(prefix):].partition("?")
        options = dict(parse_qsl(query, keep_blank_values=True))
        synchronous = options.pop("synchronous", "full").lower()
        if options or synchronous not in sqlite_connection.SYNCHRONOUS:
            raise StoreUnavailable(f"unsupported SQLite store option in {url!r}: the one option is "
                                   "?synchronous=full (the default) or ?synchronous=normal")
        return cls(path, clock, synchronous)

    @property
    def in_memory(self) -> bool:
        return self.path == ":memory:"

    async def open(self) -> None:
        if self._writer is not None:
            return
        if self.in_memory:
            self._scratch_dir = tempfile.mkdtemp(prefix="fhir-sqlite-")
            file = str(Path(self._scratch_dir) / "fhir.db")
        else:
            file = self.path
            _prepare_directory(Path(file))
        try:
            self._writer = sqlite_connection.connect(file)
            for statement in SCHEMA:  # waiting (busy timeout) for another worker creating it at the same moment
                self._writer.execute(statement)
        except sqlite3.OperationalError as exc:
            self._writer = None
            raise StoreUnavailable(f"cannot open the SQLite store {file}: {exc} (is its directory writable?)") from None
        sqlite_outbox.add_missing_columns(self._writer)
        self._writer.execute("PRAGMA busy_timeout = 0")  # from now on, see sqlite_connection.begin_immediate
        self._reader = sqlite_connection.connect(file)
        if self.synchronous == "full":
            self._group_sync = sqlite_connection.GroupSync(f"{file}-wal")
        self._turn = sqlite_connection.WriterTurn(file)
        self._checkpointer = sqlite_connection.Checkpointer(file)
        self._checkpointer.start()
        latest = self._writer.execute("SELECT MAX(last_updated) FROM resources").fetchone()[0]
        self._clock.last = datetime.fromisoformat(latest) if latest else None

    async def close(self) -> None:
        if self._group_sync is not None:
            await self._group_sync.close()
            self._group_sync = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        for connection in (self._reader, self._writer):
            if connection is not None:
                connection.close()
        self._writer = self._reader = None
        if self._turn is not None:
            self._turn.close()
            self._turn = None
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)
            self._scratch_dir = None

    def _connection(self, connection: sqlite3.Connection | None) -> sqlite3.Connection:
        if connection is None:
            raise RuntimeError("the SQLite store is not open: await store.open() first")
        return connection

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[sqlite3.Connection]:
        """The writer connection inside ``BEGIN IMMEDIATE ... COMMIT`` (ROLLBACK on any exception), under the
        lock: the one way anything is written. A durable store then waits, with the lock given back, for the group
        sync that puts the COMMIT on the disk."""
        async with self._lock:
            writer = self._connection(self._writer)
            turn = self._turn
            if turn is not None:
                await turn.acquire()
            try:
                await sqlite_connection.begin_immediate(writer)
                try:
                    yield writer
                except BaseException:
                    writer.execute("ROLLBACK")
                    raise
                try:
                    writer.execute("COMMIT")
                except BaseException:
                    if writer.in_transaction:
                        writer.execute("ROLLBACK")
                    raise
            finally:
                if turn is not None:
                    turn.release()
        if self._group_sync is not None:
            await self._group_sync.wait()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteOperations]:
        async with self._writing() as writer:
            yield SqliteOperations(writer, self._clock)

    async def atomically(self, work: Callable[[ResourceOperations], Awaitable[T]]) -> T:
        """One transaction: the write lock it holds from the start means it never conflicts, so never reruns."""
        async with self.transaction() as tx:
            return await work(tx)

    def _reads(self) -> SqliteOperations:
        """Operations on the reader connection: committed data only, never waiting for the writer."""
        return SqliteOperations(self._connection(self._reader), self._clock)

    async def create(self, resource: dict[str, Any], *, resource_id: str | None = None) -> StoredResource:
        async with self.transaction() as tx:
            return await tx.create(resource, resource_id=resource_id)

    async def update(
        self, resource: dict[str, Any], *, if_match: int | None = None
    ) -> tuple[StoredResource, bool]:
        async with self.transaction() as tx:
            return await tx.update(resource, if_match=if_match)

    async def delete(
        self, resource_type: str, resource_id: str, *, if_match: int | None = None
    ) -> StoredResource | None:
        async with self.transaction() as tx:
            return await tx.delete(resource_type, resource_id, if_match=if_match)

    async def clear(self) -> None:
        async with self.transaction() as tx:
            tx.delete_everything()

    async def expunge(self, resource_type: str, resource_ids: list[str]) -> int:
        removed = 0
        async with self._writing() as db:
            for start in range(0, len(resource_ids), EXPUNGE_BATCH):
                chunk = resource_ids[start : start + EXPUNGE_BATCH]
                marks = ", ".join("?" * len(chunk))
                removed += db.execute(f"SELECT COUNT(*) FROM resources WHERE type = ? AND is_current = 1 AND id IN ({marks})",
                                      (resource_type, *chunk)).fetchone()[0]
                for table in ("search_index", "resources"):
                    db.execute(f"DELETE FROM {table} WHERE type = ? AND id IN ({marks})", (resource_type, *chunk))
        return removed

    # -- outbox (see :mod:`fhir_server.storage.sqlite_outbox`) ----------------------------------------------------

    async def enqueue(self, message: OutboxMessage) -> bool:
        async with self.transaction() as tx:
            return await tx.enqueue(message)

    async def claim_outbox(self, now: datetime, lease_until: datetime, limit: int = 20) -> list[OutboxMessage]:
        async with self._writing() as db:
            return sqlite_outbox.claim(db, now, lease_until, limit)

    async def outbox_delivered(self, message_id: str, at: datetime) -> None:
        async with self._writing() as db:
            sqlite_outbox.mark_delivered(db, message_id, at)

    async def outbox_failed(self, message_id: str, error: str, next_attempt_at: datetime) -> None:
        async with self._writing() as db:
            sqlite_outbox.mark_failed(db, message_id, error, next_attempt_at)

    async def ping(self) -> None:
        self._connection(self._reader).execute("SELECT 1").fetchone()

    async def outbox_dead(self, message_id: str, error: str, at: datetime) -> None:
        async with self._writing() as db:
            sqlite_outbox.mark_dead(db, message_id, error, at)

    async def outbox_retry(self, message_ids: list[str] | None, now: datetime) -> int:
        async with self._writing() as db:
            return sqlite_outbox.revive(db, message_ids, now)

    async def outbox_summary(self) -> OutboxSummary:
        return sqlite_outbox.summary(self._connection(self._reader))

    async def outbox_messages(self, channel: str | None = None) -> list[OutboxMessage]:
        return sqlite_outbox.messages(self._connection(self._reader), channel)
