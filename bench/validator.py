"""Validator speed per resource over the official R4 examples: prints median / p95 / max, asserts nothing.

Each example (``tests/data/r4-examples``, or the JSON files of ``--examples DIR``) is validated ``--repeat`` times
with the server's validator (structure pass, FHIRPath invariants and the profiles it claims) after one warm-up
pass, so compiled expressions and element tables are cached as they are in a running server. The figure per
resource is the best of its repeats (the noise of a shared machine only ever adds time).

    python bench/validator.py [--repeat 5] [--examples DIR] [--slowest 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the package is the checkout's

from fhir_server.fhir.definitions import core_registry  # noqa: E402
from fhir_server.fhir.terminology import core_terminology  # noqa: E402
from fhir_server.fhir.validator import Validator  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--examples", type=Path, default=ROOT / "tests" / "data" / "r4-examples")
    parser.add_argument("--slowest", type=int, default=10)
    args = parser.parse_args(argv)

    validator = Validator(core_registry(), core_terminology())
    examples = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(args.examples.glob("*.json"))}
    timings: dict[str, float] = {}
    errors = 0
    for name, resource in examples.items():
        errors += any(issue.is_error for issue in validator.validate(resource))  # warm-up (and a sanity count)
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            validator.validate(resource)
            best = min(best, time.perf_counter() - start)
        timings[name] = best * 1000

    values = list(timings.values())
    print(f"{len(values)} resources, best of {args.repeat} each; {errors} with errors")
    print(f"per resource: median {statistics.median(values):.2f} ms, p95 {percentile(values, 0.95):.2f} ms, "
          f"max {max(values):.2f} ms (target: median < 5 ms)")
    print(f"invariants skipped (engine cannot evaluate): {len(validator.invariants.skipped)}")
    for (source, key), why in sorted(validator.invariants.skipped.items()):
        print(f"  {key} ({source}): {why[:100]}")
    print(f"slowest {args.slowest}:")
    for name, value in sorted(timings.items(), key=lambda item: -item[1])[: args.slowest]:
        print(f"  {value:8.2f} ms  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
