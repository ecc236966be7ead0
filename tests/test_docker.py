"""docker/: the compose file and the image recipe, checked without a Docker engine (none runs here).

``docker-compose config`` (Debian's ``docker-compose`` package) parses, validates and resolves the compose file
as ``up`` would; the test is skipped, saying so, only where that program is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE = shutil.which("docker-compose")


def compose_config(**env: str) -> dict:
    if COMPOSE is None:
        pytest.skip("docker-compose is not installed (Debian: apt-get install docker-compose); .ci/run installs it")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("FHIR_")}
    result = subprocess.run([COMPOSE, "-f", str(DOCKER / "compose.yaml"), "config"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={**environment, **env})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_is_valid_and_publishes_the_server_on_loopback_only() -> None:
    config = compose_config()
    [port] = config["services"]["fhir"]["ports"]
    published = port if isinstance(port, str) else f"{port.get('host_ip')}:{port['published']}:{port['target']}"
    assert published.startswith("127.0.0.1:8000:8000")
    exposed = compose_config(FHIR_PUBLISH="0.0.0.0:9000")["services"]["fhir"]["ports"][0]
    assert "9000" in str(exposed) and "0.0.0.0" in str(exposed)


def test_the_server_waits_for_a_writable_primary() -> None:
    services = compose_config()["services"]
    assert services["fhir"]["depends_on"]["mongo"]["condition"] == "service_healthy"
    probe = " ".join(services["mongo"]["healthcheck"]["test"])
    assert "rs.initiate" in probe and "isWritablePrimary ? 0 : 1" in probe  # not healthy right after initiate
    assert "replicaSet=rs0" in services["fhir"]["environment"]["FHIR_STORE"]
    assert services["fhir"]["build"]["dockerfile"].endswith("Dockerfile")


def test_the_build_context_leaves_out_virtualenvs_stores_and_caches() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", "data", "*.db", "tests", ".git", "**/__pycache__"} <= ignored


def test_the_image_installs_pinned_runtime_dependencies_and_checks_readiness() -> None:
    recipe = (DOCKER / "Dockerfile").read_text()
    assert "--constraint constraints.txt" in recipe
    assert "/readyz" in recipe and "/fhir/metadata" not in recipe  # at the root, whatever FHIR_BASE_PATH is
    pins = dict(line.split("==") for line in (DOCKER / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in declared:
        name = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")
        assert name in pins, f"{name} has no pin in docker/constraints.txt (run scripts/lock_image_dependencies.py)"
