"""People sign in to the pages through an external OpenID Connect provider (a real one, of the tests:
:mod:`tests.security.oidc_provider`), over HTTP: code flow with PKCE, the ID token checked (signature by the
provider's published key, issuer, audience, times on the server's clock, nonce, algorithm), the account linked to
the identity found, and the same session a local sign-in starts. Every refusal is a page without a session."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from fhir_server.app import create_app
from fhir_server.security.identities import link_identity, unlink_identity
from fhir_server.security.oidc_state import PendingSignIn
from fhir_server.settings import Settings
from tests.security.conftest import NOW, KeyPair, secure_settings
from tests.security.oidc_provider import CLIENT_ID, CLIENT_SECRET, ISSUER, TestProvider
from tests.ui.browser import LiveServer
from tests.ui.people import CASE_SCOPES, add_people, api_headers, csrf_of, open_cases

SUBJECT = "f3c1b7e2-reed"


def oidc_settings(store: str, **overrides: Any) -> Settings:
    return secure_settings(store, **{"oidc_issuer": ISSUER, "oidc_client_id": CLIENT_ID,
                                     "oidc_client_secret": CLIENT_SECRET, "oidc_provider_name": "Plan ID", **overrides})


def link(client: TestClient, subject: str = SUBJECT, issuer: str = ISSUER, **person: Any) -> None:
    """Link ``subject`` to Thomas Reed, MD, reviewer at Harbor IPA (``accounts link`` does the same)."""
    details = {"username": "thomas.reed", "practitioner": "Practitioner/pract-13",
               "organization": "Organization/ipa-harbor", "role": "reviewer", "scopes": CASE_SCOPES.split(), **person}
    client.portal.call(lambda: link_identity(client.app.state.tokens.store, issuer=issuer, subject=subject, **details))


class SsoBrowser:
    """A person's browser: the server's pages (cookies kept) and the provider's authorization page."""

    def __init__(self, client: TestClient, provider: TestProvider) -> None:
        self.client = client
        self.issuer = provider.issuer
        self.provider = TestClient(provider.app, base_url="https://id.example.test")

    def start(self, next_page: str = "/ui/worklist") -> str:
        """Click "Sign in with ...": the server's answer sends the browser to the provider."""
        answer = self.client.get("/ui/sign-in/oidc?" + urlencode({"next": next_page}), follow_redirects=False)
        assert answer.status_code == 303, answer.text
        return answer.headers["location"]

    def at_provider(self, authorize_url: str) -> str:
        """Sign in at the provider: it sends the browser back to the callback."""
        assert authorize_url.startswith(self.issuer + "/")
        answer = self.provider.get(authorize_url, follow_redirects=False)
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    def back(self, callback_url: str) -> Any:
        return self.client.get(callback_url, follow_redirects=False)

    def sign_in(self, next_page: str = "/ui/worklist") -> Any:
        return self.back(self.at_provider(self.start(next_page)))

    def has_session(self) -> bool:
        return self.client.get("/ui/worklist", follow_redirects=False).status_code == 200


def build(store: str, provider_now: Any = None, **overrides: Any) -> tuple[TestClient, TestProvider]:
    """An app (security on, its clock frozen at NOW) whose OIDC requests go to a test provider on the same clock."""
    holder: dict[str, Any] = {}
    provider = TestProvider(now=lambda: holder["app"].state.clock())
    app = create_app(oidc_settings(store, **overrides), oidc_transport=httpx.ASGITransport(app=provider.app))
    holder["app"] = app
    app.state.clock.freeze(NOW)
    return TestClient(app), provider


@pytest.fixture
def sso(tmp_path) -> Iterator[tuple[TestClient, TestProvider]]:
    """An app with OIDC configured and the ui people's local accounts, nothing else loaded (embedded store)."""
    client, provider = build(f"sqlite:///{tmp_path / 'fhir.db'}")
    with client:
        client.portal.call(add_people, client.app.state.tokens.store)
        yield client, provider


