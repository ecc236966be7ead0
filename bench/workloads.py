"""The benchmark's workloads: the data each needs (set up over HTTP) and the requests it sends.

Every workload is a :data:`loadgen.RequestMaker`, so a request can differ each time: ``$submit`` sends one of the
five sample requests in turn (automatic certification, physician review under 90.2.17, an incomplete request
pended for information, an out-of-network choice, a primary-care request: mixed outcomes), each with every
business identifier made unique, so no submission takes the replay path (the stored answer of an identifier
already decided).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson

from loadgen import RequestMaker, http_request

ROOT = Path(__file__).resolve().parent.parent
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
DIRECTORY = ROOT / "tests" / "data" / "directory" / "directory.json"
SUBMIT_SAMPLES = ("submit-health-net-cardiology.json", "submit-bsp-cmc-third-opinion.json", "submit-incomplete.json",
                  "submit-out-of-network-choice.json", "submit-primary-care.json")
PATIENT = {"resourceType": "Patient", "name": [{"family": "Bench", "given": ["Ada"]}], "gender": "female",
           "birthDate": "1970-01-01"}
SPECIALTY = "http://nucc.org/provider-taxonomy|207RC0000X"
UNIQUE = b"@@N@@"  # replaced by the request number


@dataclass(frozen=True)
class Workload:
    name: str
    make: RequestMaker
    # The figure the issue sets for it at 2 workers and 32 clients (requests/s), if any.
    target_rps: int | None = None


def fixed(method: str, target: str, body: bytes | None = None) -> RequestMaker:
    raw = http_request(method, target, body)
    return lambda _number: raw


def numbered(method: str, target: str, template: bytes) -> RequestMaker:
    """A request whose body has :data:`UNIQUE` replaced by the request number (and a matching length)."""
    def make(number: int) -> bytes:
        return http_request(method, target, template.replace(UNIQUE, str(number).encode()))
    return make


def unique_identifiers(bundle: dict) -> bytes:
    """The Bundle with :data:`UNIQUE` appended to every business identifier of every entry."""
    for entry in bundle["entry"]:
        for identifier in entry["resource"].get("identifier", []):
            identifier["value"] = f"{identifier['value']}-{UNIQUE.decode()}"
    return orjson.dumps(bundle)


def submit_samples() -> list[bytes]:
    return [unique_identifiers(orjson.loads((ROOT / "examples" / name).read_bytes())) for name in SUBMIT_SAMPLES]


def rotating(makers: list[RequestMaker]) -> RequestMaker:
    return lambda number: makers[number % len(makers)](number)


def transaction_of(size: int) -> bytes:
    """A transaction Bundle creating ``size`` resources: Patients, and Observations referencing them by urn:uuid
    (so that the transaction rewrites references too)."""
    entries = []
    for number in range(size):
        full_url = f"urn:uuid:00000000-0000-4000-8000-{number:012d}"
        if number % 2 == 0:
            resource = {**PATIENT, "name": [{"family": f"Bench{number}"}]}
        else:
            resource = {"resourceType": "Observation", "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                        "subject": {"reference": f"urn:uuid:00000000-0000-4000-8000-{number - 1:012d}"},
                        "valueQuantity": {"value": 60 + number % 40, "unit": "/min"}}
        entries.append({"fullUrl": full_url, "resource": resource,
                        "request": {"method": "POST", "url": resource["resourceType"]}})
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


async def set_up(client: httpx.AsyncClient, base: str, base_path: str, rounds: int = 4) -> list[Workload]:
    """Load the directory and the data the reads and searches need (``rounds`` submissions of each sample); the
    workloads, in the order they run (reads and searches first, while the data they find is what was set up)."""
    (await client.post(base, content=DIRECTORY.read_bytes(), headers=FHIR_JSON)).raise_for_status()
    patient = (await client.post(f"{base}/Patient", json=PATIENT, headers=FHIR_JSON)).json()
    samples = submit_samples()
    answers = []
    for number, sample in enumerate(samples * rounds):
        response = await client.post(f"{base}/ServiceRequest/$submit", headers=FHIR_JSON,
                                     content=sample.replace(UNIQUE, f"setup{number}".encode()))
        answers.append(response.raise_for_status().json())
    request = answers[0]["entry"][2]["resource"]
    task = answers[0]["entry"][1]["resource"]
    submit = [numbered("POST", f"{base_path}/ServiceRequest/$submit", sample) for sample in samples]
    return [
        Workload("read Patient", fixed("GET", f"{base_path}/Patient/{patient['id']}"), 6000),
        Workload("search ServiceRequest?patient=", fixed(
            "GET", f"{base_path}/ServiceRequest?patient={quote(request['subject']['reference'])}")),
        Workload("search Task?owner=&status=", fixed(
            "GET", f"{base_path}/Task?owner={quote(task['owner']['reference'])}&status={task['status']}")),
        Workload("search PractitionerRole?specialty=&_include=", fixed(
            "GET", f"{base_path}/PractitionerRole?specialty={quote(SPECIALTY)}&_include=PractitionerRole:practitioner")),
        Workload("create Patient", fixed("POST", f"{base_path}/Patient", orjson.dumps(PATIENT)), 2500),
        Workload("$submit (unique, mixed outcomes)", rotating(submit), 800),
        Workload("transaction of 100 entries", fixed("POST", base_path or "/", transaction_of(100))),
    ]


# Searches of the scale test: request -> its target, from what the bulk loader reports it stored.
ScaleSearch = tuple[str, Callable[[dict[str, str]], str]]
SCALE_SEARCHES: tuple[ScaleSearch, ...] = (
    ("search ServiceRequest?patient=", lambda probe: f"/ServiceRequest?patient=Patient/{probe['patient']}"),
    ("search Task?owner=&status=",
     lambda probe: f"/Task?owner=Organization/{probe['owner']}&status={probe['open_status']}"),
    ("search PractitionerRole?specialty=&_include=",
     lambda _probe: f"/PractitionerRole?specialty={quote(SPECIALTY)}&_include=PractitionerRole:practitioner"),
)
