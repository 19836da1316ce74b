"""The console's data connector pages through a TestClient: the wizard as seed 000 walks it (terms, source with a
test, the mapping CSV with its errors per line, admin consent, review, finish), the list and a connector with its
live run, "run now" and the upload as background runs, a run's report; who may do what (the admin API's roles),
CSRF, another tenant's connector (404), and the upload's bounds (too big, not an export: nothing kept)."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tenantry.core.access import COMPLIANCE, EDISCOVERY, IMPORT, ORGANIZATION
from tenantry.jobstore import FINISHED
from tests.conftest import as_admin, grant_import_role
from tests.console.conftest import Console, signed_in_as

SAMPLES = Path(__file__).parents[1] / "samples" / "whatsapp"
ZIP = SAMPLES / "zip-android-media.zip"
GOOD_CSV = b"mobile,email,name\n+491701111111,ada@contoso.com,Ada\n+491702222222,ada@contoso.com,Bob\n"
BAD_CSV = b"mobile,email,name\n+491701111111,ada@contoso.com,Ada\ncall me,ada@contoso.com,Alice\n"


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def _importer(console: Console, user_name: str = "importer@contoso.com", roles: list[str] | None = None) -> str:
    """A signed-in administrator holding Mailbox Import Export (a role group of its own: seed 000, no built-in
    group has it) and ``roles``."""
    user = signed_in_as(console.services, console.client, console.tenant, user_name, roles or [])
    directory = console.services.directory
    if not any(g.name == "Importers" for g in directory.list_role_groups(console.tenant)):
        directory.create_role_group(console.tenant, "Importers", [IMPORT])
    directory.add_role_group_member(console.tenant, "Importers", user)
    return user


def _connector(console: Console, name: str = "Phones", *, consent: bool = True) -> str:
    services, tenant = console.services, console.tenant
    grant_import_role(services, tenant, console.admin)
    services.directory.add_role_group_member(tenant, "Organization Management", console.admin)
    by = as_admin(services, tenant, console.admin)
    connector = services.connectors.create(tenant, name=name, kind="whatsapp-export", by=by, accept_terms=True).id
    if consent:
        services.connectors.consent(tenant, connector, by)
    return connector


def _wait(console: Console, connector: str) -> None:
    """Until the connector's background run (a tracked job) has finished."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = console.services.jobstore.list(console.tenant, kind="connector.run", subject=connector)
        if jobs and all(j.state in FINISHED for j in jobs):
            return
        time.sleep(0.05)
    raise AssertionError("the run did not finish")


def _console_changes(console: Console) -> list[dict[str, Any]]:
    return [e.detail for e in console.services.ledger.entries(console.tenant, action="admin.change")
            if e.detail.get("via") == "console"]