def refused(answer: Any, status: int, words: str) -> None:
    """The sign-in page with the reason, as a page (no stack trace), and no session started."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert words in answer.text, answer.text
    assert "Traceback" not in answer.text and "fhir_server/" not in answer.text


# -- the whole way ---------------------------------------------------------------------------------------------------
def test_a_linked_reviewer_signs_in_through_the_provider_and_decides_as_the_linked_physician(store_url):
    client, provider = build(store_url)
    with client:
        client.portal.call(add_people, client.app.state.tokens.store)
        cases = open_cases(client)
        link(client)
        browser = SsoBrowser(client, provider)
        case_url = f"/ui/cases/{cases.harbor}"

        authorize = browser.start(case_url)
        query = parse_qs(urlsplit(authorize).query)
        assert query["redirect_uri"] == ["http://testserver/ui/sign-in/oidc/callback"]
        assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [CLIENT_ID]
        assert query["state"][0] and query["nonce"][0] and query["state"] != query["nonce"]
        answer = browser.back(browser.at_provider(authorize))
        assert answer.status_code == 303 and answer.headers["location"] == case_url
        assert "fhir_ui_oidc=" in answer.headers["set-cookie"]  # the pending sign-in is deleted...
        assert not client.cookies.get("fhir_ui_oidc")

        worklist = client.get("/ui/worklist")
        assert worklist.status_code == 200 and "Signed in as <strong>thomas.reed</strong>" in worklist.text
        assert cases.harbor in worklist.text and cases.valley not in worklist.text  # Harbor IPA's cases only

        page = client.get(case_url).text
        decided = client.post(f"{case_url}/decide", follow_redirects=False, data={
            "csrf": csrf_of(page), "decision": "approve", "findings": "Two opinions are reasonable."})
        assert decided.status_code == 303, decided.text
        task = client.get(f"/fhir/Task/{cases.harbor}", headers=api_headers(client, "committee")).json()
        assert task["status"] == "completed"
        form = next(o["valueReference"]["reference"] for o in task["output"]
                    if o["valueReference"]["reference"].startswith("QuestionnaireResponse/"))
        answers = client.get(f"/fhir/{form}", headers=api_headers(client, "committee")).json()
        assert answers["author"]["reference"] == "Practitioner/pract-13"


def test_the_sign_in_page_offers_the_provider_only_when_one_is_configured(sso, secure):
    client, _ = sso
    offered = client.get("/ui/sign-in?next=/ui/report").text
    assert "Sign in with Plan ID" in offered and 'href="/ui/sign-in/oidc?next=/ui/report"' in offered
    plain = secure.get("/ui/sign-in").text
    assert "Sign in with" not in plain and "/ui/sign-in/oidc" not in plain
    assert secure.get("/ui/sign-in/oidc", follow_redirects=False).status_code == 404
    assert secure.get("/ui/sign-in/oidc/callback?code=x&state=y", follow_redirects=False).status_code == 404


def test_the_session_acts_for_the_linked_account_only(sso):
    client, provider = sso
    link(client, role="group", username="harbor.cm", practitioner="Practitioner/pract-12")
    browser = SsoBrowser(client, provider)
    assert browser.sign_in("/ui/report").status_code == 303
    assert "Signed in as <strong>harbor.cm</strong> (group, Organization/ipa-harbor)" in client.get("/ui/worklist").text
    assert client.get("/ui/report", follow_redirects=False).status_code == 403  # the report is the plan's
    assert client.get("/fhir/Task").status_code == 401  # the API still wants a bearer token


# -- refusals --------------------------------------------------------------------------------------------------------
def test_an_identity_nobody_linked_is_refused_and_never_provisioned(sso):
    client, provider = sso
    link(client)
    provider.subject = "someone-else"
    browser = SsoBrowser(client, provider)
    refused(browser.sign_in(), 403, "no account is linked to this identity")
    assert not browser.has_session()


def test_a_disabled_link_is_refused(sso):
    client, provider = sso
    link(client)
    client.portal.call(lambda: unlink_identity(client.app.state.tokens.store, ISSUER, SUBJECT))
    browser = SsoBrowser(client, provider)
    refused(browser.sign_in(), 403, "the account linked to this identity is disabled")
    assert not browser.has_session()


def test_a_sign_in_the_person_declined_at_the_provider_is_refused(sso):
    client, provider = sso
    link(client)
    provider.error = "access_denied"
    browser = SsoBrowser(client, provider)
    answer = browser.sign_in()
    refused(answer, 401, "Plan ID did not sign you in (access_denied)")
    assert "<b>The user declined</b>" not in answer.text and provider.requests["token"] == 0
    assert not browser.has_session()


def test_a_callback_whose_state_is_not_this_browsers_is_refused(sso):
    client, provider = sso
    link(client)
    browser = SsoBrowser(client, provider)
    callback = browser.at_provider(browser.start())
    forged = callback.replace("state=", "state=x")
    refused(browser.back(forged), 400, "This sign-in was not started here")
    assert provider.requests["token"] == 0 and not browser.has_session()
    # another browser (no pending sign-in of its own, or a forged one) brings the genuine answer: refused too
    stranger = SsoBrowser(TestClient(client.app), provider)
    refused(stranger.back(callback), 400, "This sign-in was not started here")
    stranger.client.cookies.set("fhir_ui_oidc", "eyJzdGF0ZSI6IngifQ.forged", path="/ui/sign-in/oidc")
    refused(stranger.back(callback), 400, "This sign-in was not started here")


def test_a_pending_sign_in_expires_by_the_servers_clock(sso):
    client, provider = sso
    link(client)
    browser = SsoBrowser(client, provider)
    callback = browser.at_provider(browser.start())
    client.app.state.clock.advance(timedelta(seconds=client.app.state.settings.oidc_sign_in_seconds + 1))
    refused(browser.back(callback), 400, "took too long")
    assert not browser.has_session()


@pytest.mark.parametrize(("claims", "words"), [
    ({"nonce": "a nonce of another sign-in"}, "belongs to another sign-in (nonce)"),
    ({"nonce": None}, "belongs to another sign-in (nonce)"),
    ({"aud": "another-application"}, "issued for another application"),
    ({"aud": [CLIENT_ID, "another-application"], "azp": "another-application"}, "issued for another application"),
    ({"iss": "https://id.example.test/realms/other"}, "was not issued by Plan ID"),
    ({"exp": lambda now: now - 61}, "has expired"),
    ({"iat": lambda now: now + 120}, "dated in the future"),
    ({"nbf": lambda now: now + 120}, "dated in the future"),
    ({"exp": None}, "is not acceptable"),
], ids=["nonce", "no-nonce", "audience", "azp", "issuer", "expired", "iat-future", "nbf-future", "no-exp"])
def test_an_id_token_that_fails_a_check_is_refused(sso, claims, words):
    client, provider = sso
    link(client)
    provider.claims = claims
    browser = SsoBrowser(client, provider)
    refused(browser.sign_in(), 401, words)
    assert provider.requests["token"] == 1 and not browser.has_session()


def test_the_providers_clock_may_differ_by_the_leeway(sso):
    client, provider = sso
    link(client)
    provider.claims = {"exp": lambda now: now - 50, "iat": lambda now: now + 50}
    browser = SsoBrowser(client, provider)
    assert browser.sign_in().status_code == 303 and browser.has_session()


def test_a_wrong_signature_is_refused(sso):
    client, provider = sso
    link(client)
    provider.sign_with = KeyPair("RS256")  # the published key's kid, another key's signature
    browser = SsoBrowser(client, provider)
    refused(browser.sign_in(), 401, "signature does not verify")
    assert not browser.has_session()


@pytest.mark.parametrize("algorithm", ["HS256", "RS512"])
def test_an_algorithm_outside_the_allow_list_is_refused(sso, algorithm):
    client, provider = sso
    link(client)
    provider.algorithm = algorithm  # HS256: signed with the client secret, which anyone holding it could forge
    browser = SsoBrowser(client, provider)
    refused(browser.sign_in(), 401, f"signed with {algorithm}, which this server does not accept")
    assert not browser.has_session()


def test_a_signature_by_a_key_of_another_type_than_the_published_one_is_refused(tmp_path):
    client, provider = build(f"sqlite:///{tmp_path / 'fhir.db'}", oidc_algorithms=["RS256", "ES384"])
    with client:
        link(client)
        provider.algorithm, provider.sign_with = "ES384", KeyPair("ES384")  # the published key is an RSA key
        refused(SsoBrowser(client, provider).sign_in(), 401, "is not acceptable")


def test_an_unsigned_id_token_is_refused(sso):
    client, provider = sso
    link(client)
    provider.algorithm = "none"
    browser = SsoBrowser(client, provider)
    refused(browser.sign_in(), 401, "signed with none, which this server does not accept")


def test_a_provider_that_cannot_be_reached_is_a_page_not_an_error(sso):
    client, provider = sso
    provider.broken = True
    answer = client.get("/ui/sign-in/oidc", follow_redirects=False)
    refused(answer, 502, "Plan ID could not be reached (discovery)")
    assert "down for maintenance" not in answer.text


def test_a_callback_without_a_code_is_refused(sso):
    client, provider = sso
    browser = SsoBrowser(client, provider)
    callback = browser.at_provider(browser.start())
    without_code = callback.split("?")[0] + "?" + urlencode({"state": parse_qs(urlsplit(callback).query)["state"][0]})
    refused(browser.back(without_code), 400, "without a sign-in code")


# -- what the server fetches from the provider ---------------------------------------------------------------------
def test_discovery_and_keys_are_cached_and_fetched_again_after_their_time(sso):
    client, provider = sso
    link(client)
    for _ in range(3):
        client.cookies.clear()
        assert SsoBrowser(client, provider).sign_in().status_code == 303
    assert provider.requests["discovery"] == 1 and provider.requests["jwks"] == 1
    client.app.state.clock.advance(client.app.state.settings.oidc_discovery_cache_seconds + 1)
    client.cookies.clear()
    assert SsoBrowser(client, provider).sign_in().status_code == 303
    assert provider.requests["discovery"] == 2 and provider.requests["jwks"] == 2


def test_rotated_keys_are_fetched_again_when_a_token_names_an_unknown_kid(sso):
    client, provider = sso
    link(client)
    assert SsoBrowser(client, provider).sign_in().status_code == 303
    provider.rotate()
    client.cookies.clear()
    browser = SsoBrowser(client, provider)
    assert browser.sign_in().status_code == 303 and browser.has_session()
    assert provider.requests["jwks"] == 2 and provider.requests["discovery"] == 1


def test_a_kid_the_provider_does_not_publish_even_after_fetching_again_is_refused(sso):
    client, provider = sso
    link(client)
    provider.kid = "a-key-nobody-published"
    browser = SsoBrowser(client, provider)
    refused(browser.sign_in(), 401, "signed with a key it does not publish")
    assert provider.requests["jwks"] == 2  # fetched, then fetched again for the unknown kid
    assert not browser.has_session()


def test_the_provider_is_reached_over_the_network_by_default(tmp_path):
    """No transport handed in: discovery, token and keys over real HTTP, to the provider served on a loopback port."""
    holder: dict[str, Any] = {}
    provider = TestProvider(now=lambda: holder["app"].state.clock())
    with LiveServer(provider.app) as live:  # type: ignore[arg-type]
        provider.issuer = f"{live.url}/realms/plan"
        app = create_app(oidc_settings(f"sqlite:///{tmp_path / 'fhir.db'}", oidc_issuer=provider.issuer))
        holder["app"] = app
        app.state.clock.freeze(NOW)
        with TestClient(app) as client:
            link(client, issuer=provider.issuer)
            browser = SsoBrowser(client, provider)
            assert browser.sign_in().status_code == 303 and browser.has_session()
    assert provider.requests["discovery"] == provider.requests["token"] == provider.requests["jwks"] == 1


# -- linking by another claim --------------------------------------------------------------------------------------
def test_linking_by_a_verified_email_address(tmp_path):
    client, provider = build(f"sqlite:///{tmp_path / 'fhir.db'}", oidc_link_claim="email")
    with client:
        link(client, subject="t.reed@harbor.example")
        provider.claims = {"email": "t.reed@harbor.example", "email_verified": False}
        refused(SsoBrowser(client, provider).sign_in(), 403, "did not say who you are (email)")
        provider.claims = {"email": "t.reed@harbor.example", "email_verified": True}
        assert SsoBrowser(client, provider).sign_in().status_code == 303


def test_the_pkce_challenge_is_rfc_7636s_s256():
    pending = PendingSignIn("state", "nonce", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "https://x/cb", "/ui/", 0)
    assert pending.code_challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636, appendix B
    fresh = PendingSignIn.start("https://x/cb", "/ui/worklist", NOW, 600)
    assert 43 <= len(fresh.code_verifier) <= 128 and len({fresh.state, fresh.nonce, fresh.code_verifier}) == 3
    assert fresh.expires == int(NOW.timestamp()) + 600


def test_an_issuer_needs_a_client_id():
    with pytest.raises(ValidationError, match="oidc_client_id"):
        Settings(oidc_issuer=ISSUER)
    with pytest.raises(ValidationError, match="oidc_algorithms"):
        Settings(oidc_issuer=ISSUER, oidc_client_id=CLIENT_ID, oidc_algorithms=["HS256"])


# -- linking from the command line ---------------------------------------------------------------------------------
def accounts(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fhir_server", "accounts", *args], capture_output=True, text=True,
                          timeout=120)


def test_accounts_are_linked_and_unlinked_from_the_command_line_into_the_running_servers_store(sso):
    client, provider = sso
    store = client.app.state.settings.store
    identity = ("--store", store, "--issuer", ISSUER, "--subject", SUBJECT)
    linked = accounts("link", *identity, "--practitioner", "Practitioner/pract-13", "--organization",
                      "Organization/ipa-harbor", "--role", "reviewer", "--scopes", CASE_SCOPES)
    assert linked.returncode == 0, linked.stdout + linked.stderr
    assert json.loads(linked.stdout) == {
        "issuer": ISSUER, "subject": SUBJECT, "username": SUBJECT, "practitioner": "Practitioner/pract-13",
        "organization": "Organization/ipa-harbor", "role": "reviewer", "scopes": CASE_SCOPES.split(), "enabled": True}
    browser = SsoBrowser(client, provider)
    assert browser.sign_in().status_code == 303 and browser.has_session()

    unlinked = accounts("unlink", *identity)
    assert unlinked.returncode == 0 and json.loads(unlinked.stdout)["enabled"] is False
    client.cookies.clear()
    refused(SsoBrowser(client, provider).sign_in(), 403, "is disabled")


def test_a_link_names_who_the_person_is_here(sso):
    client, _ = sso
    wrong = accounts("link", "--store", client.app.state.settings.store, "--issuer", "id.example.test", "--subject",
                     SUBJECT, "--practitioner", "pract-13", "--organization", "Organization/ipa-harbor", "--role",
                     "reviewer", "--scopes", "Task.read")
    assert wrong.returncode == 1
    problems = {issue["expression"][0] for issue in json.loads(wrong.stdout)["issue"]}
    assert problems == {"issuer", "practitioner", "scopes"}
    missing = accounts("unlink", "--store", client.app.state.settings.store, "--issuer", ISSUER, "--subject", "nobody")
    assert missing.returncode == 1 and "no account is linked to nobody" in missing.stdout
