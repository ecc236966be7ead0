"""The stored-resource document model, declared once with the mongomotor ODM.

Two collections keep current versions and history apart:

* ``resources`` holds the current version of every resource (a deletion marker included, so a read can
  answer 410 and the next update knows the last version number). It carries what search needs: ``_idx``, an
  array of ``{param, system, code, text, value, exact, ref_type, ref_id, low, high}`` entries (the output of
  :func:`fhir_server.search.index.extract_index`, one entry per value), and ``_sort``, the values each
  parameter sorts by. An array of entries that name their parameter (rather than one sub-document per
  parameter) lets a fixed list of compound multikey indexes serve every search parameter of every type.
* ``history`` holds every version, deletion markers included. Its unique (type, id, version) index is the
  atomic version check: two writers that both saw version n cannot both insert version n + 1.

Search reads ``resources`` only, so it never has to pick "the latest version" out of the history; the price is
that the current version's JSON is stored twice, which is cheap next to a group-by on every search.

``outbox`` holds the transactional outbox (:class:`OutboxRecord`); ``locks`` the keys of conditional writes
(:class:`WriteLock`).

Every index lives in the ``indexes`` of these classes' ``meta`` (mongoengine's index syntax, so the names are
the Python field names and the ODM maps them to the stored ones); ``MongoStore.open()`` creates exactly those.
"""

from __future__ import annotations

from mongoengine import fields
from mongomotor import Document

# Attributes of an index entry, in the order search prefixes use them; only those with a value are stored.
INDEX_ENTRY_ATTRIBUTES = ("system", "code", "text", "value", "exact", "ref_type", "ref_id", "low", "high")


class CurrentResource(Document):
    """The current version of one resource, with its search index."""

    meta = {
        "collection": "resources",
        "allow_inheritance": False,
        "auto_create_index": False,
        "strict": False,
        "indexes": [
            {"fields": ["resource_type", "resource_id"], "unique": True, "name": "type_id"},
            # live resources of a type in the default order (and _sort=_lastUpdated), filter and sort from one
            # index; partial like the SQLite store's, so deletion markers cost it nothing
            {
                "fields": ["resource_type", "last_updated", "resource_id"],
                "partialFilterExpression": {"deleted": False},
                "name": "live_type_lastUpdated",
            },
            # token: system|code, code alone (any system) and system| all use this one
            {"fields": ["resource_type", "idx.param", "idx.code", "idx.system"], "name": "idx_token"},
            # string (prefix regex on the normalised value), uri, absolute-URL references
            {"fields": ["resource_type", "idx.param", "idx.value"], "name": "idx_value"},
            {"fields": ["resource_type", "idx.param", "idx.exact"], "name": "idx_exact"},
            # local references: Type/id and bare id
            {"fields": ["resource_type", "idx.param", "idx.ref_id", "idx.ref_type"], "name": "idx_reference"},
            {"fields": ["resource_type", "idx.param", "idx.low", "idx.high"], "name": "idx_date"},
        ],
    }

    resource_type = fields.StringField(required=True)
    resource_id = fields.StringField(required=True)
    version_id = fields.IntField(required=True, min_value=1)
    last_updated = fields.DateTimeField(required=True)
    method = fields.StringField(required=True, choices=("POST", "PUT", "DELETE"))
    deleted = fields.BooleanField(required=True, default=False)
    resource = fields.DictField(null=True)
    idx = fields.ListField(fields.DictField(), db_field="_idx")
    sort_keys = fields.DictField(db_field="_sort")


class ResourceVersion(Document):
    """One version of one resource (every version, current one included)."""

    meta = {
        "collection": "history",
        "allow_inheritance": False,
        "auto_create_index": False,
        "strict": False,
        "indexes": [
            {"fields": ["resource_type", "resource_id", "version_id"], "unique": True, "name": "type_id_version"},
            {"fields": ["-last_updated"], "name": "lastUpdated"},
            {"fields": ["resource_type", "-last_updated"], "name": "type_lastUpdated"},
        ],
    }

    resource_type = fields.StringField(required=True)
    resource_id = fields.StringField(required=True)
    version_id = fields.IntField(required=True, min_value=1)
    last_updated = fields.DateTimeField(required=True)
    method = fields.StringField(required=True, choices=("POST", "PUT", "DELETE"))
    resource = fields.DictField(null=True)


class OutboxRecord(Document):
    """One message of the transactional outbox (:class:`fhir_server.storage.base.OutboxMessage`).

    Its ``_id`` is the message id, so enqueueing the same id twice is one upsert that inserts nothing the second
    time. ``delivered`` (a boolean, unlike ``delivered_at``) lets the due-messages index be partial: delivered
    messages, most of the collection over time, cost it nothing. A lease is ``next_attempt_at`` moved forward."""

    meta = {
        "collection": "outbox",
        "allow_inheritance": False,
        "auto_create_index": False,
        "strict": False,
        "indexes": [
            {
                "fields": ["next_attempt_at", "created_at"],
                "partialFilterExpression": {"delivered": False},
                "name": "outbox_due",
            },
            {"fields": ["channel", "created_at"], "name": "outbox_by_channel"},
        ],
    }

    message_id = fields.StringField(primary_key=True)
    channel = fields.StringField(required=True)
    destination = fields.StringField(required=True)
    payload = fields.DictField(required=True)
    headers = fields.DictField()
    created_at = fields.DateTimeField(required=True)
    next_attempt_at = fields.DateTimeField(required=True)
    attempts = fields.IntField(required=True, min_value=0, default=0)
    last_error = fields.StringField(null=True)
    delivered = fields.BooleanField(required=True, default=False)
    delivered_at = fields.DateTimeField(null=True)
    max_attempts = fields.IntField(null=True, min_value=1)
    dead_at = fields.DateTimeField(null=True)  # parked: claims skip it (a missing field reads as null)


class WriteLock(Document):
    """A key concurrent transactions write to serialise themselves (``ResourceOperations.lock``).

    MongoDB has no lock a transaction can wait for, but two transactions writing the same document conflict:
    the later one fails with a transient WriteConflict (at once, or at commit), is run again by
    ``MongoStore.atomically`` and then reads what the first one committed. ``_id`` is the key (a hash of the
    normalised condition), so the collection needs no index of its own; ``writes`` counts the writers, only
    so that every lock is a real change of the document."""

    meta = {"collection": "locks", "allow_inheritance": False, "auto_create_index": False, "strict": False,
            "indexes": []}

    key = fields.StringField(primary_key=True)
    writes = fields.IntField(default=0)


STORED_DOCUMENTS: tuple[type[Document], ...] = (CurrentResource, ResourceVersion, OutboxRecord, WriteLock)
