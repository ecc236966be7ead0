"""A real browser for the page tests: Debian's ``chromium`` driven by ``chromedriver`` (Selenium WebDriver, no
browser download), against a real server (uvicorn) on a free loopback port; axe-core (vendored in ``vendor/``,
npm ``axe-core``, MPL-2.0) run inside each page; screenshots under ``tests/output/ui/``."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

HERE = Path(__file__).resolve().parent
AXE = HERE / "vendor" / "axe.min.js"
OUTPUT = HERE.parent / "output" / "ui"
CHROMIUM = ("chromium", "chromium-browser")
CHROMEDRIVER = "chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1366,900")
LAPTOP = (1366, 900)
BLOCKING_IMPACTS = ("serious", "critical")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The app served by uvicorn in a thread of the test process (so the test can still move the app's clock)."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="ui-live-server", daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def browser_paths() -> tuple[str, str]:
    """Chromium and its driver, or a skip saying how to get them (``python3 dev.py test`` installs both)."""
    chromium = next((found for name in CHROMIUM if (found := shutil.which(name))), None)
    driver = shutil.which(CHROMEDRIVER)
    if not chromium or not driver:
        pytest.skip("the browser tests need Debian's chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver; python3 dev.py test installs them where it may)")
    return chromium, driver


def start_chromium(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    browser.set_window_size(*LAPTOP)
    browser.set_script_timeout(60)
    return browser


def screenshot(browser: Any, name: str) -> Path:
    """The whole page as ``tests/output/ui/<name>.png`` (the window grown to the page's height for the shot)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    browser.set_window_size(LAPTOP[0], max(LAPTOP[1], int(height) + 40))
    path = OUTPUT / f"{name}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(*LAPTOP)
    return path


def accessibility_problems(browser: Any) -> list[str]:
    """axe-core's serious and critical violations on the current page (WCAG 2.x A and AA rules, best practices)."""
    browser.execute_script(AXE.read_text(encoding="utf-8"))
    violations = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations), e => done(String(e)));"
    )
    assert isinstance(violations, list), f"axe-core failed: {violations}"
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in violations if v.get("impact") in BLOCKING_IMPACTS]
