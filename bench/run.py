"""The benchmark: prints every figure of the performance targets, writes them as JSON, asserts nothing.

    python3 dev.py bench [--quick] [--store sqlite|mongo|both] [--workers 1 2] [--defaults off|on|both]
                         [--scale 10000 200000] [--only TEXT] [--duration S] [--clients N]

For each store, production-defaults mode and worker count it starts (on loopback, a fresh store each time):

1. the framework ceiling, ``bench/ceiling.py`` (a constant FastAPI route served exactly like the server);
2. the server, with the sample directory and a few submissions loaded, then drives each workload (read, create,
   the three searches, ``$submit`` with unique identifiers and mixed outcomes, a 100-entry transaction) with
   ``--clients`` connections and then with one, printing requests/s (and its fraction of the ceiling),
   p50/p95/p99, errors, and the peak resident memory of the server's processes;
3. the scale test: the searches at each ``--scale`` count of stored requests (``bench/bulk.py`` loads them),
   with the p95 ratio of the largest to the smallest.

The load generator is ``bench/loadgen.py`` on this machine; on a 2-core machine it competes with the server
for the cores, as ``hey`` did. Production defaults: ``on`` runs the server with its settings' defaults
(authorization on: a client registered in the fresh store sends a bearer token with every request; an AuditEvent
per interaction; access log at ``info``; see :data:`PRODUCTION_DEFAULTS`), ``off`` in development mode (no
tokens, no audit trail, no access log). Results go to ``bench/results/latest.json`` and a
dated copy.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

import bulk
import credentials
import loadgen
import workloads

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
BASE_PATH = "/fhir"

# Environment per production-defaults mode. "on" is the server's own defaults, written out so that a variable of
# the calling shell cannot change them: authorization on (SMART backend tokens: the benchmark registers a client and
# sends its bearer token, see bench/credentials.py), the audit trail on (an AuditEvent per interaction, as
# FHIR_AUDIT=auto makes it with authorization), the access log at info. "off" is development mode: no tokens
# (FHIR_AUTH=off, allowed on loopback only), no audit trail, no access log line per request.
PRODUCTION_DEFAULTS: dict[str, dict[str, str]] = {
    "on": {"FHIR_AUTH": "on", "FHIR_AUDIT": "auto", "FHIR_LOG_LEVEL": "info"},
    "off": {"FHIR_AUTH": "off", "FHIR_AUDIT": "off", "FHIR_LOG_LEVEL": "warning"},
}


def needs_token(defaults: str) -> bool:
    return PRODUCTION_DEFAULTS[defaults]["FHIR_AUTH"] == "on"


# Targets of the issue (2 workers, 32 clients, embedded store): printed beside the figures, never asserted.
TARGETS = {"p99_ms_loaded": 50.0, "p99_ms_one_client": 5.0, "peak_rss_mib": 400.0, "scale_p95_ratio": 1.5}


@dataclass
class Plan:
    duration: float
    one_client_duration: float
    warmup: float
    clients: int
    # Workloads run with fewer clients than ``clients`` (name -> clients).
    clients_for: dict[str, int] = field(default_factory=dict)
    set_up_rounds: int = 4  # submissions of each sample before the runs


def plan_for(plan: Plan, store_kind: str) -> Plan:
    """The plan for a store: against the wire-protocol test server, a few clients (see WIRE_SERVER_CLIENTS), and
    one at a time for the 100-entry transaction."""
    if store_kind == "mongo" and not REAL_MONGODB:
        return Plan(min(plan.duration, WIRE_SERVER_SECONDS), min(plan.one_client_duration, WIRE_SERVER_SECONDS),
                    min(plan.warmup, 0.5), min(plan.clients, WIRE_SERVER_CLIENTS), {"transaction of 100 entries": 1},
                    set_up_rounds=1)
    return plan


def workers_for(workers: list[int], store_kind: str) -> list[int]:
    """Worker counts for a store: against the wire-protocol test server, one (it answers one request at a time:
    a second worker only queues on it)."""
    return workers[:1] if store_kind == "mongo" and not REAL_MONGODB else workers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mib(pid: int) -> float:
    """Sum of the peak resident memory (VmHWM) of a process and its children (the workers), in MiB."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    total_kib = 0
    for process in [pid, *map(int, children)]:
        try:
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kib += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total_kib / 1024


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, timeout: float = 120) -> Iterator[subprocess.Popen]:
    """A server process on ``port``, started and answering ``/metadata``; stopped at the end."""
    process = subprocess.Popen(command, env={**os.environ, **env, "FHIR_PORT": str(port)}, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{' '.join(command)} exited with {process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}{BASE_PATH}/metadata", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{' '.join(command)} did not start")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(port: int, make: loadgen.RequestMaker, clients: int, duration: float, warmup: float,
            numbers: itertools.count) -> dict[str, Any]:
    return loadgen.run("127.0.0.1", port, make, concurrency=clients, duration=duration, warmup=warmup,
                       numbers=numbers).summary()


