"""Where the CPU time of one request goes, in-process: prints a profile per workload, asserts nothing.

Builds the app on a fresh store, sets up the benchmark's data and workloads (``bench/workloads.py``), then calls
the ASGI app directly (no sockets, no HTTP client whose own cost would blur the picture) ``--repeat`` times per
workload under cProfile with a CPU-time clock: time the process spends waiting for a core on a busy machine is
not counted. Prints the CPU time per request and the functions with the most time.

    python bench/hotspots.py [--repeat 500] [--top 25] [--sort tottime] [--workload read --workload create]
                             [--store URL] [--no-profile [--rounds 5]]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the package is the checkout's

import workloads  # noqa: E402


def scope_and_body(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """The ASGI scope and body of one raw HTTP/1.1 request (as the load generator makes them)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode().split("\r\n")
    method, target, _ = request_line.split(" ")
    path, _, query = target.partition("?")
    headers = [(name.lower().encode(), value.encode())
               for name, _, value in (line.partition(": ") for line in header_lines)]
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
            "headers": headers, "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000)}, body


async def call(app: Any, raw: bytes) -> int:
    """One request through the ASGI app; its status."""
    scope, body = scope_and_body(raw)
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def profile(args: argparse.Namespace, store: str) -> None:
    os.environ.update(FHIR_STORE=store, FHIR_OUTBOX_ENABLED="false", FHIR_LOG_LEVEL="warning", FHIR_AUTH="off",
                      FHIR_AUDIT="off")  # development mode: the server's own work, no tokens
    from fhir_server.app import create_app
    from fhir_server.settings import Settings

    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            plan = await workloads.set_up(client, "http://bench/fhir", "/fhir")
        numbers = itertools.count()
        for workload in plan:
            if args.workload and not any(text in workload.name for text in args.workload):
                continue
            status = await call(app, workload.make(next(numbers)))  # warm-up; a failing workload stops here
            if status >= 400:
                raise SystemExit(f"{workload.name}: {status}")
            if args.no_profile:
                # the least CPU per request of several rounds: other processes' load only ever adds to it
                rounds = []
                for _ in range(args.rounds):
                    requests = [workload.make(next(numbers)) for _ in range(args.repeat)]
                    began = time.process_time()
                    for raw in requests:
                        await call(app, raw)
                    rounds.append((time.process_time() - began) / args.repeat * 1000)
                print(f"=== {workload.name}: {min(rounds):.3f} ms CPU per request (least of {args.rounds} rounds "
                      f"of {args.repeat}; median {sorted(rounds)[len(rounds) // 2]:.3f}; in-process, no HTTP)",
                      flush=True)
                continue
            requests = [workload.make(next(numbers)) for _ in range(args.repeat)]
            profiler = cProfile.Profile(time.process_time)
            began = time.process_time()
            profiler.enable()
            for raw in requests:
                await call(app, raw)
            profiler.disable()
            cpu = time.process_time() - began
            print(f"\n=== {workload.name}: {cpu / args.repeat * 1000:.3f} ms CPU per request (profiler on, "
                  "in-process, no HTTP)", flush=True)
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="cumulative", help="pstats sort key: cumulative, tottime, ...")
    parser.add_argument("--workload", action="append", help="only the workloads whose name contains this text")
    parser.add_argument("--store", default=None, help="store URL (default: a fresh SQLite file)")
    parser.add_argument("--no-profile", action="store_true", help="CPU time per request only")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --repeat requests (--no-profile)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fhir-profile-"))
    try:
        asyncio.run(profile(args, args.store or f"sqlite:///{workdir / 'profile.db'}"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
