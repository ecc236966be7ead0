"""Bulk loader for the scale test: stored second-opinion requests straight into a store, in large transactions.

It writes through the store's own transaction API (the same version rows and search-index rows the server
writes, one ``extract_index`` per resource) but skips HTTP, validation and the workflow: each request is a
ServiceRequest with its Task, and every tenth one a new Patient (so a member has ten requests). A batch of
requests is one transaction, so the embedded store commits (and syncs) once per batch.

The open work queue does not grow with history: :data:`OPEN_REQUESTS` Tasks are ``in-progress`` (waiting for a
physician: bounded by the decision deadline in real life), every later one is ``completed``. So
``Task?owner=&status=in-progress`` finds the same few rows at 10,000 and at 200,000 stored requests, and any
growth of its latency is the store's doing.

    python bench/bulk.py sqlite:///scale.db 10000 [--first 0]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's package, from anywhere

from fhir_server.clock import Clock  # noqa: E402
from fhir_server.storage import ResourceStore, open_store  # noqa: E402

REQUESTS_PER_PATIENT = 10
OPEN_REQUESTS = 600
OWNERS = ("ppg-valley", "ppg-coastal", "ipa-harbor", "ipa-sunrise", "org-health-net", "org-blue-shield-promise")
SPECIALTIES = ("207RC0000X", "207RG0100X", "207RN0300X", "207RR0500X", "207RX0202X", "207Q00000X")
BATCH = 500


def patient(number: int) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": "http://example.org/mrn", "value": f"bulk-{number}"}],
            "name": [{"family": f"Bulk{number}", "given": ["Ada"]}], "gender": "female" if number % 2 else "male",
            "birthDate": f"{1940 + number % 60}-0{1 + number % 9}-1{number % 10}"}


def service_request(number: int, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.1000.1", "value": f"BULK-{number}"}],
        "status": "active", "intent": "order", "priority": "routine",
        "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0336", "code": "S"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": "2026-11-23T09:15:00-08:00",
        "requester": {"reference": "Practitioner/pract-04"},
        "performerType": {"coding": [{"system": "http://nucc.org/provider-taxonomy",
                                      "code": SPECIALTIES[number % len(SPECIALTIES)]}]},
        "reasonCode": [{"coding": [{"system": "http://example.org/fhir/second-opinion/CodeSystem/second-opinion-reason",
                                    "code": "questions-surgery"}]}],
        "insurance": [{"reference": f"Coverage/bulk-{number // REQUESTS_PER_PATIENT}"}],
    }


def task(number: int, request_id: str, patient_id: str) -> dict[str, Any]:
    open_ = number < OPEN_REQUESTS
    return {
        "resourceType": "Task", "status": "in-progress" if open_ else "completed", "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "approve"}]},
        "businessStatus": {"coding": [{"system": "http://example.org/fhir/second-opinion/CodeSystem/second-opinion-status",
                                       "code": "physician-review" if open_ else "approved"}]},
        "focus": {"reference": f"ServiceRequest/{request_id}"}, "for": {"reference": f"Patient/{patient_id}"},
        "owner": {"reference": f"Organization/{OWNERS[number % len(OWNERS)]}"},
        "restriction": {"period": {"end": "2026-12-04T13:29:42Z"}},
    }


async def load(store: ResourceStore, first: int, count: int) -> float:
    """Store requests ``first`` .. ``first + count - 1``; answers the requests per second of CPU time it took (on
    a busy machine the wall-clock rate says more about the neighbours)."""
    began = time.process_time()
    for start in range(first, first + count, BATCH):
        async with store.transaction() as tx:
            for number in range(start, min(start + BATCH, first + count)):
                patient_id = f"bulk-{number // REQUESTS_PER_PATIENT}"
                if number % REQUESTS_PER_PATIENT == 0:
                    await tx.update({**patient(number // REQUESTS_PER_PATIENT), "id": patient_id})
                request = await tx.update({**service_request(number, patient_id), "id": f"bulk-sr-{number}"})
                await tx.update({**task(number, request[0].id, patient_id), "id": f"bulk-task-{number}"})
    return count / max(time.process_time() - began, 1e-9)


def probe(stored: int) -> dict[str, str]:
    """What the scale searches look for: a member in the middle of the data, an owner, the open status."""
    return {"patient": f"bulk-{stored // REQUESTS_PER_PATIENT // 2}", "owner": OWNERS[0], "open_status": "in-progress"}


async def load_into(url: str, first: int, count: int) -> float:
    store = open_store(url, Clock())
    await store.open()
    try:
        return await load(store, first, count)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("count", type=int)
    parser.add_argument("--first", type=int, default=0)
    args = parser.parse_args()
    rate = asyncio.run(load_into(args.store, args.first, args.count))
    print(f"{args.count} requests stored ({rate:.0f} requests per CPU second, 2-3 resources each)")


if __name__ == "__main__":
    main()
