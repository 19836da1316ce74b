"""The console's eDiscovery actions through a TestClient (console/case_actions.py): a case created, custodians
added, holds placed and released, a case search with its hits per custodian, an export started and downloaded
with the manifest's hashes on the page matching the zip's bytes; the archive verification page; the roles (an
action not offered, and refused when sent), CSRF, and another tenant's case, hold or export as a 404 page.
The browser walk through the same pages is tests/console/test_acceptance_walk.py."""

from __future__ import annotations

import hashlib
import io
import re
import time
import uuid
import zipfile
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from tenantry.app import create_app
from tenantry.archive.models import LedgerEntry
from tenantry.console.compliance import ComplianceConsole
from tenantry.core.access import COMPLIANCE, EDISCOVERY, ORGANIZATION
from tests.console.conftest import Console, signed_in_as
from tests.console.test_search_pages import deliver


def _client(console: Console) -> TestClient:
    return TestClient(create_app(console.services.settings, console.services))


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page[:1000]
    return found.group(1)


def _message(n: int, words: str, to: str) -> bytes:
    return (f"Message-ID: <case-{n}@contoso.com>\r\nFrom: Carol <carol@contoso.com>\r\nTo: {to}\r\n"
            f"Subject: {words} {n}\r\nDate: Mon, 30 Nov 2026 07:00:00 +0000\r\n\r\n{words} number {n}\r\n").encode()


def _mailboxes(console: Console) -> tuple[str, str]:
    """Two directory users with mailboxes: alice (two messages about the merger, one about lunch), bob (one)."""
    alice = console.user("alice@contoso.com")
    bob = console.user("bob@contoso.com")
    for n, words in enumerate(("merger plan", "merger price", "lunch menu")):
        deliver(console, alice, "alice@contoso.com", _message(n, words, "alice@contoso.com"), f"case-{n}@contoso.com",
                subject=f"{words} {n}")
    deliver(console, bob, "bob@contoso.com", _message(9, "merger memo", "bob@contoso.com"), "case-9@contoso.com",
            subject="merger memo 9")
    return alice, bob


def _post(client: TestClient, url: str, page: str, **fields: Any) -> Any:
    return client.post(url, data={"csrf_token": _csrf(page), **fields}, follow_redirects=False)


def _new_case(client: TestClient, name: str = "Smith v. Contoso") -> str:
    page = client.get("/console/cases").text
    r = _post(client, "/console/cases", page, name=name, description="wire fraud")
    assert r.status_code == 303, r.text
    found = re.fullmatch(r"/console/cases/([0-9a-f-]+)\?done=created", r.headers["location"])
    assert found is not None, r.headers["location"]
    return found.group(1)


def _finished_export(client: TestClient, case: str, query: str) -> str:
    """Start an export from the case page and follow it on the case page until it is listed as succeeded (the
    bound is generous: a stuck export fails the test, it is no timing)."""
    r = _post(client, f"/console/cases/{case}/export", client.get(f"/console/cases/{case}").text, query=query,
              include_purges="on")
    assert r.status_code == 303 and r.headers["location"].endswith("?done=export#exports"), r.text
    deadline = time.monotonic() + 120
    while True:
        page = client.get(f"/console/cases/{case}").text
        found = re.search(rf'href="/console/cases/{case}/exports/([0-9a-f-]+)">[^<]*</a></td><td><code>'
                          rf'{re.escape(query)}</code></td>\s*<td class="state-(\w+)"', page)
        assert found is not None, page
        if found.group(2) in ("succeeded", "failed") or time.monotonic() > deadline:
            assert found.group(2) == "succeeded", page
            return found.group(1)
        assert 'hx-trigger="every 2s"' in page          # the list follows a running export by itself
        time.sleep(0.1)


