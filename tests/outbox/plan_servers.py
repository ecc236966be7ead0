"""Test plan data with a chosen plan-copy endpoint: a copy of mappings/ whose plans send copies there (or not)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from fhir_server.settings import PROJECT_ROOT

BSP = "blue-shield-promise-cmc"


def mappings_with_endpoint(target: Path, endpoint: str | None, max_attempts: int | None = None) -> Path:
    """``mappings/`` copied to ``target`` with every plan's ``delegation.plan_copy_endpoint`` set to ``endpoint``
    (None: this server sends no copies, as the plan's own server) and its ``plan_copy_max_attempts`` to
    ``max_attempts`` (None: the worker's setting decides)."""
    shutil.copytree(PROJECT_ROOT / "mappings", target)
    for path in (target / "plans").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if data["key"] == BSP or endpoint is None:
            data["delegation"]["plan_copy_endpoint"] = endpoint
            data["delegation"]["plan_copy_max_attempts"] = max_attempts
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target
