#!/usr/bin/env python3
"""Set up and run the project with nothing but Python 3.11+.

    python3 dev.py serve [serve options]   the server on the embedded store (http://127.0.0.1:8000/fhir)
    python3 dev.py test [pytest options]    the whole test suite (both stores)
    python3 dev.py demo                     load the sample provider directory into the configured store
    python3 dev.py bench [bench options]    the benchmark (prints figures)
    python3 dev.py COMMAND [options]        any server command: load, validate, outbox ... (python -m fhir_server)

The first run creates ``.venv`` and installs the project with its test dependencies from ``pyproject.toml``;
later runs reinstall only when ``pyproject.toml`` changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
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


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        print(f"Python 3.11 or newer is needed (this is {sys.version.split()[0]}).", file=sys.stderr)
        return 2
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    ensure_installed()
    command, extra = argv[0], argv[1:]
    arguments = COMMANDS.get(command, ["-m", "fhir_server", command])
    return subprocess.run([str(venv_python()), *arguments, *extra], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