def test_a_case_is_created_given_custodians_held_searched_and_exported_from_the_console(console: Console) -> None:
    alice, bob = _mailboxes(console)
    signed_in_as(console.services, console.client, console.tenant, "counsel@contoso.com", [COMPLIANCE])
    client = console.client
    case = _new_case(client)
    page = client.get(f"/console/cases/{case}?done=created").text
    assert "Case created." in page and "Smith v. Contoso" in page and "wire fraud" in page

    r = _post(client, f"/console/cases/{case}/custodians", page, users="alice@contoso.com\nBOB@contoso.com")
    assert r.status_code == 303 and r.headers["location"] == f"/console/cases/{case}?done=custodians"
    assert console.services.ediscovery.custodians(console.tenant, case) == sorted([alice, bob])

    page = client.get(f"/console/cases/{case}").text
    r = _post(client, f"/console/cases/{case}/holds", page, name="Merger hold", query="merger", days="")
    assert r.status_code == 303, r.text
    r = _post(client, f"/console/cases/{case}/holds", page, name="", query="", days="365")
    assert r.status_code == 303, r.text
    holds = console.services.compliance.holds(console.tenant, case_id=case)
    assert [(h.name, h.query, h.duration_days) for h in holds] == [
        ("Merger hold", "merger", None), ("Smith v. Contoso hold", None, 365)]
    page = client.get(f"/console/cases/{case}").text
    assert page.count("Release</button>") == 2

    r = _post(client, f"/console/cases/{case}/search", page, query="merger", include_purges="on")
    assert r.status_code == 200
    assert re.search(r'<p class="count" id="case-count"><strong>3</strong> items found', r.text), r.text
    table = r.text[r.text.index('id="hits-per-custodian"'):]
    assert re.search(r'<th scope="row">alice@contoso.com</th><td class="num" data-value="2">', table)
    assert re.search(r'<th scope="row">bob@contoso.com</th><td class="num" data-value="1">', table)
    assert "/console/static/chart.umd.min.js" in r.text and "merger price 1" in r.text
    assert 'id="export-query" name="query"' in r.text and 'value="merger"' in r.text   # ready to export

    export = _finished_export(client, case, "merger")
    page = client.get(f"/console/cases/{case}/exports/{export}")
    assert page.status_code == 200 and "3 exported of 3 found" in page.text
    shown = dict(re.findall(r"<tr><td><code>([^<]+)</code></td><td><code>([0-9a-f]{64})</code></td></tr>", page.text))
    assert f"items/alice@contoso.com/{deliver_id(console, alice, 1)}.eml" in shown and "loadfile.csv" in shown

    download = client.get(f"/console/cases/{case}/exports/{export}/download")
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert download.headers["content-disposition"] == f'attachment; filename="export-{export}.zip"'
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        files = {n.removeprefix(f"export-{export}/"): archive.read(n) for n in archive.namelist()}
    manifest_sha = re.search(r'<code id="manifest-sha256">([0-9a-f]{64})</code>', page.text)
    assert manifest_sha is not None and hashlib.sha256(files["manifest.sha256"]).hexdigest() == manifest_sha.group(1)
    assert set(shown) == set(files) - {"manifest.sha256"}
    for name, digest in shown.items():      # what the page shows is what the zip holds
        assert hashlib.sha256(files[name]).hexdigest() == digest, name

    # Released from the case page; back to the case (chosen from the hold, not the form).
    page = client.get(f"/console/cases/{case}").text
    r = _post(client, f"/console/holds/{holds[0].id}/release", page)
    assert r.status_code == 303 and r.headers["location"] == f"/console/cases/{case}?done=released"
    assert [h.name for h in console.services.compliance.holds(console.tenant, case_id=case)] == [
        "Smith v. Contoso hold"]

    changes = console.services.ledger.entries(console.tenant, action="admin.change", limit=1000)
    console_changes = {e.detail["operation"] for e in changes if e.detail.get("via") == "console"}
    assert console_changes == {"POST /console/cases", "POST /console/cases/{case}/custodians",
                               "POST /console/cases/{case}/holds", "POST /console/cases/{case}/search",
                               "POST /console/cases/{case}/export", "POST /console/holds/{hold_id}/release"}
    downloads = console.services.ledger.entries(console.tenant, action="export.download")
    assert downloads[0].actor.startswith("counsel@contoso.com") and downloads[0].detail["complete"] is True


