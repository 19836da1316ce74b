"""Issue #15's acceptance walk: ONE browser session (Debian's Chromium under Playwright, as test_browser.py) walks
the console as an administrator would, step after step, each page checked at 1280×800 and at 390×844 (no
JavaScript console error, zero serious or critical axe-core violations, a screenshot):

sign in → find a user → the data connector wizard as seed 000 walks it (a mapping CSV with a bad line shown by
its number, then fixed; consent; finish) and a WhatsApp export handed in and imported, its run followed to its
report → a content search with a syntax error (the error shown in place), then a good one → a case
created with its custodians → a case search (hits per custodian, charted) → a hold placed → an export started,
followed until it succeeded, downloaded, and the manifest's hashes on the page checked against the zip's bytes →
one user provisioned on demand into a real SCIM app (scim2-server on loopback), the steps shown, then its log.

Each step is one function of a ``Walk`` in ``STEPS``, in order; a later step may use what an earlier one left in
``walk.found``. To add a step (the connector wizard and an import; provisioning one user on demand and reading its
log), write ``def step_…(walk: Walk) -> None`` beside these, put what it needs into ``world`` (and the role it
needs into ``ROLES``), and insert it into ``STEPS``.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tenantry.app import create_app
from tenantry.core.access import COMPLIANCE, GRANTED_BY, IMPORT, ORGANIZATION
from tests.auth.conftest import AppServer
from tests.console.conftest import PASSWORD, Console
from tests.console.test_browser import VIEWPORTS, Watched, browser, sign_in  # noqa: F401 - the fixture, shared
from tests.console.test_connector_pages import BAD_CSV, GOOD_CSV, ZIP
from tests.console.test_search_pages import deliver
from tests.factories.provisioning import make_app
from tests.provisioning.conftest import scim2_server  # noqa: F401 - the fixture, shared

pytestmark = pytest.mark.interop

ADMIN_NAME = "walk.admin@contoso.com"
# The roles the walking administrator holds: each step's pages need one of them.
ROLES = [ORGANIZATION, COMPLIANCE]
SLOW = 120_000      # ms: the bound on an export job in a loaded CI machine (a stuck job fails; it is no timing)


@dataclass
class Walk:
    """The one browser page of the walk, the services behind the server, and what steps found for later ones."""

    watched: Watched
    console: Console
    download_dir: Path
    found: dict[str, Any] = field(default_factory=dict)

    @property
    def page(self) -> Any:
        return self.watched.page

    def check(self, name: str) -> None:
        """The page as it is, at both viewports (the phone one last, then back): no console error, axe clean,
        screenshots."""
        for label in ("phone", "desktop"):
            self.page.set_viewport_size(VIEWPORTS[label])
            self.watched.label = label
            self.watched.check(f"walk-{name}")


def world(console: Console) -> dict[str, str]:
    """What the walk finds: the administrator, two users with mailboxes about a merger, and a few others; the
    users' ids by name."""
    services, tenant = console.services, console.tenant
    admin = console.user(ADMIN_NAME, displayName="Walk Admin")
    for role in ROLES:
        services.directory.add_role_group_member(tenant, GRANTED_BY[role], admin)
    services.directory.create_role_group(tenant, "Importers", [IMPORT])     # Mailbox Import Export: no built-in group
    services.directory.add_role_group_member(tenant, "Importers", admin)
    services.signin.set_password(tenant, ADMIN_NAME, PASSWORD)
    ids: dict[str, str] = {}
    for name in ("alice", "bob"):
        user = ids[name] = console.user(f"{name}.walk@contoso.com", displayName=f"{name.title()} Walk")
        for n in range(2):
            raw = (f"Message-ID: <{name}-{n}@walk>\r\nFrom: Carol <carol@contoso.com>\r\nTo: {name}.walk@contoso.com"
                   f"\r\nSubject: merger step {n}\r\nDate: Mon, 30 Nov 2026 07:00:00 +0000\r\n\r\n"
                   f"The merger, step {n}.\r\n").encode()
            deliver(console, user, f"{name}.walk@contoso.com", raw, f"{name}-{n}@walk", subject=f"merger step {n}")
    for i in range(3):
        console.user(f"filler{i}.walk@contoso.com")
    return ids


# -- the steps ----------------------------------------------------------------------------------------------------


def step_sign_in(walk: Walk) -> None:
    page = walk.page
    page.goto("/")
    assert "/auth/login" in page.url
    sign_in(page, walk.console.tenant, ADMIN_NAME, PASSWORD, lands_on="/console/")
    assert ADMIN_NAME in page.text_content("header")
    walk.check("home")


