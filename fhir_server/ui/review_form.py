"""The review form as the page shows it, built from the Questionnaire stored on the server at the time the page is
asked for (``{canon}/Questionnaire/second-opinion-review``), so the page follows the form's definition; and the
answers turned into the Parameters of ``$decide``.

Each item's ``linkId`` names the ``$decide`` parameter it answers (``determination`` answers ``decision``, which
the operation calls it); a ``choice`` item is a group of radio buttons with the Questionnaire's options, ``text`` a
text area, ``string`` a one-line field. Beside the form's items the page asks for what only the operation takes:
the professional who gives the opinion when approving another than the proposed one (``assignedProvider``) and the
consultant of a referral (``consultativeReviewer``). The reviewer is never a field: ``$decide`` records the
signed-in physician.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from fhir_server.second_opinion.codes import CANON
from fhir_server.second_opinion.reports import search_all
from fhir_server.storage.base import ResourceOperations

REVIEW_FORM_URL = f"{CANON}/Questionnaire/second-opinion-review"
PARAMETER_OF_LINK = {"determination": "decision"}  # linkIds whose $decide parameter has another name
REFERENCE_FIELDS = {  # operation inputs the form does not hold: parameter -> (label, help, target type)
    "assignedProvider": ("Assigned provider (PractitionerRole id)",
                         "Only when approving another qualified provider than the proposed one; empty: the proposed provider.",
                         "PractitionerRole"),
    "consultativeReviewer": ("Consultative reviewer (Practitioner id)",
                             "Only when referring for a consultative review: a physician of the requested specialty.",
                             "Practitioner"),
}
FIELD_TYPES = {"choice": "choice", "text": "text", "string": "string"}


@dataclass(frozen=True)
class Option:
    code: str
    label: str


@dataclass(frozen=True)
class FormField:
    """One input of the page's review form."""

    name: str  # the $decide parameter (also the HTML field name)
    label: str
    kind: str  # choice | text | string | reference
    required: bool
    options: tuple[Option, ...] = ()
    help: str = ""
    target: str = ""  # reference fields: the resource type of the id typed in


@dataclass(frozen=True)
class ReviewForm:
    title: str
    fields: tuple[FormField, ...]


async def review_questionnaire(ops: ResourceOperations) -> dict[str, Any] | None:
    """The stored review form (its newest version when several are stored), or None when the server has none."""
    found = await search_all(ops, "Questionnaire", [("url", REVIEW_FORM_URL)])
    active = [q for q in found if q.get("status") != "retired"]
    return max(active, key=lambda q: str(q.get("version", "")), default=None)


def _field(item: Mapping[str, Any]) -> FormField | None:
    kind = FIELD_TYPES.get(item.get("type", ""))
    if kind is None or not item.get("linkId"):
        return None  # display items, groups and types the operation cannot take are not asked
    options = tuple(
        Option(coding.get("code", ""), coding.get("display") or coding.get("code", ""))
        for option in item.get("answerOption", ())
        for coding in [option.get("valueCoding") or {"code": option.get("valueString", "")}]
        if coding.get("code")
    )
    name = PARAMETER_OF_LINK.get(item["linkId"], item["linkId"])
    return FormField(name, item.get("text") or item["linkId"], kind, bool(item.get("required")), options)


def review_form(questionnaire: Mapping[str, Any]) -> ReviewForm:
    """The page's form: the Questionnaire's items in order, then the operation's reference inputs."""
    fields = [f for f in (_field(item) for item in questionnaire.get("item", ())) if f is not None]
    fields += [FormField(name, label, "reference", False, help=help_text, target=target)
               for name, (label, help_text, target) in REFERENCE_FIELDS.items()]
    return ReviewForm(questionnaire.get("title") or questionnaire.get("name") or "Review form", tuple(fields))


def decide_parameters(form: ReviewForm, answers: Mapping[str, str], reviewer: str) -> dict[str, Any]:
    """The ``$decide`` Parameters of the answers given, by ``reviewer`` (the signed-in physician; ``$decide`` records
    the token's physician whatever the Parameters say). Empty answers are left out: ``$decide`` says what is
    missing, in its own words."""
    parameters: list[dict[str, Any]] = [{"name": "reviewer", "valueReference": {"reference": reviewer}}]
    for field in form.fields:
        value = (answers.get(field.name) or "").strip()
        if not value:
            continue
        if field.kind == "choice":
            parameters.append({"name": field.name, "valueCode": value})
        elif field.kind == "reference":
            reference = value if "/" in value else f"{field.target}/{value}"
            parameters.append({"name": field.name, "valueReference": {"reference": reference}})
        else:
            parameters.append({"name": field.name, "valueString": value})
    return {"resourceType": "Parameters", "parameter": parameters}
