"""CPU time of the parts of a ``$submit`` that do not touch the store, on the five sample submissions the benchmark
sends: prints figures, asserts nothing.

- validating a submission (``second_opinion.validation.validate_entries``: structure and profile passes of every
  entry, FHIRPath invariants included), per Bundle;
- index extraction (``search.index.extract_index``), per submitted resource;
- the JSON shape check of a request body (``api.media.check_shape``), per Bundle.

Each figure is the least of several rounds of process CPU time (other processes on a shared machine only ever add
to it), after a warm-up run that fills the caches a running server has filled too.

    python bench/submit_parts.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the package is the checkout's

from fhir_server.api.media import check_shape  # noqa: E402
from fhir_server.errors import FhirError  # noqa: E402
from fhir_server.search.index import extract_index  # noqa: E402
from fhir_server.second_opinion.validation import validate_entries  # noqa: E402
from fhir_server.settings import Settings  # noqa: E402

SAMPLES = ("submit-health-net-cardiology.json", "submit-bsp-cmc-third-opinion.json", "submit-incomplete.json",
           "submit-out-of-network-choice.json", "submit-primary-care.json")


def least_cpu(work: Callable[[], Any], repeat: int, rounds: int) -> tuple[float, float]:
    """(least, median) CPU seconds of one ``work()`` over ``rounds`` rounds of ``repeat`` calls."""
    work()
    times = []
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(repeat):
            work()
        times.append((time.process_time() - began) / repeat)
    return min(times), sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from fhir_server.app import create_app

    with tempfile.TemporaryDirectory(prefix="fhir-parts-") as workdir:
        settings = Settings(store=f"sqlite:///{Path(workdir) / 'parts.db'}", auth="off")
        validator = create_app(settings).state.validator
    bodies = [(ROOT / "examples" / name).read_bytes() for name in SAMPLES]
    bundles = [orjson.loads(body) for body in bodies]
    resources = [dict(entry["resource"], id=entry["resource"].get("id", f"r{n}"))
                 for bundle in bundles for n, entry in enumerate(bundle["entry"])]

    def validate_all() -> None:
        for bundle in bundles:
            try:
                validate_entries(validator, bundle["entry"])
            except FhirError:  # the incomplete sample is refused by design: its issues are found all the same
                pass

    def index_all() -> None:
        for resource in resources:
            extract_index(resource["resourceType"], resource)

    def shape_all() -> None:
        for bundle in bundles:
            check_shape(bundle, settings.max_json_depth, settings.max_array_items)

    for label, work, per, unit in (
        ("validate a submission", validate_all, len(bundles), "Bundle"),
        ("extract_index", index_all, len(resources), "resource"),
        ("JSON shape check", shape_all, len(bundles), "Bundle"),
    ):
        least, median = least_cpu(work, 20, args.rounds)
        print(f"{label:24} {least / per * 1e6:8.1f} us CPU per {unit} (least of {args.rounds} rounds; median "
              f"{median / per * 1e6:.1f})", flush=True)


if __name__ == "__main__":
    main()