def step_find_a_user(walk: Walk) -> None:
    from playwright.sync_api import expect

    page = walk.page
    page.get_by_role("link", name="Users", exact=True).click()
    page.wait_for_url("**/console/users")
    page.fill("#q", "alice")        # htmx asks for the results as the user types
    expect(page.locator("#results")).to_contain_text("alice.walk@contoso.com")
    expect(page.locator("#results")).not_to_contain_text("filler0")
    walk.check("users")
    page.click("text=alice.walk@contoso.com")
    page.wait_for_url("**/console/users/*")
    expect(page.get_by_role("heading", level=1)).to_contain_text("alice.walk@contoso.com")
    walk.check("user")


def step_connector_wizard_and_import(walk: Walk) -> None:
    from playwright.sync_api import expect

    page = walk.page
    page.get_by_role("link", name="Connectors", exact=True).click()
    page.wait_for_url("**/console/connectors")
    page.get_by_role("link", name="New connector").click()
    page.wait_for_url("**/console/connectors/new")
    page.check("#kind-whatsapp-export")
    page.check("#accept_terms")
    page.get_by_role("button", name="Next").click()
    page.fill("#name", "Walk phones")
    page.fill("#timezone", "Europe/Berlin")
    page.get_by_role("button", name="Test the connection").click()
    expect(page.locator("#tested")).to_contain_text("accepted the connection")
    page.fill("#name", "Walk phones")
    page.get_by_role("button", name="Test and create").click()
    page.wait_for_url("**/mapping")
    page.set_input_files("#csv", {"name": "mapping.csv", "mimeType": "text/csv", "buffer": BAD_CSV})
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#errors")).to_contain_text("line 3: 'call me' is not a phone number")
    walk.check("wizard-mapping-error")
    page.set_input_files("#csv", {"name": "mapping.csv", "mimeType": "text/csv", "buffer": GOOD_CSV})
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#saved")).to_contain_text("Saved 2 entries")
    page.click("#next")
    page.wait_for_url("**/consent")
    page.get_by_role("button", name="Give the organisation's consent").click()
    page.wait_for_url("**/review")
    page.get_by_role("button", name="Finish").click()
    page.wait_for_url("**done=created")
    page.fill("#owner", "ada@contoso.com")
    page.set_input_files("#file", str(ZIP))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**done=uploaded-started")
    expect(page.locator("#progress")).to_contain_text("succeeded", timeout=SLOW)
    expect(page.locator("#chart-imported canvas")).to_be_visible()
    walk.check("connector")
    page.locator("#progress a").click()
    page.wait_for_url("**/runs/**")
    expect(page.locator("main")).to_contain_text("VID-20240112-WA0005.mp4")     # a media file the export lacks
    walk.check("connector-run")


def step_content_search(walk: Walk) -> None:
    from playwright.sync_api import expect

    page = walk.page
    page.get_by_role("link", name="Content search").click()
    page.wait_for_url("**/console/search")
    page.fill("#q", "frm:carol")
    page.click("form.search button[type=submit]")
    page.wait_for_url("**q=frm**")
    expect(page.locator("#query-error")).to_contain_text("unknown property")
    assert page.text_content("pre.pointer") == "frm:carol\n^"
    walk.check("search-error")
    page.fill("#q", "merger")
    page.click("form.search button[type=submit]")
    page.wait_for_url("**q=merger**")
    expect(page.locator("p.count")).to_contain_text("4 items found in 2 mailboxes")
    expect(page.locator("#hits-per-mailbox canvas")).to_be_visible()
    walk.check("search")


def step_create_a_case(walk: Walk) -> None:
    from playwright.sync_api import expect

    page = walk.page
    page.get_by_role("link", name="eDiscovery cases").click()
    page.wait_for_url("**/console/cases")
    page.fill("#case-name", "Walk v. Contoso")
    page.fill("#case-description", "the acceptance walk's case")
    page.get_by_role("button", name="Create case").click()
    page.wait_for_url("**/console/cases/*?done=created")
    walk.found["case"] = page.url.split("/console/cases/")[1].split("?")[0]
    page.fill("#users", "alice.walk@contoso.com\nbob.walk@contoso.com")
    page.get_by_role("button", name="Add custodians").click()
    page.wait_for_url("**done=custodians")
    expect(page.locator("ul.custodians")).to_contain_text("bob.walk@contoso.com")
    walk.check("case")


def step_case_search(walk: Walk) -> None:
    from playwright.sync_api import expect

    page = walk.page
    page.fill("#case-query", "merger")
    page.click("form[action$='/search'] button[type=submit]")
    expect(page.locator("#case-count")).to_contain_text("4 items found")
    expect(page.locator("#hits-per-custodian canvas")).to_be_visible()
    rows = page.locator("#hits-per-custodian tbody tr")
    assert rows.count() == 2 and "alice.walk@contoso.com" in rows.first.text_content()
    walk.check("case-search")


