"""Which rule module checks which type: run on every value of the type in the structure pass, after its children.

Rules the StructureDefinitions state only in prose live in one module per family; this table is where the walk
finds them, so adding a type's rule is one line here.
"""

from __future__ import annotations

from typing import Any, Callable

from fhir_server.fhir.datatype_rules import check_attachment
from fhir_server.fhir.findings import Findings
from fhir_server.fhir.questionnaire_rules import check_questionnaire

TypeRule = Callable[[Findings, dict[str, Any], str], None]

TYPE_RULES: dict[str, TypeRule] = {
    "Attachment": check_attachment,
    "Questionnaire": check_questionnaire,
}