async def set_up(base: str, token: credentials.Token | None, rounds: int) -> list[workloads.Workload]:
    """The workloads, with their data set up on the server at ``base`` (with the token's header, if any)."""
    async with httpx.AsyncClient(timeout=120, headers=token.headers() if token else None) as client:
        return await workloads.set_up(client, base, BASE_PATH, rounds)


class Report:
    """Rows printed as they come and kept for the JSON file."""

    HEADER = (f"{'store':6} {'defaults':8} {'wk':>2} {'cl':>3} {'workload':46} {'req/s':>8} {'ceil%':>6} "
              f"{'p50':>7} {'p95':>7} {'p99':>7} {'err':>5} {'rssMiB':>7}  target")

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.scale: list[dict[str, Any]] = []
        print(self.HEADER, flush=True)

    def add(self, row: dict[str, Any], ceiling: float | None, target: str = "") -> None:
        row["ceiling_fraction"] = round(row["requests_per_second"] / ceiling, 3) if ceiling else None
        self.rows.append(row)
        fraction = f"{row['ceiling_fraction'] * 100:5.0f}%" if row["ceiling_fraction"] is not None else "     -"
        print(f"{row['store']:6} {row['defaults']:8} {row['workers']:2d} {row['clients']:3d} {row['workload']:46} "
              f"{row['requests_per_second']:8.0f} {fraction} {row['p50_ms']:7.2f} {row['p95_ms']:7.2f} "
              f"{row['p99_ms']:7.2f} {row['errors']:5d} {row.get('peak_rss_mib', 0):7.0f}  {target}", flush=True)


def target_note(workload: workloads.Workload | None, clients: int, workers: int) -> str:
    """The issue's targets that apply to a row (2 workers, embedded store is where they are set)."""
    if clients == 1:
        return f"p99 <= {TARGETS['p99_ms_one_client']:.0f} ms"
    parts = [f"p99 <= {TARGETS['p99_ms_loaded']:.0f} ms"]
    if workload is not None and workload.target_rps and workers == 2:
        parts.insert(0, f">= {workload.target_rps}/s")
    return ", ".join(parts)


def bench_config(report: Report, plan: Plan, store_kind: str, store_url: str, defaults: str, workers: int,
                 only: list[str] | None, key_dir: Path) -> None:
    """The ceiling, then every workload, at ``plan.clients`` and at one client, on one fresh server (with
    authorization on, as a client registered in its store beforehand, its key pair in ``key_dir``)."""
    env = {**PRODUCTION_DEFAULTS[defaults], "FHIR_WORKERS": str(workers), "FHIR_BASE_PATH": BASE_PATH}
    common = {"store": store_kind, "defaults": defaults, "workers": workers}
    numbers = itertools.count()
    ceiling: dict[int, float] = {}
    port = free_port()
    with server([sys.executable, "bench/ceiling.py"], env, port) as process:
        for clients in (plan.clients, 1):
            result = measure(port, workloads.fixed("GET", f"{BASE_PATH}/ceiling"), clients,
                             plan.duration if clients > 1 else plan.one_client_duration, plan.warmup, numbers)
            ceiling[clients] = result["requests_per_second"]
            report.add({**common, "clients": clients, "workload": "ceiling (constant route)", **result,
                        "peak_rss_mib": peak_rss_mib(process.pid)}, None)
    port = free_port()
    base = f"http://127.0.0.1:{port}{BASE_PATH}"
    client = credentials.register(store_url, key_dir) if needs_token(defaults) else None
    with server([sys.executable, "-m", "fhir_server", "serve"], {**env, "FHIR_STORE": store_url}, port) as process:
        token = credentials.Token(client, base) if client else None
        chosen = [w for w in asyncio.run(set_up(base, token, plan.set_up_rounds))
                  if not only or any(text in w.name for text in only)]
        for loaded in (plan.clients, 1):
            for workload in chosen:
                clients = min(loaded, plan.clients_for.get(workload.name, loaded))
                result = measure(port, credentials.authorized(workload.make, token), clients,
                                 plan.duration if clients > 1 else plan.one_client_duration, plan.warmup, numbers)
                report.add({**common, "clients": clients, "workload": workload.name, **result,
                            "peak_rss_mib": peak_rss_mib(process.pid)},
                           ceiling[clients], target_note(workload, clients, workers))


