"""The provisioning pages in a real browser (as tests/console/test_browser.py: Debian's Chromium, never
``playwright install``; axe-core injected by the test), at 1280×800 and 390×844, against a real SCIM target
(scim2-server on loopback): an Application Administrator signs in, opens an app, runs Test Connection, reads the
mappings and scoping filters and adds a filter, provisions one user on demand (the steps: import, scope, match,
action) and reads its log, runs a cycle and follows its progress bar (htmx polling) to the end and the chart,
filters the logs; then opens an app in quarantine, whose Test Connection fails clearly, and releases it. On every
page: no JavaScript console error, zero serious or critical axe violations, a screenshot."""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.app import create_app
from tenantry.core.access import APPLICATIONS
from tests.auth.conftest import AppServer
from tests.console.conftest import PASSWORD, Console
from tests.console.test_browser import VIEWPORTS, Watched, browser, sign_in  # noqa: F401 - the fixture, shared
from tests.console.test_provisioning_pages import _quarantined, _user
from tests.factories.provisioning import make_app
from tests.provisioning.conftest import scim2_server  # noqa: F401 - the fixture, shared

pytestmark = pytest.mark.interop
ADMIN_NAME = "apps.admin@contoso.com"
SLOW = 2     # requests a second to the target: the cycle lasts a few seconds, so its progress can be watched


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_an_application_administrator_tests_provisions_follows_a_cycle_and_releases_a_quarantine(
        console: Console, browser: Any, scim2_server: Any, viewport: str) -> None:  # noqa: F811
    from playwright.sync_api import expect

    services, tenant = console.services, console.tenant
    ann = _user(console, "ann")
    ann_name = services.directory.users_by_id(tenant, [ann])[0].user_name
    others = [_user(console, f"crew{i}") for i in range(5)]
    app = make_app(services, tenant, scim2_server.base_url, scim2_server.token, name=f"GroupTalk {viewport}",
                   users=[ann, *others], rate_limit=SLOW,
                   scoping_filters=[[{"attribute": "active", "operator": "IS TRUE"}]])
    broken = _quarantined(console)
    admin = services.scim.create(tenant, "User", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                 "userName": ADMIN_NAME, "displayName": "Apps Admin"})["id"]
    services.directory.add_role_group_member(tenant, "Application Management", admin)
    assert APPLICATIONS in services.directory.roles_of(tenant, admin)
    services.signin.set_password(tenant, ADMIN_NAME, PASSWORD)

    with AppServer(create_app(services.settings, services)) as server:
        context = browser.new_context(viewport=VIEWPORTS[viewport], base_url=server.base)
        try:
            watched = Watched(context.new_page(), viewport)
            page = watched.page
            page.goto("/console/provisioning")
            sign_in(page, tenant, ADMIN_NAME, PASSWORD, lands_on="/console/provisioning")
            expect(page.locator("main table")).to_contain_text("quarantined")
            watched.check("provisioning-apps")

            page.get_by_role("link", name=app.name).click()
            page.wait_for_url(f"**/console/provisioning/{app.id}")
            expect(page.locator("main")).to_contain_text("set (never shown)")
            page.get_by_role("button", name="Test Connection").click()
            expect(page.locator("#connection-result")).to_contain_text("Test Connection succeeded")
            assert scim2_server.token not in page.content()
            watched.check("provisioning-app")

            page.get_by_role("link", name="Mappings and scoping").click()
            page.wait_for_url("**/mappings")
            expect(page.locator("#user-mapping-table")).to_contain_text("userName")
            expect(page.locator("#user-filters")).to_contain_text("IS TRUE")
            page.select_option("#users-filter", "new")           # a second filter: either one holding is enough
            page.fill("#users-attribute", "userName")
            page.select_option("#users-operator", "ENDS_WITH")
            page.fill("#users-value", "@contoso.com")
            page.locator("form.clause-add").first.get_by_role("button", name="Add clause").click()
            page.wait_for_url("**done=scoping**")
            expect(page.locator("#user-filters")).to_contain_text("ENDS_WITH")
            expect(page.locator("#user-filters > li")).to_have_count(2)
            watched.check("provisioning-mappings")

            page.get_by_role("link", name="Provision on demand").click()
            page.fill("#user", ann_name)
            page.get_by_role("button", name="Provision").click()
            steps = page.locator("#on-demand-result ol.steps li strong")
            expect(steps.first).to_have_text("import")
            assert {"import", "scope", "match", "action"} <= set(steps.all_text_contents())
            expect(page.locator("#on-demand-result")).to_contain_text("create — success")
            watched.check("provisioning-on-demand")
            page.get_by_role("link", name="This user's provisioning log").click()
            page.wait_for_url("**/logs?user=**")
            expect(page.locator("#log")).to_contain_text(ann_name)

            page.get_by_role("link", name="Overview").click()
            page.get_by_role("button", name="Run a cycle now").click()
            page.wait_for_url("**done=run**")
            expect(page.locator("#cycle-progress")).to_be_visible(timeout=20_000)   # htmx polls the status
            expect(page.locator("#cycle-progress")).to_have_count(0, timeout=60_000)      # it ended: polling stops
            newest = page.locator("#cycle-table tbody tr").first
            expect(newest).to_contain_text("initial")
            expect(newest).to_contain_text("succeeded")
            expect(page.locator("#status")).to_contain_text("6 active users")        # the state, redrawn with it
            expect(page.locator("#cycle-actions canvas")).to_be_visible()
            watched.check("provisioning-status")

            page.get_by_role("link", name="Logs").click()
            page.select_option("#result", "success")
            page.select_option("#action", "create")
            page.get_by_role("button", name="Filter").click()
            page.wait_for_url("**result=success**")
            expect(page.locator("#log")).to_contain_text("crew")
            expect(page.locator("#log")).not_to_contain_text("failure")
            watched.check("provisioning-logs")

            page.goto(f"/console/provisioning/{broken.id}")
            expect(page.get_by_role("heading", name="In quarantine")).to_be_visible()
            page.get_by_role("button", name="Test Connection").click()
            expect(page.locator("#connection-result")).to_contain_text("could not reach the target")
            expect(page.locator("#connection-result")).to_contain_text("Test Connection failed")
            watched.check("provisioning-quarantine")
            page.get_by_role("button", name="Release from quarantine").click()
            page.wait_for_url("**done=released")
            expect(page.locator("main")).to_contain_text("Released from quarantine")
            expect(page.get_by_role("heading", name="In quarantine")).to_have_count(0)
            watched.check("provisioning-released")
        finally:
            context.close()
