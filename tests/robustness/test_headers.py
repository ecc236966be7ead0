"""Random request headers on every REST interaction: ``If-Match``, ``If-None-Exist``, ``Prefer``,
``Content-Type``, ``Accept`` and ``_format``, and ids with odd characters in the URL."""

from __future__ import annotations

import random
from urllib.parse import quote

import pytest

from tests.robustness.conftest import SCALE, Prober

IF_MATCH = ('W/"1"', '"1"', "1", 'W/"0"', 'W/"-1"', "garbage", 'W/"', "*", 'W/"1", W/"2"', 'W/"99999999999999999999"',
            " ", "W/\"1\"\u0000", 'w/"1"', 'W/"1.5"')
IF_NONE_EXIST = ("garbage", "_id=x", "=", "&&", "name:zzz=1", "unknown=1", "_count=1", "identifier=a|b", "?_id=x",
                 "_id=x&_id=y", "name=%00", "_sort=name", "_include=*", "x" * 3000)
PREFER = ("return=minimal", "return=representation", "return=OperationOutcome", "return=", "return=garbage",
          "handling=strict", "handling=lenient", "respond-async", ";;;", "=,=", "return=minimal; handling=strict",
          "return=\"minimal\"", "wait=10", "é")
CONTENT_TYPES = ("application/fhir+json", "application/json", "application/fhir+json; charset=utf-8",
                 "application/fhir+json; charset=latin-1", "application/fhir+xml", "text/plain", "",
                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ";", "application/json+fhir",
                 "APPLICATION/FHIR+JSON", "*/*")
ACCEPTS = ("application/fhir+json", "application/json", "*/*", "text/html", "application/fhir+xml", "", ";",
           "application/fhir+json;q=0", "text/csv", "application/*", "image/png, */*;q=0.1", "x" * 500)
FORMATS = ("", "json", "xml", "application/fhir+json", "text/html", "%00", "html")
IDS = ("fuzz", "a%20b", "%00", "x" * 65, "é", "..", "a.b-c", "_history", "$validate", "%2F", "-", "1" * 64)


def random_headers(rng: random.Random) -> dict[str, bytes]:
    """Headers as raw bytes (non-ASCII values go out as their UTF-8 bytes, as a careless client sends them)."""
    headers: dict[str, str] = {}
    for name, values in (("If-Match", IF_MATCH), ("If-None-Exist", IF_NONE_EXIST), ("Prefer", PREFER),
                         ("Content-Type", CONTENT_TYPES), ("Accept", ACCEPTS)):
        if rng.random() < 0.4:
            headers[name] = rng.choice(values)
    return {name: value.encode("utf-8") for name, value in headers.items()}


@pytest.mark.parametrize("seed", range(3))
async def test_random_headers_never_break_the_promise(prober: Prober, seed: int) -> None:
    rng = random.Random(8000 + seed)
    created = await prober.send("POST", "/Patient", json={"resourceType": "Patient", "gender": "female"},
                                headers={"Content-Type": "application/fhir+json"})
    known = created.json()["id"]
    for _ in range(300 * SCALE):
        resource_id = rng.choice((known, *IDS))
        body = f'{{"resourceType": "Patient", "id": "{resource_id}", "gender": "male"}}'.encode()
        method, url = rng.choice((
            ("GET", f"/Patient/{resource_id}"), ("PUT", f"/Patient/{resource_id}"), ("POST", "/Patient"),
            ("DELETE", f"/Patient/{resource_id}"), ("GET", f"/Patient/{resource_id}/_history"),
            ("GET", f"/Patient/{resource_id}/_history/1"), ("GET", "/Patient"), ("POST", "/Patient/_search"),
            ("GET", "/metadata"), ("POST", f"/Patient/{resource_id}/$validate"), ("PATCH", f"/Patient/{resource_id}"),
            ("OPTIONS", "/Patient"), ("HEAD", f"/Patient/{resource_id}"),
        ))
        fmt = rng.choice(FORMATS)
        url += f"?_format={quote(fmt)}" if fmt else ""
        await prober.send(method, url, content=body if method in ("PUT", "POST", "PATCH") else None,
                          headers=random_headers(rng))
    prober.verdict()
