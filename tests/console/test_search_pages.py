"""The console's content search and eDiscovery pages through a TestClient: the query language's errors in place,
hits and per-mailbox counts, a hostile HTML message previewed with no active content, the cases, and who may open
them (roles, tenant isolation). The browser walk is tests/console/test_browser_search.py."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from tenantry.archive.service import Delivery
from tenantry.console.compliance import html_text, preview_of
from tenantry.core.access import COMPLIANCE, EDISCOVERY, ORGANIZATION
from tests.console.conftest import Console, signed_in_as

HOSTILE_HTML = (
    '<html><head><script>alert("head")</script><style>body{background:url(https://evil.example/t.png)}</style>'
    '</head><body><p>Quarterly merger plan</p><script>window.__pwned = 1; alert(document.cookie)</script>'
    '<img src="x" onerror="alert(1)"><a href="javascript:alert(2)">click me</a>'
    '<a href=" JaVaScRiPt:alert(3)">again</a><img src="https://tracker.example/pixel.gif">'
    '<iframe src="https://evil.example/"></iframe><p onclick="alert(4)">Regards, Mallory</p></body></html>')


def hostile_message(n: int = 1, *, to: str = "victim@contoso.com") -> bytes:
    boundary = "b0undary"
    return (f"Message-ID: <hostile-{n}@evil.example>\r\nFrom: Mallory <mallory@evil.example>\r\nTo: {to}\r\n"
            f"Subject: merger <script>alert('subject')</script> {n}\r\nDate: Mon, 30 Nov 2026 07:00:00 +0000\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary={boundary}\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Quarterly merger plan <b>not bold</b> javascript:alert(5)\r\n"
            f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{HOSTILE_HTML}\r\n"
            f"--{boundary}--\r\n").encode()


def deliver(console: Console, user_id: str, address: str, raw: bytes, message_id: str,
            subject: str = "merger", sent_at: datetime | None = None) -> int:
    services = console.services
    services.archive.deliver(console.tenant, [Delivery(
        user_id, address, "Inbox", raw, message_id, "email", "test",
        sent_at or datetime.now(UTC) - timedelta(hours=1), subject=subject, sender="mallory@evil.example")])
    return next(i.id for i in services.archive.items(console.tenant, user_id) if i.message_id == message_id)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_html_text_keeps_the_words_and_drops_every_element_script_and_link() -> None:
    text, links = html_text(HOSTILE_HTML)
    assert "Quarterly merger plan" in text and "Regards, Mallory" in text and "click me again" in text
    assert "alert" not in text and "evil.example" not in text and "<" not in text
    assert links == ["javascript:alert(2)", "JaVaScRiPt:alert(3)"]
    headers, parts, attachments = preview_of(hostile_message())
    assert dict(headers)["From"] == "Mallory <mallory@evil.example>"
    assert [p.content_type for p in parts] == ["text/plain", "text/html"] and attachments == []
    assert parts[1].source is not None and "<script>" in parts[1].source       # the source, to be shown escaped


def test_a_malformed_message_is_previewed_as_written_not_refused(console: Console) -> None:
    raw = (b"From: \"unterminated <a@b\r\nTo: ,,,@@@\r\nMessage-ID: <<<>>>\r\n"
           b"Subject: \xff\xfe bytes =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
           b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nhello \xff world\r\n")
    headers, parts, _ = preview_of(raw)
    assert dict(headers)["To"] == ",,,@@@" and dict(headers)["Message-ID"] == "<<<>>>"   # not re-parsed into "<>"
    assert dict(headers)["Subject"] == "\ufffd\ufffd bytes Grüße" and parts[0].text.startswith("hello \ufffd world")
    item = deliver(console, "u1", "u1@contoso.com", raw, "malformed@t", subject="malformed")
    signed_in_as(console.services, console.client, console.tenant, "ed@contoso.com", [EDISCOVERY])
    page = console.client.get(f"/console/search/items/{item}")
    assert page.status_code == 200 and ",,,@@@" in page.text and "hello" in page.text


def test_a_bad_query_shows_the_parsers_message_and_column_in_place(console: Console) -> None:
    signed_in_as(console.services, console.client, console.tenant, "ed@contoso.com", [EDISCOVERY])
    r = console.client.get("/console/search", params={"q": "frm:alice"})
    assert r.status_code == 200          # the form, with its error: a browser logs no failed load
    assert "unknown property" in r.text and "at column 1" in r.text
    assert re.search(r'<pre class="pointer"[^>]*>frm:alice\n\^</pre>', r.text), r.text
    assert 'value="frm:alice"' in r.text and 'aria-invalid="true"' in r.text
    unclosed = console.client.get("/console/search", params={"q": "merger AND (plan"})
    assert 'role="alert"' in unclosed.text and "column" in unclosed.text
    assert console.client.get("/console/search").status_code == 200          # nothing asked: the box only


def test_a_search_shows_the_count_per_mailbox_and_links_each_hit(console: Console) -> None:
    first = deliver(console, "u1", "u1@contoso.com", hostile_message(1), "hostile-1@evil.example")
    deliver(console, "u1", "u1@contoso.com", hostile_message(2), "hostile-2@evil.example")
    deliver(console, "u2", "u2@contoso.com", hostile_message(3), "hostile-3@evil.example")
    deliver(console, "u2", "u2@contoso.com", b"Message-ID: <other@t>\r\nSubject: lunch\r\n\r\nsandwiches\r\n",
            "other@t", subject="lunch")
    signed_in_as(console.services, console.client, console.tenant, "cara@contoso.com", [COMPLIANCE])
    r = console.client.get("/console/search", params={"q": "merger"})
    assert r.status_code == 200
    text = _text(r.text)
    assert "3 items found in 2 mailboxes" in text
    assert "u1@contoso.com 2" in text and "u2@contoso.com 1" in text
    assert f'href="/console/search/items/{first}?q=merger"' in r.text
    assert "lunch" not in text
    assert "<script>alert" not in r.text                                 # the subject is escaped text
    ledger = console.services.ledger.entries(console.tenant)
    assert any(e.detail.get("query") == "merger" for e in ledger)         # the search is audited


def test_the_preview_of_a_hostile_html_message_has_no_active_content(console: Console) -> None:
    item = deliver(console, "u1", "u1@contoso.com", hostile_message(), "hostile-1@evil.example")
    signed_in_as(console.services, console.client, console.tenant, "ed@contoso.com", [EDISCOVERY])
    r = console.client.get(f"/console/search/items/{item}")
    assert r.status_code == 200
    body = r.text.split('<main id="main">', 1)[1]
    assert "<script" not in body and "<img" not in body and "<iframe" not in body and "<style" not in body
    assert "onerror=" not in body.replace("onerror=&#34;", "").replace("onerror=&quot;", "")
    assert not re.search(r'href="\s*javascript:', r.text, re.I)
    assert "&lt;script&gt;" in body                                      # the source, escaped
    assert "Quarterly merger plan" in body and "Regards, Mallory" in body
    assert "javascript:alert(2)" in body                                 # listed as text, not a link
    scripts = re.findall(r"<script[^>]*>", r.text)
    assert len(scripts) == 1 and 'src="/console/static/htmx.min.js' in scripts[0]   # the page's own, only
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_search_and_cases_need_compliance_or_ediscovery(console: Console) -> None:
    item = deliver(console, "u1", "u1@contoso.com", hostile_message(), "hostile-1@evil.example")
    case = console.services.ediscovery.create_case(console.tenant, "Matter", "counsel").id
    signed_in_as(console.services, console.client, console.tenant, "org@contoso.com", [ORGANIZATION])
    for path in ("/console/search?q=merger", f"/console/search/items/{item}", "/console/cases",
                 f"/console/cases/{case}"):
        r = console.client.get(path)
        assert r.status_code == 403 and "eDiscovery Manager" in r.text, path
        assert "Quarterly" not in r.text and "Matter" not in r.text
    assert "Content search" not in console.client.get("/console/").text      # not offered in the navigation


def test_cases_list_and_a_case_with_custodians_and_holds(console: Console) -> None:
    services, tenant = console.services, console.tenant
    custodian = console.user("custodian@contoso.com")
    case = services.ediscovery.create_case(tenant, "Acme v. Contoso", "counsel", "the <b>big</b> one").id
    services.ediscovery.add_custodians(tenant, case, [custodian], "counsel")
    services.ediscovery.hold(tenant, case, "counsel", query="merger", name="Merger hold")
    services.ediscovery.save_search(tenant, case, "Mergers", "subject:merger", "counsel")
    signed_in_as(services, console.client, tenant, "ed@contoso.com", [EDISCOVERY])
    listing = console.client.get("/console/cases")
    assert listing.status_code == 200 and f'href="/console/cases/{case}"' in listing.text
    assert "the &lt;b&gt;big&lt;/b&gt; one" in listing.text
    page = console.client.get(f"/console/cases/{case}")
    assert page.status_code == 200
    text = _text(page.text)
    for fact in ("custodian@contoso.com", "Merger hold", "merger", "active", "Mergers", "subject:merger"):
        assert fact in text, fact
    assert "eDiscovery cases" in console.client.get("/console/").text


def test_another_tenants_session_cannot_read_an_item_or_a_case_by_id(console: Console) -> None:
    item = deliver(console, "u1", "u1@contoso.com", hostile_message(), "hostile-1@evil.example")
    case = console.services.ediscovery.create_case(console.tenant, "Secret Matter", "counsel").id
    other = f"b-{uuid.uuid4().hex[:8]}"
    console.services.directory.create_tenant(other, "B")
    signed_in_as(console.services, console.client, other, "bob@b.example", [COMPLIANCE, EDISCOVERY])
    r = console.client.get(f"/console/search/items/{item}")
    assert r.status_code == 404 and "Quarterly" not in r.text
    r = console.client.get(f"/console/cases/{case}")
    assert r.status_code == 404 and "Secret Matter" not in r.text
    assert "Secret Matter" not in console.client.get("/console/cases").text
    found = console.client.get("/console/search", params={"q": "merger"})
    assert found.status_code == 200 and "Nothing matches" in found.text


def test_hits_are_paged_newest_first(console: Console) -> None:
    now = datetime.now(UTC)
    for n in range(30):
        deliver(console, "u1", "u1@contoso.com", f"Message-ID: <b{n}@t>\r\nSubject: budget talk {n}\r\n\r\n"
                f"budget\r\n".encode(), f"b{n}@t", subject=f"budget talk {n}", sent_at=now - timedelta(minutes=n))
    signed_in_as(console.services, console.client, console.tenant, "ed@contoso.com", [EDISCOVERY])
    first = console.client.get("/console/search", params={"q": "budget"})
    text = _text(first.text)
    assert "30 items found in 1 mailbox" in text and "1–25 of 30" in text
    assert "budget talk 0 " in text and "budget talk 24 " in text and "budget talk 25 " not in text   # newest first
    assert "start=26" in first.text
    second = _text(console.client.get("/console/search", params={"q": "budget", "start": "26"}).text)
    assert "26–30 of 30" in second and "budget talk 29 " in second and "budget talk 0 " not in second
