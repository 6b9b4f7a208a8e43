"""The pages in a real browser: Playwright (from PyPI) driving Debian's `chromium`, against one
`marketplace serve` on the embedded default, started as a newcomer starts it (first start: the
demo data, the operator admin and the demo owners, whose passwords it prints).

Each test gets a fresh browser context (no cookies) and leaves a screenshot of its last page in
tests/web/screenshots/ (git-ignored). `accessible(page)` runs axe-core (vendored in
tests/web/vendor, loaded from disk: nothing from the network) and fails on any serious or
critical violation."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _service_missing
from tests.embedded_server import embedded_server

HERE = Path(__file__).parent
SCREENSHOTS = HERE / "screenshots"
AXE = HERE / "vendor" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}  # a phone-sized viewport (CSS pixels)

playwright_sync = pytest.importorskip("playwright.sync_api")


@dataclass(frozen=True)
class Site:
    """The running platform and the logins its first start printed."""

    base_url: str
    operator_key: str
    operator_email: str
    operator_password: str
    seller_email: str
    affiliate_email: str
    demo_password: str
    directory: Path

    def url(self, path: str) -> str:
        return self.base_url + path


def _printed(pattern: str, output: str) -> str:
    found = re.search(pattern, output)
    assert found, f"not printed by the first `marketplace serve` ({pattern}):\n{output[-3000:]}"
    return found.group(1)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("web-site")
    with embedded_server(directory) as served:
        output = served.output()
        yield Site(
            base_url=served.base_url,
            operator_key=_printed(r"Operator API key \(shown once\): (mk_\S+)", output),
            operator_email=_printed(r"log in at \S+ as (\S+@\S+) with password", output),
            operator_password=_printed(r"log in at \S+ as \S+@\S+ with password (\S+)", output),
            seller_email=_printed(r"log in at \S+ as (\S+@\S+) \(a seller\)", output),
            affiliate_email=_printed(r"or (\S+@\S+) \(an affiliate\)", output),
            demo_password=_printed(r"each with password (\S+)", output),
            directory=directory,
        )


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _service_missing("Debian's chromium (apt-get install chromium)", FileNotFoundError(CHROMIUM))
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()


def _screenshot_name(request: pytest.FixtureRequest) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    return SCREENSHOTS / f"{name}.png"


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A desktop-sized page in a fresh context; its last view is saved as a screenshot."""
    # bypass_csp: the pages forbid inline scripts; axe-core is injected as one by `accessible`.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    try:
        opened.screenshot(path=str(_screenshot_name(request)), full_page=True)
    finally:
        context.close()


@pytest.fixture
def phone_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A phone-sized page (390 x 844, touch, a phone's user agent) in a fresh context."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2,
                                  bypass_csp=True)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    try:
        opened.screenshot(path=str(_screenshot_name(request)), full_page=True)
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    """A screenshot of this moment of a test (beside the one taken at its end)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Any, site: Site, email: str, password: str) -> None:
    page.goto(site.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")


def accessible(page: Any) -> None:
    """axe-core on the page as it is now: no serious or critical violation (WCAG 2 A/AA rules)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', "
        "'wcag21aa', 'best-practice']}})")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"] if v.get("impact") in ("serious", "critical")
    ]
    assert not bad, f"{page.url}: " + "; ".join(bad)
