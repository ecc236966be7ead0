"""Fixtures of the page tests: an app with security on (the pages' sessions stand for access tokens), its clock
frozen at :data:`tests.ui.people.NOW`, the directory loaded, the people's accounts and three open cases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fhir_server.settings import Settings
from tests.apps import frozen_app
from tests.ui.people import NOW, PASSWORD, Cases, add_people, csrf_of, open_cases


class Browserless:
    """A person using the pages through a TestClient: cookies kept, forms posted with the page's CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def sign_in(self, username: str, password: str = PASSWORD) -> Any:
        page = self.client.get("/ui/sign-in")
        return self.client.post("/ui/sign-in", data={"csrf": csrf_of(page.text), "username": username,
                                                     "password": password, "next": "/ui/worklist"},
                                follow_redirects=False)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, follow_redirects=False, **kwargs)

    def post_form(self, page_url: str, action: str, fields: dict[str, str]) -> Any:
        """Post a form of the page at ``page_url`` (its CSRF token included)."""
        csrf = csrf_of(self.client.get(page_url).text)
        return self.client.post(action, data={"csrf": csrf, **fields}, follow_redirects=False)


@pytest.fixture(scope="module")
def shared_pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Cases]]:
    """The app (security on, embedded store) with the people and the three open cases, built once per module
    (tests that decide a case build their own: :func:`pages_to_change`)."""
    yield from _pages(f"sqlite:///{tmp_path_factory.mktemp('ui') / 'fhir.db'}")


@pytest.fixture
def pages(shared_pages: tuple[TestClient, Cases]) -> Iterator[tuple[TestClient, Cases]]:
    """The shared app, its browser state forgotten and its clock back at NOW after each test."""
    client, _ = shared_pages
    client.cookies.clear()
    yield shared_pages
    client.app.state.clock.freeze(NOW)  # type: ignore[attr-defined]


@pytest.fixture
def pages_to_change(store_url: str) -> Iterator[tuple[TestClient, Cases]]:
    """An app of the test's own, on each store (SQLite and MongoDB), for tests that change the cases."""
    yield from _pages(store_url)


def _pages(store_url: str) -> Iterator[tuple[TestClient, Cases]]:
    app = frozen_app(NOW, Settings(store=store_url, auth="on", outbox_enabled=False))
    with TestClient(app) as client:
        client.portal.call(add_people, app.state.tokens.store)  # type: ignore[union-attr]
        yield client, open_cases(client)


@pytest.fixture
def person(pages: tuple[TestClient, Cases]) -> Browserless:
    return Browserless(pages[0])
