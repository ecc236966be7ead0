"""Plan rules are data: loading, checking and extending them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from fhir_server.errors import FhirError
from fhir_server.second_opinion.plans import SITUATIONS, load_catalog
from fhir_server.settings import PROJECT_ROOT


def test_both_shipped_plans_map_every_situation(catalog):
    assert set(catalog.plans) == {"health-net-commercial", "blue-shield-promise-cmc"}
    for rules in catalog.plans.values():
        assert set(SITUATIONS) <= set(rules.decisions)
        assert rules.due_times.expedited_hours == 72 and rules.due_times.routine_business_days == 5
        assert rules.due_times.calendar.time_zone == "America/Los_Angeles"


def test_policy_differences_are_in_the_data(catalog):
    """Health Net: automatic certification, equivalents, no certification; 90.2.17: CMO review (procedure 4),
    board-certified same specialty (6b), expert panel, third opinion covered, copies to the plan (10)."""
    hn, bsp = catalog.plans["health-net-commercial"], catalog.plans["blue-shield-promise-cmc"]
    assert hn.outcome_for("complete-qualifying") == "certify"
    assert hn.outcome_for("member-choice-out-of-network") == "member-services"
    assert bsp.outcome_for("complete-qualifying") == "physician-review"
    assert (hn.equivalent_specialties, bsp.equivalent_specialties) == (True, False)
    assert (hn.board_certification_required(False), bsp.board_certification_required(False)) == (False, True)
    assert bsp.board_certification_required(True) is False  # 6a: "appropriately qualified" PCP
    assert bsp.expert_panel_identifier == "bsp-cmc-second-opinion-expert-panel" and hn.expert_panel_identifier is None
    assert (hn.third_opinion_covered, bsp.third_opinion_covered) == (False, True)
    assert hn.plan_copy_endpoint is None and bsp.plan_copy_endpoint is None  # no live endpoint ships: settings say
    assert bsp.plan_copy_max_attempts == 15 and hn.plan_copy_max_attempts is None


def test_adding_a_plan_is_adding_a_data_file(tmp_path: Path):
    mappings = tmp_path / "mappings"
    shutil.copytree(PROJECT_ROOT / "mappings", mappings)
    data = yaml.safe_load((mappings / "plans" / "health-net-commercial.yaml").read_text())
    data.update(key="acme-gold", display="Acme Gold")
    data["decisions"]["complete-qualifying"] = "physician-review"
    (mappings / "plans" / "acme-gold.yaml").write_text(yaml.safe_dump(data))
    rules = load_catalog(mappings).rules_for("acme-gold")
    assert rules.display == "Acme Gold" and rules.outcome_for("complete-qualifying") == "physician-review"


def test_a_plan_file_missing_a_situation_fails_at_load(tmp_path: Path):
    mappings = tmp_path / "mappings"
    shutil.copytree(PROJECT_ROOT / "mappings", mappings)
    path = mappings / "plans" / "health-net-commercial.yaml"
    data = yaml.safe_load(path.read_text())
    del data["decisions"]["nobody-qualified"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="nobody-qualified"):
        load_catalog(mappings)


def test_unknown_plan_is_a_422(catalog):
    with pytest.raises(FhirError) as raised:
        catalog.rules_for("acme-gold", "Bundle.entry[2].resource.class")
    assert raised.value.status == 422 and raised.value.issues[0].expression == ("Bundle.entry[2].resource.class",)


def test_no_plan_is_named_in_the_code():
    """"The rules engine reads those keys; no `if plan == ...` in code"."""
    sources = (PROJECT_ROOT / "fhir_server" / "second_opinion").glob("*.py")
    named = [p.name for p in sources if re.search(r"health-net|blue-shield|org-health|bsp", p.read_text(), re.I)]
    assert named == []
