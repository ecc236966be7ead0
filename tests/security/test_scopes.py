"""SMART scope syntax (v2 ``cruds`` letters, v1 ``read``/``write``) and the grant rule requested ∩ registered."""

from __future__ import annotations

import pytest

from fhir_server.security.scopes import grant, parse_scope, permits


@pytest.mark.parametrize(("text", "permissions"), [
    ("system/ServiceRequest.cr", {"c", "r"}), ("system/Task.rus", {"r", "u", "s"}), ("system/*.cruds", set("cruds")),
    ("system/Patient.read", {"r", "s"}), ("system/Patient.write", {"c", "u", "d"}), ("user/Task.*", set("cruds")),
    ("system/Task.rs?status=active", {"r", "s"}),
])
def test_scopes_parse(text, permissions):
    scope = parse_scope(text)
    assert scope is not None and scope.permissions == frozenset(permissions)


@pytest.mark.parametrize("text", ["system/Task.rc", "system/Task.rr", "system/task.r", "launch", "openid",
                                  "system/Task.x", "system/Task.", "system/.r", "admin/Task.r"])
def test_malformed_scopes_are_not_scopes(text):
    assert parse_scope(text) is None


def test_granted_scopes_are_requested_and_registered():
    registered = ["system/Patient.rs", "system/Task.rus"]
    assert grant("system/Patient.rs system/Task.cru system/Task.rs system/*.rs launch", registered) == [
        "system/Patient.rs", "system/Task.rs"]
    assert grant("system/*.rs", registered) == []
    assert grant("system/Patient.r system/Claim.r", ["system/*.rs"]) == ["system/Patient.r", "system/Claim.r"]


def test_a_scope_permits_its_letters_on_its_type():
    scopes = [parse_scope("system/Task.rs"), parse_scope("system/*.r")]
    assert permits(scopes, "Task", "s") and permits(scopes, "Patient", "r")
    assert not permits(scopes, "Patient", "s") and not permits(scopes, "Task", "u")
