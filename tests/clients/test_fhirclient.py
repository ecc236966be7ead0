"""The SMART on FHIR Python client (``fhirclient``) against a running server: create, read, search."""

from __future__ import annotations

from fhirclient import client
from fhirclient.models.humanname import HumanName
from fhirclient.models.patient import Patient


def test_create_read_search(live_base_url: str) -> None:
    smart = client.FHIRClient(settings={"app_id": "second-opinion-tests", "api_base": live_base_url + "/"})
    for family in ("Kowalski", "Kowalska", "Nowak"):
        patient = Patient({"gender": "female"})
        name = HumanName()
        name.family = family
        patient.name = [name]
        created = patient.create(smart.server)
        assert created["resourceType"] == "Patient" and created["id"]

    read = Patient.read(created["id"], smart.server)
    assert read.name[0].family == "Nowak" and read.meta.versionId == "1"

    found = list(Patient.where(struct={"family": "kowal"}).perform_resources_iter(smart.server))
    assert sorted(p.name[0].family for p in found) == ["Kowalska", "Kowalski"]
