"""Used client assertion ids (``jti``) are kept only while a replay could pass the ``exp`` check: once an
assertion's ``exp`` is ``replay_leeway_seconds`` past, a later token request removes its record for good (no
history left); a live one still refuses its replay. On both stores, with the server's clock moved."""

from __future__ import annotations

from fhir_server.security.records import get_record, record_id
from fhir_server.security.tokens import JTI_KIND
from tests.security.conftest import register

SCOPES = "system/Patient.rs"


def test_a_lapsed_assertions_record_is_removed_and_a_live_one_still_refuses_its_replay(secure_each):
    app = secure_each.app
    store = app.state.tokens.store
    party = register(secure_each, "Organization/ehr-a", "ehr", SCOPES)
    early_key = f"{party.client_id} early"

    exp = int(app.state.clock().timestamp() + 60)
    assert party.token_request(SCOPES, party.assertion(jti="early", exp_in=60)).status_code == 200
    assert secure_each.portal.call(get_record, store, JTI_KIND, early_key) == {"exp": exp}

    app.state.clock.advance(60 + app.state.settings.replay_leeway_seconds + 1)
    live = party.assertion(jti="live", exp_in=240)
    assert party.token_request(SCOPES, live).status_code == 200  # accepted, and lapsed records dropped

    assert secure_each.portal.call(get_record, store, JTI_KIND, early_key) is None
    history = secure_each.portal.call(store.history, "Basic", record_id(JTI_KIND, early_key))
    assert history.items == []  # gone for good, not a deletion marker
    replayed = party.token_request(SCOPES, live)
    assert replayed.status_code == 401 and "used before" in replayed.json()["error_description"]


def test_a_record_whose_assertion_lapsed_only_within_the_leeway_is_kept(secure_each):
    app = secure_each.app
    store = app.state.tokens.store
    party = register(secure_each, "Organization/ehr-a", "ehr", SCOPES)
    assert party.token_request(SCOPES, party.assertion(jti="recent", exp_in=60)).status_code == 200
    app.state.clock.advance(61)  # expired, but within the leeway
    assert party.token_request(SCOPES).status_code == 200
    assert secure_each.portal.call(get_record, store, JTI_KIND, f"{party.client_id} recent") is not None

