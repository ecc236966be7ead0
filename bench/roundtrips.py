"""MongoDB round trips per request, per workload: commands the server sends, counted by name (a figure no busy
machine can blur). In-process, the ASGI app called directly, on the suite's wire-protocol server (or
``FHIR_BENCH_MONGODB_URL``).

    python bench/roundtrips.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import os
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
from pymongo import monitoring

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import workloads  # noqa: E402
from hotspots import call  # noqa: E402
from run import store_url  # noqa: E402


class Commands(monitoring.CommandListener):
    """Every command started, by name."""

    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def count(url: str, repeat: int, listener: Commands) -> None:
    # Development mode: commands per request of the store itself (no tokens, no AuditEvents).
    os.environ.update(FHIR_STORE=url, FHIR_OUTBOX_ENABLED="false", FHIR_LOG_LEVEL="warning", FHIR_AUTH="off")
    from fhir_server.app import create_app
    from fhir_server.settings import Settings

    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            plan = await workloads.set_up(client, "http://bench/fhir", "/fhir")
        numbers = itertools.count()
        print(f"{'workload':46} {'commands/request':>16}  by name")
        for workload in plan:
            listener.counts.clear()
            for _ in range(repeat):
                await call(app, workload.make(next(numbers)))
            total = sum(listener.counts.values()) / repeat
            names = ", ".join(f"{name} {n / repeat:.1f}" for name, n in listener.counts.most_common())
            print(f"{workload.name:46} {total:16.1f}  {names}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    listener = Commands()
    monitoring.register(listener)  # before any client exists, so that every client reports to it
    workdir = Path(tempfile.mkdtemp(prefix="fhir-roundtrips-"))
    try:
        with store_url("mongo", workdir, "roundtrips") as url:
            asyncio.run(count(url, args.repeat, listener))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
