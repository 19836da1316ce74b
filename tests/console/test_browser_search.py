"""Content search and eDiscovery in a real browser (Debian's Chromium under Playwright, as test_browser.py): at
1280×800 and 390×844 an eDiscovery Manager signs in, types a bad query and sees the parser's error in place, finds
a hostile HTML message (a script, an ``onerror`` image, ``javascript:`` links) and opens its preview — no dialog
opens, no script of the message runs, no console error — then reads the cases and a case. Every page: zero
serious or critical axe-core violations, a screenshot under tests/console/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.app import create_app
from tenantry.core.access import EDISCOVERY, GRANTED_BY
from tests.auth.conftest import AppServer
from tests.console import test_browser as walk
from tests.console.conftest import PASSWORD, Console
from tests.console.test_browser import VIEWPORTS, Watched, sign_in
from tests.console.test_search_pages import deliver, hostile_message

pytestmark = pytest.mark.interop

NAME = "ed.browser@contoso.com"
browser = walk.browser      # the walk's fixture: one Chromium for this module (skips, saying why, without)


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_an_ediscovery_manager_searches_previews_a_hostile_message_safely_and_reads_a_case(
        console: Console, browser: Any, viewport: str) -> None:
    services, tenant = console.services, console.tenant
    item = deliver(console, "u1", "u1@contoso.com", hostile_message(), "hostile-1@evil.example")
    custodian = console.user("custodian@contoso.com")
    case = services.ediscovery.create_case(tenant, "Acme v. Contoso", "counsel", "merger dispute").id
    services.ediscovery.add_custodians(tenant, case, [custodian], "counsel")
    services.ediscovery.hold(tenant, case, "counsel", query="merger", name="Merger hold")
    user = str(services.scim.create(tenant, "User", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                     "userName": NAME})["id"])
    services.directory.add_role_group_member(tenant, GRANTED_BY[EDISCOVERY], user)
    services.signin.set_password(tenant, NAME, PASSWORD)

    with AppServer(create_app(services.settings, services)) as server:
        context = browser.new_context(viewport=VIEWPORTS[viewport], base_url=server.base)
        try:
            from playwright.sync_api import expect

            watched = Watched(context.new_page(), viewport)
            page = watched.page
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto("/console/search")
            sign_in(page, tenant, NAME, PASSWORD, lands_on="/console/search")

            page.fill("#q", "frm:mallory")
            page.click("form.search button[type=submit]")
            page.wait_for_url("**q=frm**")
            expect(page.locator("#query-error")).to_contain_text("unknown property")
            assert page.text_content("pre.pointer") == "frm:mallory\n^"
            watched.check("search-error")

            page.fill("#q", "merger")
            page.click("form.search button[type=submit]")
            page.wait_for_url("**q=merger**")
            expect(page.locator("p.count")).to_contain_text("1 item found in 1 mailbox")
            watched.check("search")

            page.click(f"a[href^='/console/search/items/{item}']")
            page.wait_for_url(f"**/console/search/items/{item}**")
            page.click("summary")                          # open the escaped HTML source too
            expect(page.locator("pre.source")).to_contain_text("<script>")
            assert page.locator("main").get_by_text("Regards, Mallory").first.is_visible()
            assert page.locator("main script, main img, main iframe, main style, main [onerror]").count() == 0
            assert page.locator("a[href^='javascript:' i], a[href*='javascript:' i]").count() == 0
            assert page.evaluate("() => window.__pwned === undefined")
            watched.check("item")
            assert dialogs == [], f"a script of the message ran: {dialogs}"

            page.get_by_role("link", name="eDiscovery cases").click()
            page.wait_for_url("**/console/cases")
            watched.check("cases")
            page.get_by_role("link", name="Acme v. Contoso").click()
            page.wait_for_url(f"**/console/cases/{case}")
            assert "custodian@contoso.com" in page.text_content("main")
            assert "Merger hold" in page.text_content("main")
            watched.check("case")
            assert dialogs == []
        finally:
            context.close()
