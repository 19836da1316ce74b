"""eDiscovery end to end on the real index: custodians, a query hold, searches, and an export that verifies."""

from __future__ import annotations

import csv
import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tenantry.archive.compliance import PURGES
from tenantry.archive.ediscovery import verify_export
from tenantry.archive.results import DeletionCounts
from tenantry.core.errors import Invalid
from tests.conftest import as_admin
from tests.connectors.conftest import NOW, FeedServer, People, feed_item
from tests.connectors.conftest import people as people  # noqa: F401,PLC0414  (fixture)
from tests.factories.archive import make_case


@pytest.fixture()
def imported(backend, tenant, people: People) -> People:
    items = [
        feed_item(1, text="Please wire the money today, invoice 4711 attached"),
        feed_item(2, text="Lunch at noon?"),
        feed_item(3, "deleted", deleted={"original_text": "delete the invoice file"}, text=""),
        feed_item(4, "call", call={"direction": "outgoing", "duration": 30, "missed": False, "video": False},
                  text="", when=NOW - timedelta(days=3)),
        feed_item(5, text="quarterly report draft", sender={"phone": "+491702222222", "name": "Bob"}),
    ]
    with FeedServer(items, {}) as feed:
        info = backend.connectors.create(tenant, name="TM", kind="archiver-feed",
                                         by=as_admin(backend, tenant, people.admin),
                                         accept_terms=True, source={"url": feed.url, "username": feed.username},
                                         source_password=feed.password)
        backend.connectors.consent(tenant, info.id, as_admin(backend, tenant, people.admin))
        report = backend.connectors.run(tenant, info.id, now=NOW)
    assert report.imported == 5
    return people


def test_case_search_counts_per_custodian_and_previews(backend, tenant, imported: People) -> None:
    case = make_case(backend, tenant, "Smith v. Contoso", custodians=[imported.alice])
    result = backend.ediscovery.run_search(tenant, case.id, "invoi* OR kind:call", "counsel")
    # Alice's copies only: message 1 (invoice), 3 (deleted, original text mentions the invoice), 4 (call).
    assert result.count == 3 and result.by_custodian == {imported.alice: 3}
    assert {p.kind for p in result.preview} == {"chat", "deleted", "call"}
    assert backend.ediscovery.run_search(tenant, case.id, 'participants:"+49 170 2222222" AND report',
                                         "counsel").count == 1


def test_query_hold_protects_only_what_it_finds(backend, tenant, imported: People) -> None:
    case = make_case(backend, tenant, "Matter", custodians=[imported.alice])
    backend.ediscovery.hold(tenant, case.id, "counsel", query='"wire the money"')
    alice = {i.subject + str(i.id): i.id for i in backend.archive.items(tenant, imported.alice)}
    ids = list(alice.values())
    counts = backend.compliance.delete_items(tenant, ids, "alice")
    assert counts == DeletionCounts(moved_to_purges=1, deleted=4)
    (kept,) = backend.archive.items(tenant, imported.alice)
    assert kept.folder == PURGES
    # Still found by eDiscovery, in Purges; not by a search that leaves Purges out.
    assert backend.ediscovery.run_search(tenant, case.id, "money", "counsel").count == 1
    assert backend.ediscovery.run_search(tenant, case.id, "money", "counsel", include_purges=False).count == 0
    # Bob's copy of the same message was not under the hold (not a custodian): his delete is final.
    bob_ids = [i.id for i in backend.archive.items(tenant, imported.bob)]
    assert backend.compliance.delete_items(tenant, bob_ids, "bob").moved_to_purges == 0