def bench_scale(report: Report, plan: Plan, store_kind: str, store_url: str, counts: list[int], workers: int) -> None:
    """The searches at each count of stored requests, loaded by the bulk loader (counted outside the runs)."""
    env = {**PRODUCTION_DEFAULTS["off"], "FHIR_WORKERS": str(workers), "FHIR_BASE_PATH": BASE_PATH,
           "FHIR_STORE": store_url}
    loaded = 0
    numbers = itertools.count()
    p95: dict[str, list[float]] = {}
    for count in sorted(counts):
        began = time.perf_counter()
        rate = asyncio.run(bulk.load_into(store_url, loaded, count - loaded)) if count > loaded else 0.0
        print(f"# {store_kind}: {count} stored requests ({count - loaded} loaded in "
              f"{time.perf_counter() - began:.0f} s, {rate:.0f} requests per CPU second)", flush=True)
        loaded = count
        port = free_port()
        with server([sys.executable, "-m", "fhir_server", "serve"], env, port) as process:
            httpx.post(f"http://127.0.0.1:{port}{BASE_PATH}", content=workloads.DIRECTORY.read_bytes(),
                       headers=workloads.FHIR_JSON, timeout=60).raise_for_status()
            probe = bulk.probe(count)
            for name, target in workloads.SCALE_SEARCHES:
                make = workloads.fixed("GET", BASE_PATH + target(probe))
                result = measure(port, make, plan.clients, plan.duration, plan.warmup, numbers)
                row = {"store": store_kind, "defaults": "off", "workers": workers, "clients": plan.clients,
                       "workload": f"{name} @{count}", "stored_requests": count, **result,
                       "peak_rss_mib": peak_rss_mib(process.pid)}
                report.scale.append(row)
                p95.setdefault(name, []).append(result["p95_ms"])
                report.add(row, None, "p99 <= 50 ms")
    for name, values in p95.items():
        if len(values) > 1 and values[0]:
            ratio = values[-1] / values[0]
            report.scale.append({"store": store_kind, "workload": name, "p95_ratio": round(ratio, 2),
                                 "counts": sorted(counts)})
            print(f"# {store_kind}: {name}: p95 at {max(counts)} / at {min(counts)} = {ratio:.2f} "
                  f"(target <= {TARGETS['scale_p95_ratio']})", flush=True)


