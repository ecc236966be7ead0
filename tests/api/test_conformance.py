"""Conformance resources from profiles/ are published at start-up, once: a restart adds no versions."""

from __future__ import annotations

import json

import httpx

from fhir_server.app import create_app
from tests.api.conftest import BASE, api_settings


async def versions_after_start(settings, resource: str) -> int:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            return (await http.get(f"/{resource}/_history")).json()["total"]


async def test_restart_publishes_only_changes(store_url: str, tmp_path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    code_system = {"resourceType": "CodeSystem", "id": "colours", "url": "http://example.org/colours",
                   "status": "active", "content": "complete", "concept": [{"code": "red"}]}
    (profiles / "CodeSystem-colours.json").write_text(json.dumps(code_system))
    settings = api_settings(store_url, profiles_dir=profiles)
    assert await versions_after_start(settings, "CodeSystem/colours") == 1
    assert await versions_after_start(settings, "CodeSystem/colours") == 1
    code_system["concept"].append({"code": "blue"})
    (profiles / "CodeSystem-colours.json").write_text(json.dumps(code_system))
    assert await versions_after_start(settings, "CodeSystem/colours") == 2


async def test_missing_profiles_dir_is_fine(store_url: str, tmp_path) -> None:
    settings = api_settings(store_url, profiles_dir=tmp_path / "absent")
    assert await versions_after_start(settings, "CodeSystem") == 0