def test_export_has_eml_mbox_loadfile_summary_and_a_manifest_that_verifies(backend, tenant, imported: People,
                                                                          tmp_path: Path) -> None:
    case = make_case(backend, tenant, "Export", custodians=[imported.alice, imported.bob])
    out = tmp_path / "export"
    summary = backend.ediscovery.export(tenant, case.id, "invoice OR money", out, "counsel")
    assert summary.exported == summary.found == 4 and not summary.errors  # messages 1 and 3, twice
    rows = list(csv.DictReader((out / "loadfile.csv").open(encoding="utf-8")))
    assert {r["mailbox"] for r in rows} == {"alice@contoso.com", "bob@contoso.com"}
    first = (out / rows[0]["file"]).read_bytes()
    assert email.message_from_bytes(first, policy=email.policy.default)["Message-ID"]
    assert backend.archive.read(tenant, int(rows[0]["item_id"])) == first
    assert sorted(p.name for p in (out / "mbox").iterdir()) == ["alice@contoso.com.mbox", "bob@contoso.com.mbox"]
    assert verify_export(out) == []
    (out / rows[0]["file"]).write_bytes(first[:-3] + b"X\r\n")  # one character changed
    problems = verify_export(out)
    assert any(rows[0]["file"] in p and "changed" in p for p in problems), problems
    actions = [e.action for e in backend.ledger.entries(tenant)]
    assert "export" in actions and "case.create" in actions


def test_export_refuses_a_non_empty_folder_and_a_case_without_custodians(backend, tenant, imported, tmp_path) -> None:
    case = make_case(backend, tenant, "Empty")
    with pytest.raises(Invalid, match="custodians"):
        backend.ediscovery.run_search(tenant, case.id, "x", "counsel")
    backend.ediscovery.add_custodians(tenant, case.id, [imported.alice], "counsel")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(Invalid, match="not empty"):
        backend.ediscovery.export(tenant, case.id, "money", tmp_path / "busy", "counsel")


def test_new_items_are_searchable_as_soon_as_delivery_returns(backend, tenant, imported: People) -> None:
    from tenantry.archive.service import WHATSAPP_FOLDER, Delivery

    backend.archive.deliver(tenant, [Delivery(imported.alice, "alice@contoso.com", WHATSAPP_FOLDER,
                                              b"Message-ID: <fresh@t>\r\nSubject: zeppelin\r\n\r\nfresh\r\n",
                                              "fresh@t", "chat", "test", datetime(2026, 11, 25, tzinfo=UTC))])
    case = make_case(backend, tenant, "Fresh", custodians=[imported.alice])
    assert backend.ediscovery.run_search(tenant, case.id, "zeppelin", "counsel").count == 1


def test_content_search_over_all_mailboxes_pages_newest_first(backend, tenant, imported: People) -> None:
    everything = backend.ediscovery.content_search(tenant, "*", "auditor", count=3)
    assert everything.count == 10  # five items, two mailboxes each
    assert everything.by_mailbox == {"alice@contoso.com": 5, "bob@contoso.com": 5}
    page1 = everything.results
    page2 = backend.ediscovery.content_search(tenant, "*", "auditor", start=3, count=3).results
    dates = [r.sent_at for r in page1 + page2]
    assert dates == sorted(dates, reverse=True) and len({r.id for r in page1 + page2}) == 6
    only_bob = backend.ediscovery.content_search(tenant, "kind:chat", "auditor", users=[imported.bob])
    assert only_bob.by_mailbox == {"bob@contoso.com": 3}


def test_closing_a_case_releases_its_holds(backend, tenant, imported: People) -> None:
    case = make_case(backend, tenant, "Closing", custodians=[imported.alice])
    backend.ediscovery.hold(tenant, case.id, "counsel")
    backend.ediscovery.save_search(tenant, case.id, "money", "money", "counsel")
    ids = [i.id for i in backend.archive.items(tenant, imported.alice)]
    assert all(p.held for p in backend.compliance.protection(tenant, ids).values())
    backend.ediscovery.close_case(tenant, case.id, "counsel")
    assert not any(p.held for p in backend.compliance.protection(tenant, ids).values())
    with pytest.raises(Invalid, match="closed"):
        backend.ediscovery.hold(tenant, case.id, "counsel")
