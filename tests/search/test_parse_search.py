"""parse_search: query-string pairs -> SearchQuery, and 400s for what cannot be understood."""

from __future__ import annotations

import pytest

from fhir_server.errors import FhirError
from fhir_server.search.query import (
    DateValue,
    Include,
    ReferenceValue,
    SortKey,
    StringValue,
    TokenValue,
    UriValue,
    parse_search,
)


def parse(resource_type: str, *params: tuple[str, str], strict: bool = False):
    return parse_search(resource_type, list(params), default_count=20, max_count=100, strict=strict)


def rejected(resource_type: str, *params: tuple[str, str], strict: bool = False) -> FhirError:
    with pytest.raises(FhirError) as caught:
        parse(resource_type, *params, strict=strict)
    assert caught.value.status == 400
    return caught.value


def only_values(query):
    (criterion,) = query.criteria
    return criterion.values


def test_defaults():
    query = parse("Patient")
    assert query.count == 20 and query.offset == 0 and query.total == "accurate"
    assert query.criteria == [] and query.sort == [] and query.ignored == []


def test_count_is_clamped_and_zero_allowed():
    assert parse("Patient", ("_count", "5000")).count == 100
    assert parse("Patient", ("_count", "0")).count == 0
    assert parse("Patient", ("_offset", "40")).offset == 40


@pytest.mark.parametrize("name", ["_count", "_offset"])
@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_bad_integers_name_the_parameter(name, value):
    assert name in rejected("Patient", (name, value)).issues[0].diagnostics


def test_total_summary_elements():
    assert parse("Patient", ("_total", "none")).total == "none"
    rejected("Patient", ("_total", "some"))
    query = parse("Patient", ("_summary", "count"))
    assert query.summary == "count" and query.count == 0
    rejected("Patient", ("_summary", "maybe"))
    assert parse("Patient", ("_elements", "name,gender")).elements == ["name", "gender"]


def test_presentation_params_and_empty_values_are_skipped():
    query = parse("Patient", ("_format", "json"), ("_pretty", "true"), ("name", ""), strict=True)
    assert query.criteria == [] and query.ignored == []


def test_sort_keys():
    query = parse("Patient", ("_sort", "-birthdate,name,_id,-_lastUpdated"))
    assert query.sort == [
        SortKey("birthdate", "date", True),
        SortKey("name", "string", False),
        SortKey("_id", "token", False),
        SortKey("_lastUpdated", "date", True),
    ]
    assert "shoesize" in rejected("Patient", ("_sort", "shoesize")).issues[0].diagnostics


def test_token_forms():
    values = only_values(parse("Patient", ("identifier", "http://s|1,|2,http://s|,3")))
    assert values == (
        TokenValue("http://s", "1"),
        TokenValue("", "2"),
        TokenValue("http://s", None),
        TokenValue(None, "3"),
    )


def test_escaped_separators():
    values = only_values(parse("Patient", ("identifier", r"s\|x|a\,b\\c,d")))
    assert values == (TokenValue("s|x", "a,b\\c"), TokenValue(None, "d"))


def test_string_values_are_normalised_unless_exact():
    assert only_values(parse("Patient", ("name", "Zoë MÜLLER"))) == (StringValue("zoe muller"),)
    assert only_values(parse("Patient", ("name:exact", "Zoë"))) == (StringValue("Zoë"),)
    query = parse("Patient", ("name:contains", "ÉL"))
    assert query.criteria[0].modifier == "contains" and only_values(query) == (StringValue("el"),)


def test_token_text_modifier_gives_normalised_text():
    query = parse("ServiceRequest", ("code:text", "Second Opinión"))
    assert query.criteria[0].modifier == "text" and only_values(query) == (StringValue("second opinion"),)


def test_missing_modifier():
    (criterion,) = parse("Patient", ("gender:missing", "true")).criteria
    assert criterion.missing is True and criterion.values == ()
    assert parse("Patient", ("gender:missing", "false")).criteria[0].missing is False
    rejected("Patient", ("gender:missing", "maybe"))


def test_unsupported_modifier_is_400():
    rejected("Patient", ("gender:below", "x"))
    rejected("Patient", ("name:not", "x"))


