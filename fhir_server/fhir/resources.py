"""Helpers on resources as JSON (dicts), the form the server keeps them in end to end."""

from __future__ import annotations

from typing import Any

import orjson


def copy_resource(resource: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON data. A JSON round trip through orjson is about 7x faster than ``copy.deepcopy``
    on a ``$submit`` Bundle, and what it copies is JSON by construction."""
    return orjson.loads(orjson.dumps(resource))