def test_the_wizard_walks_terms_source_mapping_with_line_errors_consent_review_and_finish(console: Console) -> None:
    _importer(console, roles=[ORGANIZATION])
    client = console.client
    page = client.get("/console/connectors/new")
    assert page.status_code == 200 and "Terms of service" in page.text and 'aria-current="step"' in page.text
    token = _csrf(page.text)

    refused = client.post("/console/connectors/new", data={"csrf_token": token, "step": "terms",
                                                           "kind": "whatsapp-export"})
    assert "terms of service must be accepted" in refused.text
    source = client.post("/console/connectors/new", data={"csrf_token": token, "step": "terms",
                                                          "kind": "whatsapp-export", "accept_terms": "yes"})
    assert "Source and credentials" in source.text and 'name="timezone"' in source.text
    bad_zone = client.post("/console/connectors/new", data={
        "csrf_token": token, "step": "source", "kind": "whatsapp-export", "accept_terms": "yes",
        "name": "Phones", "timezone": "Mars/Olympus", "action": "test"})
    assert "unknown time zone" in bad_zone.text
    tested = client.post("/console/connectors/new", data={
        "csrf_token": token, "step": "source", "kind": "whatsapp-export", "accept_terms": "yes",
        "name": "Phones", "timezone": "Europe/Berlin", "action": "test"})
    assert "The source accepted the connection" in tested.text
    assert console.services.connectors.list_connectors(console.tenant) == []      # a test saves nothing
    created = client.post("/console/connectors/new", data={
        "csrf_token": token, "step": "source", "kind": "whatsapp-export", "accept_terms": "yes",
        "name": "Phones", "timezone": "Europe/Berlin", "action": "create"}, follow_redirects=False)
    assert created.status_code == 303, created.text
    mapping_url = created.headers["location"]
    connector = mapping_url.split("/")[4]
    assert mapping_url == f"/console/connectors/new/{connector}/mapping"
    info = console.services.connectors.describe(console.tenant, connector)
    assert info.status == "draft" and info.terms_accepted and info.source == {"timezone": "Europe/Berlin"}

    bad = client.post(mapping_url, data={"csrf_token": token, "action": "upload"},
                      files={"csv": ("mapping.csv", BAD_CSV, "text/csv")})
    assert bad.status_code == 200 and "line 3: &#39;call me&#39; is not a phone number" in bad.text
    assert "line 2" not in bad.text
    assert console.services.connectors.describe(console.tenant, connector).mapping_entries == 0
    good = client.post(mapping_url, data={"csrf_token": token, "action": "upload"},
                       files={"csv": ("mapping.csv", GOOD_CSV, "text/csv")})
    assert "Saved 2 entries" in good.text
    assert console.services.connectors.describe(console.tenant, connector).mapping_entries == 2

    consent_page = client.get(f"/console/connectors/new/{connector}/consent")
    assert "Give the organisation" in consent_page.text
    given = client.post(f"/console/connectors/new/{connector}/consent", data={"csrf_token": token},
                        follow_redirects=False)
    assert given.status_code == 303 and given.headers["location"].endswith("/review")
    review = client.get(given.headers["location"])
    assert "Europe/Berlin" in review.text and "2 CSV entries" in review.text and "What still keeps" not in review.text
    done = client.post(f"/console/connectors/new/{connector}/finish", data={"csrf_token": token},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/console/connectors/{connector}?done=created"
    assert console.services.connectors.describe(console.tenant, connector).status == "enabled"
    operations = [d["operation"] for d in _console_changes(console)]
    for step in ("new", "mapping", "consent", "finish"):
        assert any(op.endswith(step) for op in operations), (step, operations)


def test_the_wizard_refuses_to_finish_while_the_admin_consent_is_missing(console: Console) -> None:
    connector = _connector(console, consent=False)
    _importer(console)                     # Mailbox Import Export only: consent is not theirs to give
    consent_page = console.client.get(f"/console/connectors/new/{connector}/consent")
    assert "Give the organisation" not in consent_page.text and "Organization Management" in consent_page.text
    token = _csrf(consent_page.text)
    refused = console.client.post(f"/console/connectors/new/{connector}/finish", data={"csrf_token": token})
    assert refused.status_code == 400 and "admin consent is not recorded" in refused.text
    assert console.services.connectors.describe(console.tenant, connector).status == "draft"
    r = console.client.post(f"/console/connectors/new/{connector}/consent", data={"csrf_token": token})
    assert r.status_code == 403 and "Organization Management" in r.text
    assert console.services.connectors.describe(console.tenant, connector).consent_by is None


def test_a_connector_without_consent_offers_no_run_and_refuses_one(console: Console) -> None:
    connector = _connector(console, consent=False)
    _importer(console)
    page = console.client.get(f"/console/connectors/{connector}")
    assert page.status_code == 200 and "Run now" not in page.text and "continue the set-up" in page.text
    r = console.client.post(f"/console/connectors/{connector}/runs", data={"csrf_token": _csrf(page.text)})
    assert r.status_code == 400 and "admin consent" in r.text
    assert console.services.jobstore.list(console.tenant, kind="connector.run") == []


def test_forms_without_the_sessions_csrf_token_change_nothing(console: Console) -> None:
    connector = _connector(console, consent=False)
    _importer(console, roles=[ORGANIZATION])
    client, wrong = console.client, "x" * 43
    for url in (f"/console/connectors/new/{connector}/consent", f"/console/connectors/new/{connector}/finish",
                f"/console/connectors/{connector}/runs", "/console/connectors/new"):
        r = client.post(url, data={"csrf_token": wrong, "step": "terms", "kind": "whatsapp-export",
                                   "accept_terms": "yes"})
        assert r.status_code == 403 and "CSRF" in r.text, url
    r = client.post(f"/console/connectors/new/{connector}/mapping", data={"csrf_token": wrong},
                    files={"csv": ("m.csv", GOOD_CSV, "text/csv")})
    assert r.status_code == 403
    files_before = sorted(console.services.connectors.upload_dir.glob("*"))
    r = client.post(f"/console/connectors/{connector}/exports", data={"owner": "ada@contoso.com"},
                    files={"file": ("chat.zip", ZIP.read_bytes(), "application/zip")})
    assert r.status_code == 403
    info = console.services.connectors.describe(console.tenant, connector)
    assert (info.consent_by, info.status, info.mapping_entries, info.pending_files) == (None, "draft", 0, 0)
    assert sorted(console.services.connectors.upload_dir.glob("*")) == files_before
    assert console.services.jobstore.list(console.tenant, kind="connector.run") == []
    assert _console_changes(console) == []


def test_a_compliance_administrator_reads_connectors_but_is_offered_no_change(console: Console) -> None:
    connector = _connector(console)
    signed_in_as(console.services, console.client, console.tenant, "officer@contoso.com", [COMPLIANCE])
    listing = console.client.get("/console/connectors")
    assert listing.status_code == 200 and "Phones" in listing.text and "New connector" not in listing.text
    page = console.client.get(f"/console/connectors/{connector}")
    assert page.status_code == 200 and "Run now" not in page.text and "Hand in an export" not in page.text
    assert console.client.get("/console/connectors/new").status_code == 403
    r = console.client.post(f"/console/connectors/{connector}/runs", data={"csrf_token": _csrf(page.text)})
    assert r.status_code == 403 and "Mailbox Import Export" in r.text
    r = console.client.post(f"/console/connectors/{connector}/exports", data={"csrf_token": _csrf(page.text),
                                                                             "owner": "ada@contoso.com"},
                            files={"file": ("chat.zip", ZIP.read_bytes(), "application/zip")})
    assert r.status_code == 403
    assert console.services.connectors.describe(console.tenant, connector).pending_files == 0


def test_an_administrator_without_a_connector_role_is_refused_and_not_shown_the_part(console: Console) -> None:
    connector = _connector(console)
    signed_in_as(console.services, console.client, console.tenant, "ed@contoso.com", [EDISCOVERY])
    assert 'href="/console/connectors"' not in console.client.get("/console/").text
    for url in ("/console/connectors", f"/console/connectors/{connector}",
                f"/console/connectors/{connector}/progress", f"/console/connectors/new/{connector}/review"):
        assert console.client.get(url).status_code == 403, url


def test_another_tenants_connector_and_run_are_404_pages(console: Console) -> None:
    connector = _connector(console, "A Secret Phones")
    run = console.services.connectors.run(console.tenant, connector).id
    other = f"b-{uuid.uuid4().hex[:8]}"
    console.services.directory.create_tenant(other, "B")
    user = signed_in_as(console.services, console.client, other, "bob@b.example", [ORGANIZATION])
    console.services.directory.create_role_group(other, "Importers", [IMPORT])
    console.services.directory.add_role_group_member(other, "Importers", user)
    client = console.client
    for url in (f"/console/connectors/{connector}", f"/console/connectors/{connector}/progress",
                f"/console/connectors/{connector}/runs/{run}", f"/console/connectors/new/{connector}/review",
                f"/console/connectors/new/{connector}/mapping"):
        r = client.get(url)
        assert r.status_code == 404 and "A Secret Phones" not in r.text, url
    token = _csrf(client.get("/console/connectors").text)
    assert "A Secret Phones" not in client.get("/console/connectors").text
    for url in (f"/console/connectors/{connector}/runs", f"/console/connectors/new/{connector}/consent",
                f"/console/connectors/new/{connector}/finish"):
        assert client.post(url, data={"csrf_token": token}).status_code == 404, url
    r = client.post(f"/console/connectors/{connector}/exports", data={"csrf_token": token, "owner": "bob@b.example"},
                    files={"file": ("chat.zip", ZIP.read_bytes(), "application/zip")})
    assert r.status_code == 404
    r = client.post(f"/console/connectors/new/{connector}/mapping", data={"csrf_token": token},
                    files={"csv": ("m.csv", GOOD_CSV, "text/csv")})
    assert r.status_code == 404
    info = console.services.connectors.describe(console.tenant, connector)
    assert (info.pending_files, info.mapping_entries) == (0, 0)
    assert len(console.services.connectors.runs(console.tenant, connector)) == 1


def test_an_upload_over_the_limit_is_a_413_page_and_nothing_is_kept(console: Console,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    connector = _connector(console)
    _importer(console)
    monkeypatch.setattr(console.services.connectors, "upload_max_bytes", 300)
    token = _csrf(console.client.get(f"/console/connectors/{connector}").text)
    before = sorted(console.services.connectors.upload_dir.glob("*"))
    r = console.client.post(f"/console/connectors/{connector}/exports",
                            data={"csrf_token": token, "owner": "ada@contoso.com"},
                            files={"file": ("chat.zip", ZIP.read_bytes(), "application/zip")})
    assert r.status_code == 413 and "over the 300-byte limit" in r.text and "Nothing of it was kept" in r.text
    assert sorted(console.services.connectors.upload_dir.glob("*")) == before
    assert console.services.connectors.describe(console.tenant, connector).pending_files == 0


@pytest.mark.parametrize("name, body", [("notes.zip", b"this is no zip at all, nor a chat\n" * 20),
                                        ("chat.txt", b"Dear diary, nothing here has a date or an author.\n" * 5)])
def test_a_file_that_is_not_an_export_is_a_clear_error_page_and_nothing_is_kept(
        console: Console, name: str, body: bytes) -> None:
    connector = _connector(console)
    _importer(console)
    token = _csrf(console.client.get(f"/console/connectors/{connector}").text)
    before = sorted(console.services.connectors.upload_dir.glob("*"))
    r = console.client.post(f"/console/connectors/{connector}/exports",
                            data={"csrf_token": token, "owner": "ada@contoso.com", "run": "yes"},
                            files={"file": (name, body, "application/octet-stream")})
    assert r.status_code == 400 and f"{name} is refused" in r.text and "Nothing of it was kept" in r.text
    assert sorted(console.services.connectors.upload_dir.glob("*")) == before
    assert console.services.connectors.describe(console.tenant, connector).pending_files == 0
    assert console.services.jobstore.list(console.tenant, kind="connector.run") == []


def test_an_upload_runs_in_the_background_and_its_report_lists_unmapped_participants(console: Console) -> None:
    connector = _connector(console)
    _importer(console)
    client = console.client
    token = _csrf(client.get(f"/console/connectors/{connector}").text)
    r = client.post(f"/console/connectors/{connector}/exports",
                    data={"csrf_token": token, "owner": "ada@contoso.com", "run": "yes"},
                    files={"file": (ZIP.name, ZIP.read_bytes(), "application/zip")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/console/connectors/{connector}?done=uploaded-started"
    _wait(console, connector)
    progress = client.get(f"/console/connectors/{connector}/progress")
    assert "hx-trigger" not in progress.text and "succeeded" in progress.text   # ended: the polling stops
    run = console.services.connectors.runs(console.tenant, connector)[0]
    assert run.status == "succeeded" and run.imported == 7
    page = client.get(f"/console/connectors/{connector}")
    assert f"/console/connectors/{connector}/runs/{run.id}" in page.text
    assert 'data-chart="stacked"' in page.text and "attachment" in page.text
    report = client.get(f"/console/connectors/{connector}/runs/{run.id}")
    assert report.status_code == 200
    assert "Alice" in report.text and "no mapping CSV" in report.text                 # an unmapped participant
    assert "media_missing" in report.text and "VID-20240112-WA0005.mp4" in report.text
    listing = client.get("/console/connectors")
    assert "succeeded" in listing.text and 'hx-trigger="every 2s"' not in listing.text
    assert any(d["operation"].endswith("/exports") for d in _console_changes(console))


def test_the_live_state_is_polled_only_while_a_run_is_queued(console: Console) -> None:
    connector = _connector(console)
    _importer(console)
    job = console.services.jobstore.create(console.tenant, "connector.run", {"connector_id": connector}, "t",
                                           subject=connector)   # queued, handed to no engine
    progress = console.client.get(f"/console/connectors/{connector}/progress")
    assert 'hx-trigger="every 2s"' in progress.text and "Queued" in progress.text
    listing = console.client.get("/console/connectors", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in listing.text and "<html" not in listing.text
    page = console.client.get(f"/console/connectors/{connector}")
    assert "Run now" not in page.text                                       # one run at a time
    r = console.client.post(f"/console/connectors/{connector}/runs", data={"csrf_token": _csrf(page.text)})
    assert r.status_code == 400 and "queued or running already" in r.text
    console.services.jobstore.fail(job.id, "stopped by the test")
    progress = console.client.get(f"/console/connectors/{connector}/progress")
    assert "hx-trigger" not in progress.text and "could not start" in progress.text


def test_the_feed_step_tests_the_credentials_and_never_sends_the_password_back(console: Console) -> None:
    from tests.connectors.conftest import FeedServer

    _importer(console)
    client = console.client
    token = _csrf(client.get("/console/connectors/new").text)
    base = {"csrf_token": token, "step": "source", "kind": "archiver-feed", "accept_terms": "yes",
            "name": "TeleMessage", "run_at": "02:00"}
    with FeedServer([], {}) as feed:
        form = {**base, "url": feed.url, "username": feed.username}
        wrong = client.post("/console/connectors/new", data={**form, "password": "wrong-pass-999",
                                                             "action": "test"})
        assert "did not accept the connection" in wrong.text and "refused the user name and password" in wrong.text
        assert "wrong-pass-999" not in wrong.text
        right = client.post("/console/connectors/new", data={**form, "password": feed.password, "action": "test"})
        assert "The source accepted the connection" in right.text and feed.password not in right.text
        assert console.services.connectors.list_connectors(console.tenant) == []
        created = client.post("/console/connectors/new", data={**form, "password": feed.password,
                                                               "action": "create"}, follow_redirects=False)
        assert created.status_code == 303, created.text
    connector = created.headers["location"].split("/")[4]
    review = client.get(f"/console/connectors/new/{connector}/review")
    assert feed.url in review.text and feed.password not in review.text
    assert console.services.connectors.describe(console.tenant, connector).source == {
        "url": feed.url, "username": feed.username}


def test_an_upload_whose_csrf_token_comes_after_the_file_is_refused_before_the_file_is_kept(
        console: Console) -> None:
    connector = _connector(console)
    _importer(console)
    token = _csrf(console.client.get(f"/console/connectors/{connector}").text)
    boundary = "b0undary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="owner"\r\n\r\nada@contoso.com\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="chat.zip"\r\n'
            f"Content-Type: application/zip\r\n\r\n").encode() + ZIP.read_bytes() + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f"--{boundary}--\r\n").encode()
    before = sorted(console.services.connectors.upload_dir.glob("*"))
    r = console.client.post(f"/console/connectors/{connector}/exports", content=body,
                            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 403 and "before the file" in r.text
    assert sorted(console.services.connectors.upload_dir.glob("*")) == before
    assert console.services.connectors.describe(console.tenant, connector).pending_files == 0
