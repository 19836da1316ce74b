"""The data connector pages in a real browser (as tests/console/test_browser.py: Debian's Chromium, never
``playwright install``; axe-core injected by the test), at 1280×800 and 390×844: an administrator holding Mailbox
Import Export and Organization Management walks the wizard as seed 000 does (terms, source with a test, a mapping
CSV with a bad line shown by its number, then fixed, admin consent, review, finish), hands in a WhatsApp export
(the repo's zip fixture) with "import it now", follows the run's progress until it has ended (htmx polling), reads
the chart and the run's report (an unmapped participant, a missing media file). On every page: no JavaScript
console error, zero serious or critical axe violations, a screenshot."""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.app import create_app
from tenantry.core.access import IMPORT
from tests.auth.conftest import AppServer
from tests.console.conftest import PASSWORD, Console
from tests.console.test_browser import VIEWPORTS, Watched, browser, sign_in  # noqa: F401 - the fixture, shared
from tests.console.test_connector_pages import BAD_CSV, GOOD_CSV, ZIP

pytestmark = pytest.mark.interop
ADMIN_NAME = "connector.admin@contoso.com"


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_an_administrator_sets_up_a_connector_uploads_an_export_and_reads_the_report(
        console: Console, browser: Any, viewport: str) -> None:  # noqa: F811 - the imported fixture
    services, tenant = console.services, console.tenant
    admin = services.scim.create(tenant, "User", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                 "userName": ADMIN_NAME, "displayName": "Connector Admin"})["id"]
    services.directory.add_role_group_member(tenant, "Organization Management", admin)
    services.directory.create_role_group(tenant, "Importers", [IMPORT])
    services.directory.add_role_group_member(tenant, "Importers", admin)
    services.signin.set_password(tenant, ADMIN_NAME, PASSWORD)

    with AppServer(create_app(services.settings, services)) as server:
        context = browser.new_context(viewport=VIEWPORTS[viewport], base_url=server.base)
        try:
            from playwright.sync_api import expect

            watched = Watched(context.new_page(), viewport)
            page = watched.page
            page.goto("/console/connectors")
            sign_in(page, tenant, ADMIN_NAME, PASSWORD, lands_on="/console/connectors")
            expect(page.locator("main")).to_contain_text("No connector yet")
            watched.check("connectors-empty")

            page.get_by_role("link", name="New connector").click()
            page.wait_for_url("**/console/connectors/new")
            page.check("#kind-whatsapp-export")
            page.check("#accept_terms")
            watched.check("wizard-terms")
            page.get_by_role("button", name="Next").click()
            page.fill("#name", "Phones")
            page.fill("#timezone", "Europe/Berlin")
            page.get_by_role("button", name="Test the connection").click()
            expect(page.locator("#tested")).to_contain_text("accepted the connection")
            watched.check("wizard-source")
            page.fill("#name", "Phones")
            page.get_by_role("button", name="Test and create").click()
            page.wait_for_url("**/mapping")

            page.set_input_files("#csv", {"name": "mapping.csv", "mimeType": "text/csv", "buffer": BAD_CSV})
            page.get_by_role("button", name="Upload").click()
            expect(page.locator("#errors")).to_contain_text("line 3: 'call me' is not a phone number")
            watched.check("wizard-mapping-error")
            page.set_input_files("#csv", {"name": "mapping.csv", "mimeType": "text/csv", "buffer": GOOD_CSV})
            page.get_by_role("button", name="Upload").click()
            expect(page.locator("#saved")).to_contain_text("Saved 2 entries")
            page.click("#next")
            page.wait_for_url("**/consent")
            watched.check("wizard-consent")
            page.get_by_role("button", name="Give the organisation's consent").click()
            page.wait_for_url("**/review")
            expect(page.locator("main")).to_contain_text("2 CSV entries")
            watched.check("wizard-review")
            page.get_by_role("button", name="Finish").click()
            page.wait_for_url("**done=created")
            expect(page.locator("main")).to_contain_text("The connector is enabled")

            page.fill("#owner", "ada@contoso.com")
            page.set_input_files("#file", str(ZIP))
            page.get_by_role("button", name="Upload").click()
            page.wait_for_url("**done=uploaded-started")
            # The progress box polls (htmx, every 2 s) until the run has ended, then stops.
            expect(page.locator("#progress")).to_contain_text("succeeded", timeout=90_000)
            expect(page.locator("#progress")).not_to_have_attribute("hx-trigger", "every 2s")
            expect(page.locator("#chart-imported canvas")).to_be_visible()
            expect(page.locator("#chart-imported table")).to_contain_text("attachment")
            watched.check("connector")

            page.locator("#progress a").click()
            page.wait_for_url("**/runs/**")
            expect(page.locator("main")).to_contain_text("Alice")
            expect(page.locator("main")).to_contain_text("VID-20240112-WA0005.mp4")
            watched.check("run-report")

            page.get_by_role("link", name="Connectors", exact=True).click()
            page.wait_for_url("**/console/connectors")
            expect(page.locator("#connector-list")).to_contain_text("succeeded")
            watched.check("connectors")
        finally:
            context.close()
