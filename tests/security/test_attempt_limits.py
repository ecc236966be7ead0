"""Attempts at getting a token are limited per name and per address over a sliding window, by the server's clock:
failed token requests per client id, failed sign-ins per account (the API's and the pages' alike), every attempt
per remote address. Beyond the limit: 429 with Retry-After (an OAuth ``slow_down`` error at the API, the sign-in page
at /ui); allowed again once the window has moved on. A storm of wrong passwords against one account locks out
nobody else, except by the per-address limit for those sharing its address."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fhir_server.security.accounts import add_account
from tests.security.conftest import TOKEN_PATH, register, secure_client
from tests.ui.people import csrf_of

SCOPES = "system/Patient.rs"
PASSWORD = "correct horse battery staple"
LIMITS = {"token_attempts_per_client": 3, "sign_in_attempts_per_account": 3, "auth_attempts_per_address": 8,
          "auth_attempts_window_seconds": 60}


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[TestClient]:
    yield from secure_client(f"sqlite:///{tmp_path / 'fhir.db'}", **LIMITS)


@contextmanager
def from_address(client: TestClient, address: str) -> Iterator[None]:
    """Requests of the block come from ``address`` (the test transport's client address)."""
    transport = client._transport  # type: ignore[attr-defined]
    before, transport.client = transport.client, (address, 50000)
    try:
        yield
    finally:
        transport.client = before


def people(client: TestClient, *usernames: str) -> None:
    for username in usernames:
        client.portal.call(lambda name=username: add_account(  # type: ignore[union-attr]
            client.app.state.tokens.store, username=name, password=PASSWORD, practitioner="Practitioner/pract-13",
            organization="Organization/ipa-harbor", role="reviewer", scopes=[SCOPES]))


def sign_in(client: TestClient, username: str, password: str = PASSWORD):
    return client.post("/fhir/auth/sign-in", data={"username": username, "password": password})


def assert_slowed_down(response) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "slow_down"
    assert response.headers["cache-control"] == "no-store"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= LIMITS["auth_attempts_window_seconds"] + 1
    return retry_after


def test_failed_token_requests_beyond_the_clients_limit_wait_for_the_window(limited):
    party = register(limited, "Organization/ehr-a", "ehr", SCOPES)
    other = register(limited, "Organization/ehr-b", "ehr", SCOPES)
    for _ in range(3):
        assert party.token_request(SCOPES, party.assertion(exp_in=-1)).status_code == 401  # expired
    retry_after = assert_slowed_down(party.token_request(SCOPES))  # even a good assertion waits now
    assert other.token_request(SCOPES).status_code == 200  # another client is not held back by this one's limit
    limited.app.state.clock.advance(retry_after - 1)
    assert_slowed_down(party.token_request(SCOPES))
    limited.app.state.clock.advance(1)
    assert party.token_request(SCOPES).status_code == 200


def test_successful_token_requests_do_not_count_against_the_client(limited):
    party = register(limited, "Organization/ehr-a", "ehr", SCOPES)
    for address in ("192.0.2.20", "192.0.2.21"):
        with from_address(limited, address):
            for _ in range(3):
                assert party.token_request(SCOPES).status_code == 200


def test_a_wrong_password_storm_locks_only_its_account_and_its_address(limited):
    people(limited, "dr-target", "dr-other")
    with from_address(limited, "192.0.2.66"):
        for _ in range(3):
            assert sign_in(limited, "dr-target", "not the password at all").status_code == 401
        assert_slowed_down(sign_in(limited, "dr-target"))  # even the right password waits now
        for _ in range(4):  # the address's own limit (8) is not reached yet: another account signs in from it
            assert sign_in(limited, "dr-other").status_code == 200
        assert_slowed_down(sign_in(limited, "dr-other"))  # the 9th attempt from this address
    with from_address(limited, "198.51.100.7"):
        assert sign_in(limited, "dr-other").status_code == 200  # elsewhere, the storm changes nothing
        assert_slowed_down(sign_in(limited, "dr-target"))  # the account itself still waits
    limited.app.state.clock.advance(LIMITS["auth_attempts_window_seconds"] + 1)
    assert sign_in(limited, "dr-target").status_code == 200


def test_successful_sign_ins_do_not_count_against_the_account(limited):
    people(limited, "dr-often")
    with from_address(limited, "192.0.2.10"):
        for _ in range(4):
            assert sign_in(limited, "dr-often").status_code == 200
    with from_address(limited, "192.0.2.11"):
        assert sign_in(limited, "dr-often").status_code == 200


def test_the_sign_in_page_answers_429_with_retry_after(limited):
    people(limited, "dr-page")

    def post(password: str):
        page = limited.get("/ui/sign-in")
        return limited.post("/ui/sign-in", data={"csrf": csrf_of(page.text), "username": "dr-page",
                                                 "password": password, "next": "/ui/worklist"}, follow_redirects=False)

    for _ in range(3):
        assert post("not the password at all").status_code == 401
    refused = post(PASSWORD)
    assert refused.status_code == 429
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= LIMITS["auth_attempts_window_seconds"] + 1
    assert "Too many sign-in attempts" in refused.text
    limited.app.state.clock.advance(retry_after)
    assert post(PASSWORD).status_code == 303


def test_the_token_endpoint_counts_requests_per_address_too(limited):
    parties = [register(limited, f"Organization/ehr-{n}", "ehr", SCOPES) for n in range(3)]
    answers = [party.token_request(SCOPES).status_code for party in parties for _ in range(3)]
    assert answers == [200] * 8 + [429]  # the address's 9th request, though its client has room
    assert limited.post(TOKEN_PATH, data={"grant_type": "client_credentials"}).status_code == 429
