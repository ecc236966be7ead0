"""Where a real server process spends its time under load: py-spy samples it while the load generator drives one
workload, and the collapsed stacks are summarised as text (self time and inclusive time per function).

    python bench/flame.py --workload create [--seconds 8] [--clients 8] [--top 30] [--store URL]

Needs ``py-spy`` (``pip install py-spy``; not a dependency of the server) and permission to trace the process.
One worker, access log off; the summary is what the performance note quotes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import loadgen
from run import BASE_PATH, free_port, server, set_up


def summarise(raw: Path, top: int) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed (``raw``) output."""
    own: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [frame.split(" (")[0] + " " + frame.split("(")[-1].split(":")[0].split("/")[-1]
                  for frame in stack.split(";") if frame]
        total += count
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples", "", "self %   function"]
    lines += [f"{100 * n / total:6.1f}   {name}" for name, n in own.most_common(top)]
    lines += ["", "incl %   function"]
    lines += [f"{100 * n / total:6.1f}   {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", required=True, help="text in the workload's name (read, create, submit...)")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--store", default=None)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    workdir = Path(tempfile.mkdtemp(prefix="fhir-flame-"))
    try:
        port = free_port()
        env = {"FHIR_LOG_LEVEL": "warning", "FHIR_WORKERS": "1", "FHIR_BASE_PATH": BASE_PATH, "FHIR_AUTH": "off",
               "FHIR_STORE": args.store or f"sqlite:///{workdir / 'flame.db'}"}
        with server([sys.executable, "-m", "fhir_server", "serve"], env, port) as process:
            chosen = [w for w in asyncio.run(set_up(f"http://127.0.0.1:{port}{BASE_PATH}"))
                      if args.workload in w.name][0]
            raw = workdir / "stacks.txt"
            load = threading.Thread(target=loadgen.run, args=("127.0.0.1", port, chosen.make), kwargs={
                "concurrency": args.clients, "duration": args.seconds + 1, "warmup": 0.5,
                "numbers": itertools.count()})
            load.start()
            subprocess.run([py_spy, "record", "--format", "raw", "--rate", "200", "--duration", str(int(args.seconds)),
                            "--nonblocking", "--output", str(raw), "--pid", str(process.pid)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            load.join()
        print(f"== {chosen.name}, {args.clients} clients, one worker")
        print(summarise(raw, args.top))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
