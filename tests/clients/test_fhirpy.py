"""``fhirpy``'s AsyncFHIRClient against a running server: create, read, search with params and paging."""

from __future__ import annotations

from fhirpy import AsyncFHIRClient


async def test_create_read_search_and_page(live_base_url: str) -> None:
    fhir = AsyncFHIRClient(live_base_url)
    for index in range(5):
        patient = fhir.resource("Patient", gender="male" if index % 2 else "female",
                                name=[{"family": f"Pager{index}"}], birthDate=f"198{index}-01-01")
        await patient.create()
        assert patient.id

    read = await fhir.reference("Patient", patient.id).to_resource()
    assert read["name"][0]["family"] == "Pager4"

    females = await fhir.resources("Patient").search(gender="female").sort("family").fetch_all()
    assert [p["name"][0]["family"] for p in females] == ["Pager0", "Pager2", "Pager4"]

    first_page = await fhir.resources("Patient").search(birthdate__ge="1982-01-01").limit(2).fetch()
    assert len(first_page) == 2
    everyone = await fhir.resources("Patient").fetch_all()  # page size 2: follows next links to the end
    assert len(everyone) == 5
    assert await fhir.resources("Patient").search(family="pager").count() == 5


async def test_patch_as_fhirpy_sends_it(live_base_url: str) -> None:
    """``resource.patch(**fields)`` PATCHes the changed elements as a plain JSON object (a merge patch)."""
    fhir = AsyncFHIRClient(live_base_url)
    patient = fhir.resource("Patient", gender="female", name=[{"family": "Patched"}])
    await patient.create()
    await patient.patch(gender="other", birthDate="1970-05-06")
    stored = await fhir.reference("Patient", patient.id).to_resource()
    assert (stored["gender"], stored["birthDate"], stored["name"][0]["family"]) == ("other", "1970-05-06", "Patched")
    assert stored["meta"]["versionId"] == "2"