def deliver_id(console: Console, user: str, n: int) -> int:
    return next(i.id for i in console.services.archive.items(console.tenant, user)
                if i.message_id == f"case-{n}@contoso.com")


def test_a_mailbox_hold_is_placed_and_released_on_the_holds_page(console: Console) -> None:
    alice, _ = _mailboxes(console)
    signed_in_as(console.services, console.client, console.tenant, "counsel@contoso.com", [COMPLIANCE])
    page = console.client.get("/console/holds").text
    assert "No hold." in page and "Hold a whole mailbox" in page
    r = _post(console.client, "/console/holds", page, user="alice@contoso.com", name="Alice leaves", days="")
    assert r.status_code == 303 and r.headers["location"] == "/console/holds?done=hold"
    [hold] = console.services.compliance.holds(console.tenant)
    assert (hold.user_id, hold.name, hold.query) == (alice, "Alice leaves", None)
    page = console.client.get("/console/holds").text
    assert "Alice leaves" in page and f'href="/console/users/{alice}">alice@contoso.com' in page
    r = _post(console.client, f"/console/holds/{hold.id}/release", page)
    assert r.headers["location"] == "/console/holds?done=released"
    assert console.services.compliance.holds(console.tenant) == []
    assert "Alice leaves" in console.client.get("/console/holds", params={"released": "true"}).text
    again = _post(console.client, f"/console/holds/{hold.id}/release", page)
    assert again.status_code == 409 and "already released" in again.text


def test_a_refused_query_or_an_empty_case_is_said_at_its_form(console: Console) -> None:
    _mailboxes(console)
    signed_in_as(console.services, console.client, console.tenant, "ed@contoso.com", [EDISCOVERY])
    case = _new_case(console.client)
    page = console.client.get(f"/console/cases/{case}").text
    r = _post(console.client, f"/console/cases/{case}/search", page, query="merger")
    assert r.status_code == 400 and 'id="search-error"' in r.text and "no custodians" in r.text
    _post(console.client, f"/console/cases/{case}/custodians", page, users="alice@contoso.com")
    r = _post(console.client, f"/console/cases/{case}/search", page, query="frm:carol")
    assert r.status_code == 200 and "unknown property" in r.text       # the form doing its job, in place
    assert re.search(r'<pre class="pointer"[^>]*>frm:carol\n\^</pre>', r.text) and 'aria-invalid="true"' in r.text
    r = _post(console.client, f"/console/cases/{case}/export", page, query="merger AND (")
    assert r.status_code == 200 and 'id="export-error"' in r.text
    assert console.services.ediscovery.exports(console.tenant, case) == []
    r = _post(console.client, f"/console/cases/{case}/custodians", page, users="nobody@contoso.com")
    assert r.status_code == 404 and "nobody@contoso.com" in r.text
    r = _post(console.client, "/console/cases", page, name="Smith v. Contoso")
    assert r.status_code == 409 and "exists" in r.text


