"""Connectors and what leaves the machine (issue #9, defect 6): the feed's credentials go to the feed's host only,
sources and targets are under the egress policy, connect failures look alike, credentials are never shown."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from tenantry.connectors.models import Connector
from tenantry.connectors.sources import SourceUnavailable
from tenantry.connectors.sources.archiver_feed import ArchiverFeedSource
from tenantry.core.egress import EgressPolicy, EgressRefused
from tenantry.core.errors import Invalid
from tenantry.core.results import plain
from tests.conftest import as_admin
from tests.connectors.conftest import NOW, FeedServer, People, feed_item
from tests.factories.connectors import make_connector, make_feed_connector
from tests.interop.conftest import free_port
from tests.security.test_egress import NOT_HTTP, Listener


def test_a_feed_attachment_on_another_host_is_reported_and_never_gets_the_feed_credentials(
        backend, tenant: str, people: People) -> None:  # noqa: ANN001
    thief = Listener()
    try:
        items = [feed_item(1), feed_item(2, "attachment", attachments=[
            {"filename": "x.pdf", "content_type": "application/pdf", "url": f"{thief.url}/steal"}])]
        with FeedServer(items, {}) as feed:
            cid = make_feed_connector(backend, tenant, people.admin, feed, name="TM")
            report = backend.connectors.run(tenant, cid, now=NOW)
    finally:
        thief.close()
    assert thief.received == []
    assert report.status == "succeeded" and report.imported == 1
    issue = next(i for i in report.issues if i.source_id == "tm-2")
    assert "not on the feed's host" in issue.detail


@pytest.mark.parametrize("url", ["http://[::1/x", "http://exa mple.com/x", "http://\x7f.example/x", "/files/a\x00b",
                                 "http://" + "a" * 64 + ".example/x"])
def test_a_feed_attachment_url_that_is_no_usable_url_is_reported_and_the_run_goes_on(
        backend, tenant: str, people: People, url: str) -> None:  # noqa: ANN001
    items = [feed_item(1), feed_item(2, "attachment", attachments=[
        {"filename": "x.pdf", "content_type": "application/pdf", "url": url}])]
    with FeedServer(items, {}) as feed:
        cid = make_feed_connector(backend, tenant, people.admin, feed, name="TM")
        report = backend.connectors.run(tenant, cid, now=NOW)
    assert report.status == "succeeded" and report.imported == 1
    assert any(i.source_id == "tm-2" for i in report.issues)


def test_a_feed_url_with_credentials_or_a_password_in_the_settings_is_refused_unrepeated(
        backend, tenant: str, people: People) -> None:  # noqa: ANN001
    def create(source: dict[str, str]) -> None:
        backend.connectors.create(tenant, name="x", kind="archiver-feed", by=as_admin(backend, tenant, people.admin),
                                  accept_terms=True, source=source, source_password="feed-pw-2468",
                                  test_source=False)

    with pytest.raises(Invalid, match="must not contain a user name or password") as caught:
        create({"url": "http://archiver:url-pw-1357@127.0.0.1:9/", "username": "archiver"})
    assert "url-pw-1357" not in caught.value.message
    with pytest.raises(Invalid, match="query string"):
        create({"url": "http://127.0.0.1:9/feed?key=url-pw-1357", "username": "archiver"})
    with pytest.raises(Invalid, match="source_password"):
        create({"url": "http://127.0.0.1:9/", "username": "archiver", "password": "url-pw-1357"})
    assert backend.connectors.list_connectors(tenant) == []


@pytest.mark.parametrize(("target", "expected"), [
    ({"host": "master:imap-pw-97531@imap.contoso.test"}, "must not contain a user name or password"),
    ({"host": "imap.contoso.test", "password": "imap-pw-97531"}, "target_secret"),
    ({"host": "imap.contoso.test:993"}, "host name or IP address"),
    ({"host": "imap.contoso.test", "port": "993; drop"}, "port"),
])
def test_an_imap_target_with_a_password_in_its_settings_is_refused_unrepeated(
        backend, tenant: str, people: People, target: dict[str, str], expected: str) -> None:  # noqa: ANN001
    with pytest.raises(Invalid, match=expected) as caught:
        backend.connectors.create(tenant, name="x", kind="whatsapp-export", by=as_admin(backend, tenant, people.admin),
                                  accept_terms=True, target={"kind": "imap", **target},
                                  target_secret={"password": "imap-pw-97531"})
    assert "imap-pw-97531" not in caught.value.message
    assert backend.connectors.list_connectors(tenant) == []


@pytest.mark.parametrize(("source_url", "imap_host"), [
    ("http://169.254.169.254/latest", None), ("http://[::1]:8090/", None), ("http://localhost:8090/", None),
    (None, "127.0.0.1"), (None, "metadata.google.internal"), (None, "fe80::1"),
])
def test_sources_and_targets_the_default_policy_refuses_are_not_saved(
        backend, tenant: str, people: People, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
        source_url: str | None, imap_host: str | None) -> None:
    monkeypatch.setattr(backend.connectors, "egress", EgressPolicy())
    with pytest.raises(EgressRefused, match="the outbound policy does not allow"):
        if source_url:
            backend.connectors.create(tenant, name="x", kind="archiver-feed",
                                      by=as_admin(backend, tenant, people.admin),
                                      accept_terms=True, source={"url": source_url, "username": "u"},
                                      source_password="p" * 12, test_source=False)
        else:
            backend.connectors.create(tenant, name="x", kind="whatsapp-export",
                                      by=as_admin(backend, tenant, people.admin),
                                      accept_terms=True, target={"kind": "imap", "host": imap_host, "port": 993},
                                      target_secret={"password": "p" * 12})
    assert backend.connectors.list_connectors(tenant) == []


def test_an_unreachable_feed_says_the_same_for_a_closed_and_a_non_http_port() -> None:
    closed = free_port()
    ssh_like = Listener(NOT_HTTP, greet=True)
    messages = set()
    try:
        for port in (closed, ssh_like.port):
            source = ArchiverFeedSource(f"http://127.0.0.1:{port}", "archiver", "feed-pw",
                                        egress=EgressPolicy(allow_loopback=True))
            try:
                with pytest.raises(SourceUnavailable) as caught:
                    source.test()
            finally:
                source.close()
            messages.add(str(caught.value).replace(str(port), "PORT"))
    finally:
        ssh_like.close()
    assert len(messages) == 1 and "could not reach the target" in next(iter(messages)), messages


def test_a_feed_url_saved_before_the_rule_is_shown_without_its_credentials(
        backend, tenant: str, people: People) -> None:  # noqa: ANN001
    cid = make_connector(backend, tenant, people.admin, name="Old", kind="archiver-feed", consent=False,
                         source={"url": "http://127.0.0.1:9/", "username": "u"}, source_password="p" * 12,
                         test_source=False)
    legacy = {"url": "http://u:legacy-feed-pw@127.0.0.1:9/?sig=legacy-feed-pw", "username": "u",
              "password": "legacy-feed-pw"}
    with backend.db.session() as session:
        session.execute(update(Connector).where(Connector.id == cid).values(source_config=json.dumps(legacy)))
    shown = json.dumps(plain([backend.connectors.describe(tenant, cid), backend.connectors.list_connectors(tenant)]))
    assert "legacy-feed-pw" not in shown and "127.0.0.1:9" in shown
