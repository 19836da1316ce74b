"""The console in a real browser: Playwright (Python) driving Debian's Chromium (``/usr/bin/chromium``; never
``playwright install``), against the application under uvicorn on 127.0.0.1.

At 1280×800 and at 390×844: sign in with a local account, open home, find a user by search (htmx), open its
detail, open the SCIM request log. On every page: no JavaScript console error (a Content-Security-Policy violation
is one), zero serious or critical accessibility violations by axe-core (npm ``axe-core``, from the folder
``scripts/test`` installs it to, injected into the page by the test), and a screenshot under
tests/console/screenshots/ (git-ignored), named by page, viewport and database backend. Skips, saying why, where
Playwright, Chromium or axe-core is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tenantry.app import create_app
from tenantry.core.access import ORGANIZATION
from tests.auth.conftest import NPM_DIR, AppServer
from tests.console.conftest import PASSWORD, Console

pytestmark = pytest.mark.interop

CHROMIUM = Path("/usr/bin/chromium")
AXE = NPM_DIR / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = Path(__file__).parent / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
ADMIN_NAME = "console.admin@contoso.com"


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (apt-get install chromium; scripts/test does)"
    if not AXE.exists():
        return f"the npm package axe-core is not in {NPM_DIR} (scripts/test installs it)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    why = _missing()
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


def sign_in(page: Any, tenant: str, user_name: str, password: str, *, lands_on: str) -> None:
    """The sign-in form the console sent the browser to, filled and sent; returns once the browser is at
    ``lands_on`` (the page first asked for)."""
    page.fill("#tenant", tenant)
    page.fill("#username", user_name)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{lands_on}")


class Watched:
    """A page whose console errors and uncaught exceptions are collected, checked with axe-core on demand."""

    def __init__(self, page: Any, label: str) -> None:
        self.page, self.label = page, label
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def check(self, name: str) -> None:
        """No console error so far, no serious or critical axe violation, and a screenshot."""
        self.page.wait_for_load_state("networkidle")
        assert not self.errors, f"{name} ({self.label}): JavaScript console errors {self.errors}"
        # evaluate, not a <script> tag: the page's CSP allows no script but its own (and must stay so).
        self.page.evaluate(AXE.read_text())
        violations = self.page.evaluate("""async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }""")
        bad = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert not bad, f"{name} ({self.label}): accessibility violations {bad}"
        SHOTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}-{self.label}-{backend_of_test()}.png"), full_page=True)


def backend_of_test() -> str:
    """The database backend the running test was given (its ``backend`` parameter's id, ``sqlite`` or
    ``postgresql``): the same walk on both backends must not overwrite each other's screenshots."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "")
    ids = test.partition("[")[2].partition("]")[0].split("-")
    return next((i for i in ids if i in ("sqlite", "postgresql")), "any")


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_an_administrator_signs_in_finds_a_user_and_reads_the_scim_log(
        console: Console, browser: Any, viewport: str) -> None:
    from tenantry.directory.scim_log import ScimRequestRecord

    services, tenant = console.services, console.tenant
    admin = services.scim.create(tenant, "User", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                 "userName": ADMIN_NAME, "displayName": "Console Admin"})["id"]
    services.directory.add_role_group_member(tenant, "Organization Management", admin)
    services.signin.set_password(tenant, ADMIN_NAME, PASSWORD)
    target = console.user("zelda.findme@contoso.com", displayName="Zelda Findme",
                          phoneNumbers=[{"type": "mobile", "value": "+41 79 555 01 02"}])
    for i in range(5):
        console.user(f"filler{i}@contoso.com")
    record = ScimRequestRecord.start("PATCH")
    record.credential(tenant, "tok", "okta-provisioning")
    record.target("User", target, write=True)
    record.entry.describe({"userName": "zelda.findme@contoso.com"})
    services.scim_log.record(record.finish(200, b"", 4))
    assert ORGANIZATION in services.directory.roles_of(tenant, admin)

    with AppServer(create_app(services.settings, services)) as server:
        context = browser.new_context(viewport=VIEWPORTS[viewport], base_url=server.base)
        try:
            from playwright.sync_api import expect

            watched = Watched(context.new_page(), viewport)
            page = watched.page
            page.goto("/")
            assert "/auth/login" in page.url
            sign_in(page, tenant, ADMIN_NAME, PASSWORD, lands_on="/console/")
            assert page.get_by_role("heading", name="Home", level=1).is_visible()
            assert page.locator("main").get_by_role("heading", name="Directory").is_visible()
            assert ADMIN_NAME in page.text_content("header")
            watched.check("home")

            page.get_by_role("link", name="Users", exact=True).click()
            page.wait_for_url("**/console/users")
            page.fill("#q", "zeld")     # htmx asks for the results as the user types
            expect(page.locator("#results")).not_to_contain_text("filler0")
            expect(page.locator("#results")).to_contain_text("zelda.findme@contoso.com")
            assert "q=zeld" in page.url              # htmx pushed the search into the address bar
            watched.check("users")

            page.click("text=zelda.findme@contoso.com")
            page.wait_for_url(f"**/console/users/{target}")
            assert page.get_by_role("listitem").filter(has_text="+41 79 555 01 02").is_visible()
            assert page.get_by_role("button", name="Hide from address lists").is_visible()
            watched.check("user")

            page.goto("/console/scim-log")
            page.select_option("#method", "PATCH")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**method=PATCH**")
            assert "okta-provisioning" in page.text_content("table")
            watched.check("scim-log")

            page.click("header button:has-text('Sign out')")
            page.wait_for_url("**/auth/login")
            page.goto("/console/")
            assert "/auth/login" in page.url        # signed out: the console leads to the sign-in form again
        finally:
            context.close()


def test_screenshots_are_not_committed() -> None:
    ignored = (Path(__file__).parents[2] / ".gitignore").read_text()
    assert "tests/console/screenshots/" in ignored
