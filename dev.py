#!/usr/bin/env python3
"""Set up and run the project with nothing but Python 3.11+.

    python3 dev.py serve [serve options]   the server on the embedded store (http://127.0.0.1:8000/fhir)
    python3 dev.py test [pytest options]    the whole test suite (both stores); under CI (CI=true) or with
                                            FHIR_TEST_SHIFTED_DATE set, once more under a shifted clock
    python3 dev.py demo                     load the sample provider directory into the configured store
    python3 dev.py bench [bench options]    the benchmark (prints figures)
    python3 dev.py COMMAND [options]        any server command: load, validate, outbox ... (python -m fhir_server)

The first run creates ``.venv`` and installs the project with its test dependencies from ``pyproject.toml``;
later runs reinstall only when ``pyproject.toml`` changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"
# Commands of this script; anything else is a command of the server's own command line (``python -m fhir_server``).
COMMANDS = {
    "test": ["-m", "pytest", "-q"],
    "demo": ["-m", "fhir_server", "load", "tests/data/directory/directory.json"],
    "bench": ["bench/run.py"],
}


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_installed() -> None:
    """Create the virtualenv and install the project into it, unless it matches pyproject.toml already."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and venv_python().exists():
        return
    print("Installing the project into .venv (first run, or pyproject.toml changed)...", flush=True)
    venv.create(VENV, with_pip=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run([*pip, "-e", ".[test]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted)


# Dates the suite must also pass on, taken in turn (one per day) by the shifted-clock run: the end of a year late
# in the evening (UTC is already next year), a leap day, both US daylight-saving changes, a Saturday, a far year.
SHIFTED_DATES = (
    "2027-12-31 23:30:00",
    "2028-02-29 12:00:00",
    "2029-03-11 10:30:00",
    "2030-11-03 09:30:00",
    "2031-08-16 15:00:00",
    "2035-06-30 22:45:00",
)


def shifted_date() -> str | None:
    """The date of the shifted-clock run: ``FHIR_TEST_SHIFTED_DATE`` (a date, ``rotate``, or ``off``); under CI,
    one of :data:`SHIFTED_DATES` chosen by today's date, so a test that passes only today fails in CI at once."""
    wanted = os.environ.get("FHIR_TEST_SHIFTED_DATE", "rotate" if os.environ.get("CI") else "off").strip()
    if wanted.lower() in ("", "off", "0", "false", "no"):
        return None
    if wanted.lower() == "rotate":
        return SHIFTED_DATES[date.today().toordinal() % len(SHIFTED_DATES)]
    return wanted


def debian_command(command: str, package: str) -> str | None:
    """The path of ``command``, installing Debian's ``package`` with apt-get (as root) where it is missing; None
    where it cannot be had. The suite uses a few such programs (faketime, docker-compose, the browser tests'
    chromium): the test set-up installs them, so a fresh machine needs nothing by hand."""
    found = shutil.which(command)
    if found or not (shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0):
        return found
    print(f"Installing {package} for the test suite...", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": False, "timeout": 600}
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        if not getattr(debian_command, "updated", False):
            subprocess.run(["apt-get", "update", "-qq"], env=environment, **quiet)
            debian_command.updated = True  # type: ignore[attr-defined]
        subprocess.run(["apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=120", package],
                       env=environment, **quiet)
    except subprocess.TimeoutExpired:
        pass
    return shutil.which(command)


def ensure_faketime() -> str:
    """The ``faketime`` command (Debian's package) for the shifted-clock run."""
    found = debian_command("faketime", "faketime")
    if not found:
        raise SystemExit("The shifted-clock run needs faketime (Debian package 'faketime'); install it, or set "
                         "FHIR_TEST_SHIFTED_DATE=off to skip that run.")
    return found


def ensure_browser() -> None:
    """Debian's ``chromium`` and ``chromium-driver`` for the browser tests of the pages under /ui (without them those
    tests are skipped, saying so)."""
    if not (debian_command("chromium", "chromium") and debian_command("chromedriver", "chromium-driver")):
        print("chromium and chromium-driver are missing: the browser tests will be skipped.", flush=True)


def run_tests(extra: list[str]) -> int:
    """The suite; then, when :func:`shifted_date` names one, the same suite again with the machine's clock
    moved there (faketime reaches every process the tests start, the MongoDB test server included)."""
    pytest = [str(venv_python()), *COMMANDS["test"], *extra]
    # tests/test_docker.py checks docker/ with Debian's docker-compose (no Docker engine needed); it says it was
    # skipped where the program cannot be installed.
    debian_command("docker-compose", "docker-compose")
    ensure_browser()
    code = subprocess.run(pytest, cwd=ROOT).returncode
    moment = shifted_date()
    if code != 0 or moment is None:
        return code
    print(f"\nThe suite once more with the clock at {moment} UTC (FHIR_TEST_SHIFTED_DATE=off skips this run):",
          flush=True)
    environment = {**os.environ, "TZ": "UTC"}
    return subprocess.run([ensure_faketime(), moment, *pytest], cwd=ROOT, env=environment).returncode


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        print(f"Python 3.11 or newer is needed (this is {sys.version.split()[0]}).", file=sys.stderr)
        return 2
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    ensure_installed()
    command, extra = argv[0], argv[1:]
    if command == "test":
        return run_tests(extra)
    arguments = COMMANDS.get(command, ["-m", "fhir_server", command])
    return subprocess.run([str(venv_python()), *arguments, *extra], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