@pytest.mark.parametrize(
    ("resource_type", "param", "value", "expected"),
    [
        ("ServiceRequest", "subject", "Patient/1", ReferenceValue("Patient", "1")),
        ("ServiceRequest", "subject", "Patient/1/_history/2", ReferenceValue("Patient", "1")),
        ("ServiceRequest", "subject", "1", ReferenceValue(None, "1")),  # several target types
        ("ServiceRequest", "patient", "1", ReferenceValue("Patient", "1")),  # one target type
        ("ServiceRequest", "subject:Patient", "1", ReferenceValue("Patient", "1")),
        ("ServiceRequest", "subject", "http://x.org/Patient/1", ReferenceValue(None, None, "http://x.org/Patient/1")),
        ("ServiceRequest", "requester", "urn:uuid:abc", ReferenceValue(None, None, "urn:uuid:abc")),
        ("ServiceRequest", "subject:identifier", "http://s|9", TokenValue("http://s", "9")),
        ("StructureDefinition", "url", "http://x/SD|1.0", UriValue("http://x/SD|1.0")),
    ],
)
def test_reference_and_uri_forms(resource_type, param, value, expected):
    assert only_values(parse(resource_type, (param, value))) == (expected,)


def test_malformed_reference_is_400():
    rejected("ServiceRequest", ("subject", "not/a/reference/at/all"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024", DateValue("eq", "2024-01-01T00:00:00.000000Z", "2025-01-01T00:00:00.000000Z")),
        ("ge2024-02", DateValue("ge", "2024-02-01T00:00:00.000000Z", "2024-03-01T00:00:00.000000Z")),
        ("lt2024-12-31", DateValue("lt", "2024-12-31T00:00:00.000000Z", "2025-01-01T00:00:00.000000Z")),
        ("sa2024-01-01T10:00", DateValue("sa", "2024-01-01T10:00:00.000000Z", "2024-01-01T10:01:00.000000Z")),
        ("eb2024-01-01T10:00:00", DateValue("eb", "2024-01-01T10:00:00.000000Z", "2024-01-01T10:00:01.000000Z")),
        ("ne2024-01-01T10:00:00+02:00", DateValue("ne", "2024-01-01T08:00:00.000000Z", "2024-01-01T08:00:01.000000Z")),
        ("2024-01-01T10:00:00.5Z", DateValue("eq", "2024-01-01T10:00:00.500000Z", "2024-01-01T10:00:00.600000Z")),
        ("ap2024", DateValue("ap", "2024-01-01T00:00:00.000000Z", "2025-01-01T00:00:00.000000Z")),
    ],
)
def test_date_prefixes_and_precisions(value, expected):
    assert only_values(parse("Patient", ("birthdate", value))) == (expected,)


@pytest.mark.parametrize("value", ["2024-13", "2024-02-30", "yesterday", "xx2024", "2024-01-01T25:00", "24"])
def test_bad_dates_are_400_naming_the_parameter(value):
    assert "birthdate" in rejected("Patient", ("birthdate", value)).issues[0].diagnostics


def test_includes():
    query = parse(
        "ServiceRequest",
        ("_include", "ServiceRequest:subject"),
        ("_include", "ServiceRequest:requester:Practitioner"),
        ("_revinclude", "Task:focus"),
        ("_revinclude:iterate", "Task:based-on"),
    )
    assert query.includes == [
        Include("ServiceRequest", "subject"),
        Include("ServiceRequest", "requester", "Practitioner"),
    ]
    assert query.revincludes == [Include("Task", "focus"), Include("Task", "based-on", iterate=True)]
    rejected("ServiceRequest", ("_include", "subject"))


def test_unknown_parameters_are_collected_or_rejected_when_strict():
    query = parse("Patient", ("shoesize", "42"), ("name", "x"), ("subject.name", "y"), ("_include", "Patient:nope"))
    assert query.ignored == ["shoesize", "subject.name", "_include=Patient:nope"]
    assert len(query.criteria) == 1
    error = rejected("Patient", ("shoesize", "42"), ("colour", "red"), strict=True)
    assert "shoesize" in error.issues[0].diagnostics and "colour" in error.issues[0].diagnostics


def test_repeated_parameters_are_anded_and_commas_ored():
    query = parse("Patient", ("name", "a,b"), ("name", "c"))
    assert [c.values for c in query.criteria] == [(StringValue("a"), StringValue("b")), (StringValue("c"),)]


@pytest.mark.parametrize("value", ['{"$ne": null}', "' OR 1=1 --", "$where"])
def test_injection_like_values_stay_strings(value):
    assert only_values(parse("Patient", ("family", value))) == (StringValue(value.lower()),)
    assert only_values(parse("Patient", ("_id", value))) == (TokenValue(None, value),)
