"""The pages in a real browser (headless Chromium): a physician reviewer signs in, opens the worklist, opens a case,
is told in words what is wrong with an incomplete review, decides the case with findings, sees the worklist change
without reloading it when another case is decided, and the committee opens the quarterly report. Every page is
checked with axe-core and saved as a screenshot."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.settings import Settings
from fhir_server.storage import open_store
from tests.apps import frozen_app
from tests.ui.browser import LiveServer, accessibility_problems, browser_paths, screenshot, start_chromium
from tests.ui.people import NOW, PASSWORD, Cases, add_people, api_headers, open_cases

WAIT_SECONDS = 20


async def _seed_accounts(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    try:
        await add_people(store)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Cases]]:
    browser_paths()  # skip early, before building anything, when there is no browser
    store_url = f"sqlite:///{tmp_path_factory.mktemp('ui-live') / 'fhir.db'}"
    asyncio.run(_seed_accounts(store_url))
    app = frozen_app(NOW, Settings(store=store_url, auth="on", outbox_enabled=False, ui_poll_seconds=1))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        yield server, open_cases(http)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    chromium = start_chromium(tmp_path / "profile")
    try:
        yield chromium
    finally:
        chromium.quit()


def wait_for(browser: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_SECONDS, poll_frequency=0.2).until(condition, message=what)


def sign_in(browser: Any, server: LiveServer, username: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{server.url}/ui/worklist")
    assert "/ui/sign-in" in browser.current_url
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD, Keys.ENTER)  # the keyboard signs in
    wait_for(browser, lambda b: b.current_url.endswith("/ui/worklist"), "the worklist after signing in")


def check_page(browser: Any, name: str) -> None:
    assert accessibility_problems(browser) == [], name
    screenshot(browser, name)


def test_a_reviewer_decides_a_case_and_the_committee_reads_the_report(live, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    server, cases = live
    browser.get(f"{server.url}/ui/sign-in")
    check_page(browser, "sign-in")
    sign_in(browser, server, "dr-reed")

    # the worklist: Harbor's two cases, the expedited one first; nothing of Valley's
    rows = [row.get_attribute("data-task") for row in browser.find_elements(By.CSS_SELECTOR, "tr[data-task]")]
    assert rows == [cases.harbor_second, cases.harbor]
    check_page(browser, "worklist")

    # open the case from the keyboard
    link = browser.find_element(By.CSS_SELECTOR, f"tr[data-task='{cases.harbor}'] a")
    link.send_keys(Keys.ENTER)
    wait_for(browser, lambda b: f"/ui/cases/{cases.harbor}" in b.current_url, "the case page")
    assert "Maria Elena Gonzalez" in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_element(By.ID, "case-status").text == "Physician review"
    check_page(browser, "case")

    # a denial without a reason: nothing is decided, and the page says why in words, the findings kept
    browser.find_element(By.ID, "decision-deny").click()
    browser.find_element(By.ID, "field-findings").send_keys("Prior opinions agree; surgery is elective.")
    browser.find_element(By.CSS_SELECTOR, "form[action$='/decide'] button[type=submit]").click()
    errors = wait_for(browser, lambda b: b.find_elements(By.ID, "review-errors"), "the review's errors")
    assert "a denial needs a reason" in errors[0].text
    assert browser.find_element(By.ID, "field-findings").get_attribute("value") == "Prior opinions agree; surgery is elective."
    check_page(browser, "case-review-errors")

    # approve the proposed provider, with findings and a recommendation
    browser.find_element(By.ID, "decision-approve").click()
    browser.find_element(By.ID, "field-recommendation").send_keys("A second opinion by a board-certified cardiologist.")
    browser.find_element(By.CSS_SELECTOR, "form[action$='/decide'] button[type=submit]").click()
    wait_for(browser, lambda b: "decided=approve" in b.current_url, "the case after the decision")
    assert browser.find_element(By.ID, "case-status").text == "Approved"
    assert "Certified (A1)" in browser.page_source
    assert not browser.find_elements(By.CSS_SELECTOR, "form[action$='/decide']")  # a decided case has no form
    check_page(browser, "case-decided")

    # the worklist no longer lists it; when another case is decided elsewhere, the open page follows without reload
    browser.find_element(By.LINK_TEXT, "Back to the worklist").click()
    wait_for(browser, lambda b: b.current_url.endswith("/ui/worklist"), "the worklist")
    assert [r.get_attribute("data-task") for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-task]")] == [cases.harbor_second]
    browser.execute_script("window.sameDocument = true")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        decided = http.post(f"/fhir/Task/{cases.harbor_second}/$decide", headers=api_headers(http, "dr-reed"), json={
            "resourceType": "Parameters", "parameter": [
                {"name": "decision", "valueCode": "approve"},
                {"name": "reviewer", "valueReference": {"reference": "Practitioner/pract-13"}},
                {"name": "findings", "valueString": "Expedited: the member's condition is a serious threat."}]})
        assert decided.status_code == 200, decided.text
    wait_for(browser, lambda b: not b.find_elements(By.CSS_SELECTOR, "tr[data-task]"), "the decided case leaving the list")
    assert browser.execute_script("return window.sameDocument === true"), "the page was reloaded"
    assert "0 of 0 open cases shown" in browser.find_element(By.ID, "cases").text
    check_page(browser, "worklist-after")

    # the committee's quarterly report
    browser.find_element(By.CSS_SELECTOR, "form.who button").click()
    wait_for(browser, lambda b: "/ui/sign-in" in b.current_url, "the sign-in page after signing out")
    sign_in(browser, server, "committee")
    browser.find_element(By.LINK_TEXT, "Quarterly report").click()
    wait_for(browser, lambda b: "/ui/report" in b.current_url, "the report")
    assert browser.find_element(By.CSS_SELECTOR, "#quarter option[selected]").get_attribute("value") == "2030-Q1"
    assert "Decisions by physician group" in browser.page_source
    bars = browser.find_elements(By.CSS_SELECTOR, "section.chart .bar")
    assert bars, "the report's bar charts"
    assert browser.find_element(By.LINK_TEXT, "Download CSV").get_attribute("href").endswith("/ui/report.csv?quarter=2030-Q1")
    check_page(browser, "report")
