"""Search over HTTP: parameter types, paging links to the end, includes, outcome entries, POST _search."""

from __future__ import annotations

import httpx

from tests.api.conftest import BASE, FHIR_JSON, PAGE_SIZE, patient


async def put(client: httpx.AsyncClient, resource: dict) -> dict:
    response = await client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def seed(client: httpx.AsyncClient) -> None:
    await put(client, {"resourceType": "Organization", "id": "org1", "name": "Acme Clinic"})
    for index, (family, gender, born) in enumerate(
        [("Smith", "female", "1980-01-01"), ("Smythe", "male", "1990-06-15"), ("Jones", "female", "2000-12-31"),
         ("Brown", "male", "1975-03-03"), ("Black", "female", "1985-05-05")]
    ):
        await put(client, patient(family, id=f"p{index}", gender=gender, birthDate=born,
                                  identifier=[{"system": "urn:mrn", "value": f"mrn{index}"}]))
    await put(client, {"resourceType": "Organization", "id": "org2", "name": "Other Group"})
    for index, org in enumerate(["org1", "org1", "org2"]):
        await put(client, {"resourceType": "PractitionerRole", "id": f"r{index}", "active": True,
                           "organization": {"reference": f"Organization/{org}"}})


def ids(bundle: dict, mode: str = "match") -> list[str]:
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode)


async def test_each_parameter_type(client: httpx.AsyncClient) -> None:
    await seed(client)
    cases = {
        (("gender", "female"),): ["p0", "p2", "p4"],  # token
        (("identifier", "urn:mrn|mrn3"),): ["p3"],  # token system|code
        (("family", "sm"),): ["p0", "p1"],  # string (starts with)
        (("family:exact", "Smith"),): ["p0"],
        (("birthdate", "ge1990-01-01"),): ["p1", "p2"],  # date with prefix
        (("gender", "male"), ("birthdate", "lt1980")): ["p3"],  # AND of two criteria
        (("_id", "p0,p4"),): ["p0", "p4"],
    }
    for params, expected in cases.items():
        bundle = (await client.get("/Patient", params=list(params) + [("_count", "50")])).json()
        assert bundle["type"] == "searchset"
        assert ids(bundle) == expected, params
        assert bundle["total"] == len(expected)


async def test_paging_links_followed_to_the_end(client: httpx.AsyncClient) -> None:
    await seed(client)
    seen: list[str] = []
    url: str | None = f"{BASE}/Patient?_sort=family"
    pages = 0
    while url:
        bundle = (await client.get(url)).json()
        pages += 1
        assert bundle["total"] == 5 and len(bundle["entry"]) <= PAGE_SIZE
        assert all(e["fullUrl"] == f"{BASE}/Patient/{e['resource']['id']}" for e in bundle["entry"])
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert links["self"].startswith(f"{BASE}/Patient?")
        if pages > 1:
            assert "previous" in links
        seen += [e["resource"]["name"][0]["family"] for e in bundle["entry"]]
        url = links.get("next")
    assert pages == 2
    assert seen == ["Black", "Brown", "Jones", "Smith", "Smythe"]


async def test_includes_and_revincludes(client: httpx.AsyncClient) -> None:
    await seed(client)
    by_reference = (await client.get("/PractitionerRole", params={"organization": "Organization/org1"})).json()
    assert ids(by_reference) == ["r0", "r1"]
    bundle = (await client.get("/PractitionerRole", params={"_id": "r2", "_include": "PractitionerRole:organization"})).json()
    assert ids(bundle) == ["r2"] and ids(bundle, "include") == ["org2"]
    reverse = (await client.get("/Organization", params={"_id": "org1", "_revinclude": "PractitionerRole:organization"})).json()
    assert ids(reverse) == ["org1"] and ids(reverse, "include") == ["r0", "r1"]


async def test_unknown_parameters_are_ignored_and_named(client: httpx.AsyncClient) -> None:
    await seed(client)
    bundle = (await client.get("/Patient", params={"gender": "male", "colour": "blue"})).json()
    assert ids(bundle) == ["p1", "p3"]
    outcome = next(e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome")
    assert outcome["resourceType"] == "OperationOutcome" and "colour" in outcome["issue"][0]["diagnostics"]
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert "colour" not in self_link and "gender=male" in self_link


async def test_post_search_summary_count_and_elements(client: httpx.AsyncClient) -> None:
    await seed(client)
    posted = await client.post("/Patient/_search", data={"gender": "female"})
    assert posted.status_code == 200 and ids(posted.json()) == ["p0", "p2", "p4"]
    counted = (await client.get("/Patient", params={"_summary": "count"})).json()
    assert counted["total"] == 5 and "entry" not in counted
    subset = (await client.get("/Patient", params={"_id": "p0", "_elements": "gender"})).json()
    resource = subset["entry"][0]["resource"]
    assert resource["gender"] == "female" and "name" not in resource and resource["id"] == "p0"
    assert any(tag["code"] == "SUBSETTED" for tag in resource["meta"]["tag"])


async def test_conformance_resources_are_served_and_searchable(client: httpx.AsyncClient) -> None:
    url = "http://example.org/fhir/second-opinion/StructureDefinition/second-opinion-request"
    read = await client.get("/StructureDefinition/second-opinion-request")
    assert read.status_code == 200 and read.json()["url"] == url
    found = (await client.get("/StructureDefinition", params={"url": url})).json()
    assert ids(found) == ["second-opinion-request"]


async def test_system_search_pages_across_types(client: httpx.AsyncClient) -> None:
    await seed(client)  # 5 patients, 2 organizations, 3 roles
    seen: list[str] = []
    url: str | None = f"{BASE}?_type=Organization,Patient,PractitionerRole&_sort=_id"
    while url:
        bundle = (await client.get(url)).json()
        assert bundle["total"] == 10 and len(bundle["entry"]) <= PAGE_SIZE
        seen += [entry["resource"]["id"] for entry in bundle["entry"]]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert seen == ["org1", "org2", "p0", "p1", "p2", "p3", "p4", "r0", "r1", "r2"]
    filtered = (await client.get("", params={"_type": "Patient,Organization", "_id": "p1,org2"})).json()
    assert ids(filtered) == ["org2", "p1"]
    no_type = await client.get("", params={"_id": "p1"})
    assert no_type.status_code == 400 and no_type.json()["issue"][0]["expression"] == ["_type"]
    assert (await client.get("", params={"_type": "Nope"})).status_code == 404
