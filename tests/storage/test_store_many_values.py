"""A criterion of many values (an ``_include`` batch, a long OR list) is answered by every store: SQLite refused a
flat chain of about 500 ORs ("Expression tree is too large"), so the embedded store nests them as a balanced tree."""

from __future__ import annotations

from fhir_server.search.query import Criterion, ReferenceValue, SearchQuery, TokenValue
from tests.storage.helpers import patient

VALUES = 2000


async def test_a_criterion_of_thousands_of_token_values_finds_its_match(store):
    wanted = await store.create(patient("Wanted"), resource_id="wanted")
    await store.create(patient("Other"), resource_id="other")
    values = tuple(TokenValue(None, f"absent-{n}") for n in range(VALUES)) + (TokenValue(None, wanted.id),)
    page = await store.search(SearchQuery("Patient", criteria=[Criterion("_id", "token", values)], total="accurate"))
    assert [item.id for item in page.items] == ["wanted"] and page.total == 1


async def test_a_criterion_of_thousands_of_reference_values_finds_its_match(store):
    await store.create({"resourceType": "Task", "status": "requested", "intent": "order",
                        "for": {"reference": "Patient/p-1999"}}, resource_id="t")
    values = tuple(ReferenceValue("Patient", f"p-{n}") for n in range(VALUES))
    page = await store.search(SearchQuery("Task", criteria=[Criterion("patient", "reference", values)]))
    assert [item.id for item in page.items] == ["t"]