def test_a_viewer_without_the_role_is_not_offered_the_action_and_is_refused_when_sending_it(console: Console) -> None:
    alice, _ = _mailboxes(console)
    services, tenant = console.services, console.tenant
    case = services.ediscovery.create_case(tenant, "Acme", "counsel").id
    services.ediscovery.add_custodians(tenant, case, [alice], "counsel")
    hold = services.ediscovery.hold(tenant, case, "counsel", name="Acme hold")
    # An eDiscovery Manager works the case, but holds are the Compliance Administrator's (POST …/holds).
    signed_in_as(services, console.client, tenant, "ed@contoso.com", [EDISCOVERY])
    page = console.client.get(f"/console/cases/{case}").text
    assert "Add custodians</button>" in page and "Start export</button>" in page
    assert "Release</button>" not in page and "Place hold</button>" not in page
    assert "Hold a whole mailbox" not in console.client.get("/console/holds").text
    r = _post(console.client, f"/console/cases/{case}/holds", page, name="x", query="merger")
    assert r.status_code == 403 and "Compliance Administrator" in r.text
    r = _post(console.client, f"/console/holds/{hold.id}/release", page)
    assert r.status_code == 403
    r = _post(console.client, "/console/holds", page, user="alice@contoso.com")
    assert r.status_code == 403
    assert [h.id for h in services.compliance.holds(tenant)] == [hold.id]
    # Organization Management reads the directory and verifies the archive, but no case.
    with _client(console) as org:
        signed_in_as(services, org, tenant, "org@contoso.com", [ORGANIZATION])
        home = org.get("/console/").text
        assert "/console/cases" not in home and "/console/verify" in home
        assert org.get("/console/cases").status_code == 403
        r = _post(org, "/console/cases", home, name="Sneaky")
        assert r.status_code == 403 and "eDiscovery Manager" in r.text
        r = _post(org, f"/console/cases/{case}/custodians", home, users="alice@contoso.com")
        assert r.status_code == 403
        assert org.get(f"/console/cases/{case}/exports/{uuid.uuid4()}/download").status_code == 403
    assert [c.name for c in ComplianceConsole(services).cases(tenant)] == ["Acme"]
    assert services.ediscovery.custodians(tenant, case) == [alice]


def test_an_action_without_the_sessions_csrf_token_is_refused_and_changes_nothing(console: Console) -> None:
    alice, _ = _mailboxes(console)
    case = console.services.ediscovery.create_case(console.tenant, "Acme", "counsel").id
    signed_in_as(console.services, console.client, console.tenant, "counsel@contoso.com", [COMPLIANCE])
    for url, fields in ((f"/console/cases/{case}/custodians", {"users": "alice@contoso.com"}),
                        (f"/console/cases/{case}/holds", {"query": "merger"}),
                        ("/console/cases", {"name": "Forged"}),
                        ("/console/holds", {"user": "alice@contoso.com"})):
        for token in ({}, {"csrf_token": "x" * 43}):
            r = console.client.post(url, data={**fields, **token}, follow_redirects=False)
            assert r.status_code == 403 and "CSRF" in r.text, (url, r.text)
    assert console.services.ediscovery.custodians(console.tenant, case) == []
    assert console.services.compliance.holds(console.tenant) == []
    assert "Forged" not in console.client.get("/console/cases").text


def test_another_tenants_case_hold_and_export_are_not_found(console: Console) -> None:
    alice, _ = _mailboxes(console)
    services, tenant = console.services, console.tenant
    signed_in_as(services, console.client, tenant, "counsel@contoso.com", [COMPLIANCE])
    case = _new_case(console.client, "A Secret Matter")
    _post(console.client, f"/console/cases/{case}/custodians", console.client.get(f"/console/cases/{case}").text,
          users="alice@contoso.com")
    export = _finished_export(console.client, case, "merger")
    hold = services.ediscovery.hold(tenant, case, "counsel", name="A Secret Hold")
    other = f"b-{uuid.uuid4().hex[:8]}"
    services.directory.create_tenant(other, "B")
    own = services.ediscovery.create_case(other, "B's own", "b-counsel").id
    with _client(console) as b:
        signed_in_as(services, b, other, "bob@b.example", [COMPLIANCE])
        home = b.get("/console/").text
        for url in (f"/console/cases/{case}", f"/console/cases/{case}/exports/{export}",
                    f"/console/cases/{case}/exports/{export}/download", f"/console/cases/{own}/exports/{export}",
                    f"/console/cases/{own}/exports/{export}/download"):
            r = b.get(url)
            assert r.status_code == 404 and "A Secret" not in r.text, (url, r.text[:300])
            assert r.headers["content-type"].startswith("text/html")
        for url, fields in ((f"/console/cases/{case}/custodians", {"users": "bob@b.example"}),
                            (f"/console/cases/{case}/holds", {"query": "merger"}),
                            (f"/console/cases/{case}/search", {"query": "merger"}),
                            (f"/console/cases/{case}/export", {"query": "merger"}),
                            (f"/console/holds/{hold.id}/release", {})):
            r = _post(b, url, home, **fields)
            assert r.status_code == 404 and "A Secret" not in r.text, (url, r.text[:300])
        assert "A Secret" not in b.get("/console/holds", params={"released": "true"}).text
    assert [h.id for h in services.compliance.holds(tenant, case_id=case)] == [hold.id]
    assert services.ediscovery.custodians(tenant, case) == [alice]
    assert len(services.ediscovery.exports(tenant, case)) == 1
    assert services.ledger.entries(tenant, action="export.download") == []


