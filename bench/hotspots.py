"""Where the time of one request goes, in-process: prints a profile per scenario, asserts nothing.

Builds the app on a fresh SQLite file, loads the test provider directory, then sends each scenario ``--repeat``
times through an in-process ASGI client (no sockets, no second process), under cProfile, and prints the functions
with the most cumulative time. ``--store`` profiles another store; ``--scenario`` picks some by name.

    python bench/hotspots.py [--repeat 500] [--top 25] [--scenario read --scenario create] [--store URL]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the package is the checkout's
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
PATIENT = {"resourceType": "Patient", "name": [{"family": "Bench", "given": ["Ada"]}], "gender": "female",
           "birthDate": "1970-01-01"}

Request = Callable[[], Awaitable[httpx.Response]]


async def scenarios(client: httpx.AsyncClient) -> dict[str, Request]:
    """Name -> one request of that scenario (the same ones ``bench/run.py`` drives over HTTP)."""
    directory = (ROOT / "tests" / "data" / "directory" / "directory.json").read_bytes()
    (await client.post("/fhir", content=directory, headers=FHIR_JSON)).raise_for_status()
    created = (await client.post("/fhir/Patient", json=PATIENT, headers=FHIR_JSON)).json()
    submit = (ROOT / "examples" / "submit-health-net-cardiology.json").read_bytes()
    specialty = "/fhir/PractitionerRole?specialty=http://nucc.org/provider-taxonomy|207RC0000X&_count=10"
    body = json.dumps(PATIENT).encode()
    return {
        "read": lambda: client.get(f"/fhir/Patient/{created['id']}", headers=FHIR_JSON),
        "search": lambda: client.get(specialty, headers=FHIR_JSON),
        "search-include": lambda: client.get(specialty + "&_include=PractitionerRole:practitioner", headers=FHIR_JSON),
        "create": lambda: client.post("/fhir/Patient", content=body, headers=FHIR_JSON),
        "submit": lambda: client.post("/fhir/ServiceRequest/$submit", content=submit, headers=FHIR_JSON),
    }


async def profile(args: argparse.Namespace, store: str) -> None:
    os.environ.update(FHIR_STORE=store, FHIR_OUTBOX_ENABLED="false", FHIR_LOG_LEVEL="warning")
    from fhir_server.app import create_app
    from fhir_server.settings import Settings

    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            plan = await scenarios(client)
            for name in args.scenario or list(plan):
                send = plan[name]
                (await send()).raise_for_status()  # warm-up, and a failing scenario stops here
                profiler = cProfile.Profile()
                began = time.perf_counter()
                profiler.enable()
                for _ in range(args.repeat):
                    await send()
                profiler.disable()
                elapsed = time.perf_counter() - began
                print(f"\n=== {name}: {args.repeat / elapsed:.0f} req/s in-process, profiler on "
                      f"({elapsed / args.repeat * 1000:.2f} ms each)")
                pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="cumulative", help="pstats sort key: cumulative, tottime, ...")
    parser.add_argument("--scenario", action="append", help="read, search, search-include, create, submit")
    parser.add_argument("--store", default=None, help="store URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fhir-profile-"))
    try:
        asyncio.run(profile(args, args.store or f"sqlite:///{workdir / 'profile.db'}"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
