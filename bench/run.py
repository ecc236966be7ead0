"""Throughput and memory benchmark: prints figures, asserts nothing.

Starts the server on a loopback port with a fresh embedded store (or the store given by ``--store``), loads the
test provider directory, then drives each scenario with a load generator in a separate process (``hey`` when it
is installed, else a small asyncio client in this process) and prints requests/s, latency percentiles and the
server's resident memory. Targets are printed beside the figures; they are goals, not assertions.

    python bench/run.py [--requests 4000] [--concurrency 32] [--workers 2] [--store sqlite:///...|mongo]
                        [--only read --only search]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FHIR_JSON = "application/fhir+json"
# The bench's access token (security is on, as in production): set once the server is up.
AUTH_HEADERS: dict[str, str] = {}


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    body: bytes | None = None
    target_rps: int = 0


@dataclass
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn workers), in MiB."""
    total_kib = 0
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total_kib / 1024


def run_hey(url: str, scenario: Scenario, requests: int, concurrency: int) -> Result:
    cmd = ["hey", "-n", str(requests), "-c", str(concurrency), "-m", scenario.method,
           "-H", f"Accept: {FHIR_JSON}", "-T", FHIR_JSON,
           *(arg for name, value in AUTH_HEADERS.items() for arg in ("-H", f"{name}: {value}"))]
    body_file = None
    if scenario.body is not None:
        body_file = tempfile.NamedTemporaryFile(delete=False, suffix=".json")
        body_file.write(scenario.body)
        body_file.close()
        cmd += ["-D", body_file.name]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    if body_file:
        os.unlink(body_file.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = float(re.search(r"50%+ in ([\d.]+) secs", out).group(1)) * 1000
    p99 = float(re.search(r"99%+ in ([\d.]+) secs", out).group(1)) * 1000
    statuses = dict((int(c), int(n)) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    errors = sum(n for code, n in statuses.items() if code >= 400)
    return Result(rps, p50, p99, errors)


async def run_python(url: str, scenario: Scenario, requests: int, concurrency: int) -> Result:
    latencies: list[float] = []
    errors = 0
    remaining = iter(range(requests))
    headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON, **AUTH_HEADERS}

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for _ in remaining:
            start = time.perf_counter()
            response = await client.request(scenario.method, url, content=scenario.body, headers=headers)
            latencies.append(time.perf_counter() - start)
            errors += response.status_code >= 400

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:
        began = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return Result(requests / elapsed, statistics.median(latencies) * 1000,
                  latencies[int(len(latencies) * 0.99) - 1] * 1000, errors)


def wait_until_up(base: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit("server did not start")


def scenarios(client: httpx.Client, base: str) -> list[Scenario]:
    patient = {"resourceType": "Patient", "name": [{"family": "Bench", "given": ["Ada"]}], "gender": "female",
               "birthDate": "1970-01-01"}
    created = client.post(f"{base}/Patient", json=patient, headers={"Content-Type": FHIR_JSON}).json()
    submit = (ROOT / "examples" / "submit-health-net-cardiology.json").read_bytes()
    for family in ("Bench", "Lovelace"):  # a history of three versions
        client.put(f"{base}/Patient/{created['id']}", headers={"Content-Type": FHIR_JSON},
                   json={**patient, "id": created["id"], "name": [{"family": family}]}).raise_for_status()
    specialty = "/PractitionerRole?specialty=http://nucc.org/provider-taxonomy|207RC0000X&_count=10"
    return [
        Scenario("metadata", "GET", "/metadata", target_rps=3000),
        Scenario("read Patient", "GET", f"/Patient/{created['id']}", target_rps=3000),
        Scenario("search PractitionerRole by specialty", "GET", specialty, target_rps=1500),
        Scenario("  + _include=PractitionerRole:practitioner", "GET",
                 specialty + "&_include=PractitionerRole:practitioner", target_rps=1000),
        Scenario("history of one Patient (3 versions)", "GET", f"/Patient/{created['id']}/_history", target_rps=1500),
        Scenario("create Patient", "POST", "/Patient", json.dumps(patient).encode(), target_rps=1000),
        Scenario("$submit (same identifier: stored answer)", "POST", "/ServiceRequest/$submit", submit, target_rps=500),
    ]


@contextmanager
def mongo_server(workdir: Path) -> Iterator[str]:
    """A ``secantusd-py`` (the MongoDB wire-protocol server of the test dependencies) on a free loopback port,
    storing under ``workdir``; its store URL."""
    executable = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    port = free_port()
    process = subprocess.Popen(
        [executable, "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(workdir / "mongo"),
         "--log-level", "ERROR"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"secantusd-py exited with {process.returncode}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        yield f"mongodb://127.0.0.1:{port}/bench?directConnection=true"
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--store", default=None,
                        help="store URL (default: a fresh SQLite file); 'mongo' starts a secantusd-py for the run")
    parser.add_argument("--only", action="append", help="run only the scenarios whose name contains this text")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="fhir-bench-"))
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        if args.store == "mongo":
            store = cleanup.enter_context(mongo_server(workdir))
        else:
            store = args.store or f"sqlite:///{workdir / 'bench.db'}"
        bench(args, store)


def access_token(store: str, base: str) -> dict[str, str]:
    """Register a plan client (every scope) in the server's store and get a token, as a real client would."""
    from fhir_server.clock import Clock
    from fhir_server.security.cli import assertion, keygen
    from fhir_server.security.clients import register_client
    from fhir_server.storage import open_store

    key_dir = tempfile.mkdtemp(prefix="bench-key-")
    jwks = json.loads(Path(keygen(key_dir, "ES384")["jwks"]).read_text())

    async def register() -> str:
        backend = open_store(store, Clock())
        await backend.open()
        try:
            client = await register_client(backend, name="bench", organization="Organization/org-health-net",
                                           role="plan", scopes=["system/*.cruds"], jwks=jwks)
            return client.client_id
        finally:
            await backend.close()

    client_id = asyncio.run(register())
    token_url = f"{base}/auth/token"
    answer = httpx.post(token_url, data={
        "grant_type": "client_credentials", "scope": "system/*.cruds",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(key_dir, client_id, token_url)}, timeout=30)
    answer.raise_for_status()
    shutil.rmtree(key_dir, ignore_errors=True)
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def bench(args: argparse.Namespace, store: str) -> None:
    """Start the server on ``store``, load the directory, run and print every scenario."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = dict(os.environ, FHIR_STORE=store, FHIR_PORT=str(port), FHIR_WORKERS=str(args.workers), FHIR_LOG_LEVEL="warning",
               FHIR_AUTH="on", FHIR_ACCESS_TOKEN_SECONDS="3600")  # one token outlasts the run
    server = subprocess.Popen([sys.executable, "-m", "fhir_server", "serve"], env=env, cwd=ROOT)
    try:
        wait_until_up(base, server)
        AUTH_HEADERS.update(access_token(store, base))
        with httpx.Client(timeout=30, headers=AUTH_HEADERS) as client:
            directory = (ROOT / "tests" / "data" / "directory" / "directory.json").read_bytes()
            client.post(base, content=directory, headers={"Content-Type": FHIR_JSON}).raise_for_status()
            plan = [s for s in scenarios(client, base) if not args.only or any(o in s.name for o in args.only)]
        generator = "hey" if shutil.which("hey") else "python-asyncio"
        print(f"# {args.requests} requests per scenario, concurrency {args.concurrency}, "
              f"{args.workers} server worker(s), {os.cpu_count()} cores, generator {generator}, store {store.split(':')[0]}")
        print(f"{'scenario':45} {'req/s':>9} {'target':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for scenario in plan:
            url = base + scenario.path
            if generator == "hey":
                result = run_hey(url, scenario, args.requests, args.concurrency)
            else:
                result = asyncio.run(run_python(url, scenario, args.requests, args.concurrency))
            print(f"{scenario.name:45} {result.requests_per_second:9.0f} {scenario.target_rps:7d} "
                  f"{result.p50_ms:8.1f} {result.p99_ms:8.1f} {result.errors:7d}")
        print(f"server resident memory after the run: {rss_mib(server.pid):.0f} MiB (target < 500 MiB)")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