@contextmanager
def store_url(kind: str, workdir: Path, name: str) -> Iterator[str]:
    """A fresh store of ``kind``: a new SQLite file, or a new database on a MongoDB wire-protocol server."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'{name}.db'}" + (f"?synchronous={SQLITE_SYNCHRONOUS}" if SQLITE_SYNCHRONOUS else "")
        return
    url = os.environ.get("FHIR_BENCH_MONGODB_URL")
    if url:
        yield url.rstrip("/") + f"/bench_{name}"
        return
    executable = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    port = free_port()
    process = subprocess.Popen([executable, "--host", "127.0.0.1", "--port", str(port), "--storage-path",
                                str(workdir / f"mongo-{name}"), "--log-level", "ERROR"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("secantusd-py did not start")
            time.sleep(0.2)
        yield f"mongodb://127.0.0.1:{port}/bench?directConnection=true"
    finally:
        process.terminate()
        process.wait(timeout=60)


def environment(args: argparse.Namespace, plan: Plan) -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(), "load_average_before": os.getloadavg(), "python": platform.python_version(),
        "packages": {name: version(name) for name in ("uvicorn", "uvloop", "httptools", "fastapi", "pymongo")},
        "quick": args.quick, "duration_s": plan.duration, "one_client_duration_s": plan.one_client_duration,
        "clients": plan.clients, "sqlite_synchronous": SQLITE_SYNCHRONOUS or "full (default)", "generator": "bench/loadgen.py (uvloop + httptools, same machine)",
        "targets": TARGETS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs, SQLite only, scale 10,000 only")
    parser.add_argument("--store", choices=("sqlite", "mongo", "both"), default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--defaults", choices=("off", "on", "both"), default=None)
    parser.add_argument("--scale", type=int, nargs="*", default=None, help="stored-request counts (none: skip)")
    parser.add_argument("--only", action="append", help="only the workloads whose name contains this text")
    parser.add_argument("--scale-only", action="store_true", help="only the scale test")
    parser.add_argument("--duration", type=float, default=None, help="seconds measured per run")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--sqlite-synchronous", choices=("full", "normal"), default=None,
                        help="the SQLite store's ?synchronous= (default: the server's, full)")
    args = parser.parse_args()
    global SQLITE_SYNCHRONOUS
    SQLITE_SYNCHRONOUS = args.sqlite_synchronous
    plan = Plan(duration=args.duration or (1.5 if args.quick else 4.0),
                one_client_duration=(args.duration or (1.0 if args.quick else 2.0)),
                warmup=0.3 if args.quick else 0.5, clients=args.clients)
    stores = {"sqlite": ["sqlite"], "mongo": ["mongo"], "both": ["sqlite", "mongo"]}[
        args.store or ("sqlite" if args.quick else "both")]
    modes = {"off": ["off"], "on": ["on"], "both": ["off", "on"]}[args.defaults or ("off" if args.quick else "both")]
    scale = args.scale if args.scale is not None else ([10_000] if args.quick else [10_000, 200_000])

    began = time.monotonic()
    info = environment(args, plan)
    print(f"# {info['cores']} cores, load average {info['load_average_before'][0]:.1f} before the run, "
          f"{info['generator']}, {plan.clients} clients, {plan.duration:.1f} s per run; "
          f"stack {info['packages']}", flush=True)
    report = Report()
    workdir = Path(tempfile.mkdtemp(prefix="fhir-bench-"))
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        for kind in stores:
            for defaults in ([] if args.scale_only else modes):
                for workers in workers_for(args.workers, kind):
                    with store_url(kind, workdir, f"{defaults}{workers}") as url:
                        bench_config(report, plan_for(plan, kind), kind, url, defaults, workers, args.only,
                                     workdir / f"client-{kind}-{defaults}{workers}")
                    write_results(info, report, partial=True)
            if scale:
                counts = scale if kind == "sqlite" or REAL_MONGODB else WIRE_SERVER_SCALE
                if kind == "mongo" and not REAL_MONGODB and args.scale is None:
                    continue  # the wire-protocol server's scale test only when asked for (minutes, relative figures)
                with store_url(kind, workdir, "scale") as url:
                    bench_scale(report, plan_for(plan, kind), kind, url, sorted(set(counts)),
                                max(workers_for(args.workers, kind)))
                write_results(info, report, partial=True)
    info["took_s"] = round(time.monotonic() - began)
    info["load_average_after"] = os.getloadavg()
    write_results(info, report)
    print(f"# the benchmark took {info['took_s'] // 60} min {info['took_s'] % 60} s; load average "
          f"{info['load_average_after'][0]:.1f} at the end", flush=True)


# The wire-protocol server of the test dependencies is itself Python, one request at a time and a hundred times
# slower than the server in front of it: against it the figures only compare workloads with each other, with a
# few clients, and its scale test uses small counts. A 100-entry transaction takes it 2-4 s alone; several at once
# abort one another into retries, so that none is answered within the run's grace and the retries still load
# the next runs: it runs with one client there. Runs there last at most WIRE_SERVER_SECONDS, with one worker, after
# one submission of each sample (twenty take it minutes). FHIR_BENCH_MONGODB_URL (a real MongoDB replica set) lifts all this.
REAL_MONGODB = bool(os.environ.get("FHIR_BENCH_MONGODB_URL"))
# The SQLite store's durability mode (--sqlite-synchronous): None is the server's default (full).
SQLITE_SYNCHRONOUS: str | None = None
WIRE_SERVER_CLIENTS = 4
WIRE_SERVER_SECONDS = 2.0  # measured per run at most
# The wire-protocol server's scale test, run only with an explicit --scale: the bulk loader writes a few hundred
# requests a minute there (1,000 took over 10 minutes of the full run), and that server's latency says nothing of
# MongoDB's at scale.
WIRE_SERVER_SCALE = [200, 1_000]


def write_results(info: dict[str, Any], report: Report, partial: bool = False) -> None:
    """The figures so far as JSON (``partial``: after each configuration, so that an interrupted run keeps them)."""
    RESULTS.mkdir(exist_ok=True)
    document = {"environment": {**info, "complete": not partial}, "runs": report.rows, "scale": report.scale}
    text = json.dumps(document, indent=1)
    (RESULTS / "latest.json").write_text(text)
    stamp = info["started"].replace(":", "").replace("-", "")
    (RESULTS / f"{stamp}.json").write_text(text)
    if not partial:
        print(f"# written to {RESULTS / 'latest.json'}", flush=True)


if __name__ == "__main__":
    main()
