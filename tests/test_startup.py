"""Start-up problems are one clear line on stderr and exit status 2, never a traceback (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "FHIR_STORE": f"sqlite:///{tmp_path / 'fhir.db'}", **env}
    return subprocess.run([sys.executable, "-m", "fhir_server", "serve"], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("port", ["abc", "70000", "0"])
def test_a_bad_port_names_the_variable(tmp_path: Path, port: str) -> None:
    assert_one_line_error(serve(tmp_path, FHIR_PORT=port), "FHIR_PORT", repr(port))


def test_an_unknown_store_scheme_is_named(tmp_path: Path) -> None:
    assert_one_line_error(serve(tmp_path, FHIR_STORE="postgres://db/fhir"), "'postgres'", "FHIR_STORE")


def test_a_data_path_whose_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("x")
    store = f"sqlite:///{tmp_path / 'not-a-dir' / 'data' / 'fhir.db'}"
    assert_one_line_error(serve(tmp_path, FHIR_STORE=store), f"{tmp_path / 'not-a-dir'} is a file")


def test_an_unwritable_data_directory_is_named(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/fhir.db")  # not writable even by root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "fhir.db"
    assert_one_line_error(serve(tmp_path, FHIR_STORE=f"sqlite:///{target}"), str(target.parent))


def test_a_mongodb_that_does_not_answer_fails_within_seconds(tmp_path: Path) -> None:
    url = "mongodb://127.0.0.1:9/fhir"  # the discard port: nobody answers there
    started = time.monotonic()
    result = serve(tmp_path, FHIR_STORE=url)
    assert time.monotonic() - started < 20
    assert_one_line_error(result, url, "did not answer")


def test_credentials_never_appear_in_the_error(tmp_path: Path) -> None:
    result = serve(tmp_path, FHIR_STORE="mongodb://admin:s3cret@127.0.0.1:9/fhir")
    assert_one_line_error(result, "admin:***@127.0.0.1:9")
    assert "s3cret" not in result.stderr


@pytest.mark.mongo
def test_a_standalone_mongodb_is_refused_for_want_of_transactions(tmp_path: Path) -> None:
    """A real standalone server (the suite's MongoDB wire-protocol server, told to present itself as one)."""
    import shutil

    from tests.conftest import _free_port, _wait_for_mongo, stop_process

    executable = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    port = _free_port()
    standalone = subprocess.Popen([executable, "--host", "127.0.0.1", "--port", str(port), "--storage-path",
                                   ":memory:", "--standalone", "--log-level", "ERROR"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_mongo(f"mongodb://127.0.0.1:{port}/?directConnection=true", standalone)
        result = serve(tmp_path, FHIR_STORE=f"mongodb://127.0.0.1:{port}/fhir?directConnection=true")
    finally:
        stop_process(standalone)
    assert_one_line_error(result, f"127.0.0.1:{port}", "standalone", "replica set")