def step_place_a_hold(walk: Walk) -> None:
    from playwright.sync_api import expect

    page = walk.page
    page.goto(f"/console/cases/{walk.found['case']}")
    page.fill("#hold-name", "Walk merger hold")
    page.fill("#hold-query", "merger")
    page.get_by_role("button", name="Place hold").click()
    page.wait_for_url("**done=hold")
    expect(page.locator("section[aria-labelledby=holds] table")).to_contain_text("Walk merger hold")
    holds = walk.console.services.compliance.holds(walk.console.tenant, case_id=walk.found["case"])
    assert [(h.name, h.query) for h in holds] == [("Walk merger hold", "merger")]
    walk.check("case-hold")


def step_export_and_download(walk: Walk) -> None:
    from playwright.sync_api import expect

    page, case = walk.page, walk.found["case"]
    page.fill("#export-query", "merger")
    page.get_by_role("button", name="Start export").click()
    page.wait_for_url("**done=export**")
    # The exports list follows a running export by itself (htmx, every 2 s) until it finished.
    expect(page.locator("#exports td.state-succeeded")).to_be_visible(timeout=SLOW)
    walk.check("case-exported")
    page.locator(f"#exports a[href^='/console/cases/{case}/exports/']").first.click()
    page.wait_for_url(f"**/console/cases/{case}/exports/*")
    walk.check("export")
    shown = dict(zip(page.locator("table.manifest tbody td:first-child").all_text_contents(),
                     page.locator("table.manifest tbody td:last-child").all_text_contents(), strict=True))
    manifest_sha = page.text_content("#manifest-sha256")
    with page.expect_download() as started:
        page.get_by_role("link", name="Download the export (zip)").click()
    download = started.value
    assert re.fullmatch(r"export-[0-9a-f-]+\.zip", download.suggested_filename)
    target = walk.download_dir / download.suggested_filename
    download.save_as(target)
    with zipfile.ZipFile(target) as archive:
        top = download.suggested_filename.removesuffix(".zip")
        files = {n.removeprefix(top + "/"): archive.read(n) for n in archive.namelist()}
    assert hashlib.sha256(files["manifest.sha256"]).hexdigest() == manifest_sha
    assert set(shown) == set(files) - {"manifest.sha256"}
    assert len(shown) == 4 + 2 + 2      # the messages, a mbox per custodian, the load file and the summary
    for name, digest in shown.items():      # the page's hashes are the downloaded bytes'
        assert hashlib.sha256(files[name]).hexdigest() == digest, name
    assert not walk.watched.errors


def step_provision_on_demand(walk: Walk) -> None:
    from playwright.sync_api import expect

    page, app = walk.page, walk.found["app"]
    page.get_by_role("link", name="Provisioning", exact=True).click()
    page.wait_for_url("**/console/provisioning")
    page.get_by_role("link", name=app.name).click()
    page.wait_for_url(f"**/console/provisioning/{app.id}")
    walk.check("provisioning-app")
    page.get_by_role("link", name="Provision on demand").click()
    page.fill("#user", "alice.walk@contoso.com")
    page.get_by_role("button", name="Provision").click()
    steps = page.locator("#on-demand-result ol.steps li strong")
    expect(steps.first).to_have_text("import")
    assert {"import", "scope", "match", "action"} <= set(steps.all_text_contents())
    # create the first time; the target (one scim2-server for the module) holds her after the other backend's walk
    expect(page.locator("#on-demand-result")).to_contain_text(re.compile(r"(create|update) — success"))
    walk.check("provisioning-on-demand")
    page.get_by_role("link", name="This user's provisioning log").click()
    page.wait_for_url("**/logs?user=**")
    expect(page.locator("#log")).to_contain_text("alice.walk@contoso.com")
    walk.check("provisioning-log")


STEPS: list[Callable[[Walk], None]] = [
    step_sign_in,
    step_find_a_user,
    step_connector_wizard_and_import,
    step_content_search,
    step_create_a_case,
    step_case_search,
    step_place_a_hold,
    step_export_and_download,
    step_provision_on_demand,
]


def test_the_acceptance_walk(console: Console, browser: Any, scim2_server: Any,  # noqa: F811 - the fixtures
                              tmp_path: Path) -> None:
    ids = world(console)
    app = make_app(console.services, console.tenant, scim2_server.base_url, scim2_server.token, name="Walk chat app",
                   users=[ids["alice"]])
    with AppServer(create_app(console.services.settings, console.services)) as server:
        context = browser.new_context(viewport=VIEWPORTS["desktop"], base_url=server.base, accept_downloads=True)
        try:
            walk = Walk(Watched(context.new_page(), "desktop"), console, tmp_path, {"app": app})
            dialogs: list[str] = []
            walk.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            for step in STEPS:
                step(walk)
            assert dialogs == []
        finally:
            context.close()