def test_the_verify_page_says_intact_then_names_the_first_broken_entry(console: Console) -> None:
    _mailboxes(console)
    signed_in_as(console.services, console.client, console.tenant, "org@contoso.com", [ORGANIZATION])
    page = console.client.get("/console/verify")
    assert page.status_code == 200 and "Verify the archive now" in page.text and "verify-result" not in page.text
    ok = console.client.get("/console/verify", params={"run": "true"}).text
    assert re.search(r'id="verify-result" role="status"><strong>The archive is intact</strong>: \d+ ledger entries, '
                     r'4 items checked', ok), ok
    with console.services.db.session() as session:
        session.execute(update(LedgerEntry).where(LedgerEntry.tenant_id == console.tenant, LedgerEntry.number == 2)
                        .values(actor="someone-else"))
    broken = console.client.get("/console/verify", params={"run": "true"}).text
    first = re.search(r'<p class="first-problem">([^<]+)</p>', broken)
    assert first is not None and first.group(1).startswith("ledger entry 2 ") and "changed" in first.group(1)
    assert 'role="alert"' in broken
    with _client(console) as ed:
        signed_in_as(console.services, ed, console.tenant, "ed@contoso.com", [EDISCOVERY])
        assert ed.get("/console/verify").status_code == 403       # as GET …/verify: Compliance or Organization
        assert "/console/verify" not in ed.get("/console/").text


def test_a_bad_query_parameter_on_a_console_page_is_an_html_page_not_json(console: Console) -> None:
    r = console.client.get("/console/users", params={"start": "0"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/auth/login?next=")   # sign in first
    signed_in_as(console.services, console.client, console.tenant, "org@contoso.com", [ORGANIZATION])
    for url, params in (("/console/users", {"start": "0"}), ("/console/users", {"q": "x" * 201}),
                        ("/console/search/items/not-a-number", {}), ("/console/verify", {"run": "perhaps"})):
        r = console.client.get(url, params=params)
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html"), (url, r.text[:200])
        assert "Cannot show this" in r.text and "org@contoso.com" in r.text        # the console's page, signed in
        assert r.headers["content-security-policy"].startswith("default-src 'none'")


def test_an_export_form_over_the_body_limit_is_refused_before_it_is_read(console: Console) -> None:
    """Starting an export is ``…/export``: the body limit's exemption is for uploads (``POST …/exports``)."""
    case = console.services.ediscovery.create_case(console.tenant, "Acme", "counsel").id
    signed_in_as(console.services, console.client, console.tenant, "counsel@contoso.com", [COMPLIANCE])
    page = console.client.get(f"/console/cases/{case}").text
    limit = console.services.settings.admin_body_max_bytes
    r = _post(console.client, f"/console/cases/{case}/export", page, query="x" * (limit + 1))
    assert r.status_code == 413
    assert console.services.ediscovery.exports(console.tenant, case) == []
