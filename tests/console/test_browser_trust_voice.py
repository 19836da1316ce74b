"""The trust and voice pages in a real browser (as tests/console/test_browser.py: Debian's Chromium, never
``playwright install``; axe-core injected by the test), at 1280×800 and 390×844: an Organization Management
administrator opens Trust (a failing partner with its "what to do" line), then Voice, and routes a call with the
tester form. On every page: no JavaScript console error, zero serious or critical axe violations, a screenshot."""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.app import create_app
from tests.auth.conftest import AppServer
from tests.console.conftest import PASSWORD, Console
from tests.console.test_browser import VIEWPORTS, Watched, browser, sign_in  # noqa: F401 - the fixture, shared
from tests.console.test_pages_trust_voice import APP_ID, _voice_seed

pytestmark = pytest.mark.interop
ADMIN_NAME = "hybrid.admin@contoso.com"


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_an_administrator_reads_trust_and_voice_and_routes_a_call(
        console: Console, browser: Any, viewport: str) -> None:  # noqa: F811 - the imported fixture
    services, tenant = console.services, console.tenant
    _voice_seed(console)
    services.trust.create_partner(tenant, name="Exchange Online", application_id=APP_ID)
    admin = services.scim.create(tenant, "User", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                 "userName": ADMIN_NAME, "displayName": "Hybrid Admin"})["id"]
    services.directory.add_role_group_member(tenant, "Organization Management", admin)
    services.signin.set_password(tenant, ADMIN_NAME, PASSWORD)

    with AppServer(create_app(services.settings, services)) as server:
        context = browser.new_context(viewport=VIEWPORTS[viewport], base_url=server.base)
        try:
            from playwright.sync_api import expect

            watched = Watched(context.new_page(), viewport)
            page = watched.page
            page.goto("/console/trust")
            sign_in(page, tenant, ADMIN_NAME, PASSWORD, lands_on="/console/trust")
            assert page.get_by_role("heading", name="Trust", level=1).is_visible()
            expect(page.locator("ul.checks li.bad")).to_contain_text("What to do")
            expect(page.locator("main table").first).to_contain_text(APP_ID)
            watched.check("trust")

            page.get_by_role("link", name="Voice", exact=True).click()
            page.wait_for_url("**/console/voice")
            expect(page.locator("main")).to_contain_text("gw1.sea.contoso.com")
            page.fill("#caller", "bob.voice@contoso.com")
            page.fill("#number", "+14255550123")
            page.click("#route button[type=submit], form[action^='/console/voice#route'] button")
            page.wait_for_url("**number=**")
            expect(page.locator("#route-answer")).to_contain_text("302")
            expect(page.locator("#route-answer")).to_contain_text("gw1.sea.contoso.com")
            watched.check("voice")
        finally:
            context.close()
