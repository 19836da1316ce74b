"""An archiver-feed connector end to end: wizard, run, mailboxes, report — every item accounted for."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest

from tenantry.archive.service import WHATSAPP_FOLDER
from tenantry.core.errors import Forbidden, Invalid, NotFound
from tenantry.core.results import plain
from tests.conftest import as_admin
from tests.connectors.conftest import NOW, FeedServer, feed_item
from tests.factories.connectors import make_feed_connector


def parsed(backend, tenant: str, user: str) -> list[email.message.EmailMessage]:  # noqa: ANN001
    out = []
    for item in backend.archive.items(tenant, user, WHATSAPP_FOLDER):
        out.append(email.message_from_bytes(backend.archive.read(tenant, item.id), policy=email.policy.default))
    return out


def test_creating_a_connector_needs_the_mailbox_import_export_role(backend, tenant, people, standard_feed) -> None:
    with pytest.raises(Forbidden):
        backend.connectors.create(tenant, name="x", kind="archiver-feed",
                                  by=as_admin(backend, tenant, people.bob), accept_terms=True,
                                  source={"url": standard_feed.url, "username": "archiver"},
                                  source_password=standard_feed.password)
    assert backend.connectors.list_connectors(tenant) == []


def test_organization_management_alone_cannot_create_a_connector_and_the_error_names_the_grant(
        backend, tenant, people, standard_feed) -> None:
    """Seed 000: no role group has "Mailbox Import Export" by default; the refusal says how to add it."""
    backend.directory.add_role_group_member(tenant, "Organization Management", people.bob)
    with pytest.raises(Forbidden) as refused:
        backend.connectors.create(tenant, name="x", kind="archiver-feed",
                                  by=as_admin(backend, tenant, people.bob), accept_terms=True,
                                  source={"url": standard_feed.url, "username": "archiver"},
                                  source_password=standard_feed.password)
    message = str(refused.value)
    assert "tenantry directory role-group-add Importers --role 'Mailbox Import Export'" in message
    assert "tenantry directory role-group-member Importers bob@contoso.com" in message
    assert backend.connectors.list_connectors(tenant) == []


def test_terms_must_be_accepted_and_credentials_work_before_saving(backend, tenant, people, standard_feed) -> None:
    with pytest.raises(Invalid, match="terms"):
        backend.connectors.create(tenant, name="x", kind="archiver-feed", by=as_admin(backend, tenant, people.admin),
                                  accept_terms=False, source={"url": standard_feed.url, "username": "archiver"},
                                  source_password=standard_feed.password)
    with pytest.raises(Invalid, match="did not accept"):
        backend.connectors.create(tenant, name="x", kind="archiver-feed", by=as_admin(backend, tenant, people.admin),
                                  accept_terms=True, source={"url": standard_feed.url, "username": "archiver"},
                                  source_password="wrong-password")
    assert backend.connectors.list_connectors(tenant) == []


def test_consent_review_and_enable_follow_the_wizard(backend, tenant, people, standard_feed) -> None:
    cid = make_feed_connector(backend, tenant, people.admin, standard_feed, name="TM", consent=False)
    review = backend.connectors.review(tenant, cid)
    assert not review.ready and any("consent" in b for b in review.blockers)
    with pytest.raises(Invalid, match="consent"):
        backend.connectors.enable(tenant, cid)
    with pytest.raises(Forbidden):
        backend.connectors.consent(tenant, cid, as_admin(backend, tenant, people.bob))
    backend.connectors.consent(tenant, cid, as_admin(backend, tenant, people.admin))
    enabled = backend.connectors.enable(tenant, cid)
    assert enabled.status == "enabled" and (enabled.next_run_at or "").endswith("02:00:00+00:00")
    # The stored password is sealed, never kept in clear.
    from tenantry.connectors.models import Connector

    with backend.db.session() as session:
        assert standard_feed.password not in (session.get(Connector, cid).source_secret or "")


def test_run_imports_each_kind_and_reports_the_rest(backend, tenant, people, standard_feed) -> None:
    cid = make_feed_connector(backend, tenant, people.admin, standard_feed)
    report = backend.connectors.run(tenant, cid, now=NOW)
    assert report.status == "succeeded", report.error
    # Every item the feed gave in the window is either imported or in the report (item 9 is outside it).
    assert report.seen == 8 and report.imported + sum(report.skipped_by_reason.values()) == report.seen
    assert report.imported_by_kind == {"chat": 2, "call": 1, "attachment": 1, "deleted": 1}
    assert report.skipped_by_reason == {"no_user": 1, "too_large": 1, "unparseable": 1}
    reasons = {(i.reason, i.source_id) for i in report.issues}
    assert reasons == {("no_user", "tm-5"), ("too_large", "tm-6"), ("unparseable", "tm-7")}
    too_large = next(i for i in report.issues if i.reason == "too_large")
    assert too_large.size == 10 * 1024 * 1024 + 1 + len("message 6")  # attachment + text
    # Alice and Bob are mapped by their SCIM mobile numbers: each has the four items they took part in.
    for user in (people.alice, people.bob):
        assert backend.archive.count(tenant, user, WHATSAPP_FOLDER) == 4
    assert backend.archive.count(tenant, people.carol, WHATSAPP_FOLDER) == 1  # matched by the item's e-mail


def test_converted_messages_carry_kind_participants_and_content(backend, tenant, people, standard_feed) -> None:
    cid = make_feed_connector(backend, tenant, people.admin, standard_feed)
    backend.connectors.run(tenant, cid, now=NOW)
    messages = {m["X-Tenantry-Source-Id"]: m for m in parsed(backend, tenant, people.bob)}
    chat = messages["tm-1"]
    assert chat["From"].addresses[0].addr_spec == "alice@contoso.com"
    assert [a.addr_spec for a in chat["To"].addresses] == ["bob@contoso.com"]
    assert chat["X-Tenantry-Kind"] == "chat" and chat.get_content().strip() == "message 1"
    call = messages["tm-2"]
    assert "0:03:12" in call.get_content() and call["X-Tenantry-Kind"] == "call"
    attachment = messages["tm-3"]
    files = {p.get_filename(): p.get_content() for p in attachment.iter_attachments()}
    assert files["report.pdf"] == b"%PDF-1.4 report" and files["site-photo.png"].startswith(b"\x89PNG")
    deleted = messages["tm-4"]
    assert "wire the money today" in deleted.get_content() and deleted["X-Tenantry-Kind"] == "deleted"
    assert chat["Message-ID"] != call["Message-ID"]
    assert chat["References"] == call["References"]  # one thread per chat


def test_a_call_with_a_direction_outside_the_protocol_is_reported_not_guessed(backend, tenant, people) -> None:
    items = [feed_item(1, "call", call={"direction": "sideways", "duration": 5}, text=""),
             feed_item(2, "call", call={"duration": 5}, text="")]      # no direction: incoming, as before
    with FeedServer(items, {}) as feed:
        cid = make_feed_connector(backend, tenant, people.admin, feed)
        report = backend.connectors.run(tenant, cid, now=NOW)
    assert report.imported == 1 and report.skipped_by_reason == {"unparseable": 1}
    (issue,) = report.issues
    assert issue.source_id == "tm-1" and "unknown call direction 'sideways'" in issue.detail
    (call,) = parsed(backend, tenant, people.alice)
    assert call["X-Tenantry-Call"].startswith("incoming;")


def test_outsiders_appear_as_number_at_the_outsider_domain(backend, tenant, people) -> None:
    items = [feed_item(1, participants=[{"phone": "+491701111111", "name": "Alice"},
                                        {"phone": "+33 6 12 34 56 78", "name": "Client"}])]
    with FeedServer(items, {}) as feed:
        cid = make_feed_connector(backend, tenant, people.admin, feed, outsider_domain="wa.contoso.com")
        backend.connectors.run(tenant, cid, now=NOW)
    (message,) = parsed(backend, tenant, people.alice)
    assert [a.addr_spec for a in message["To"].addresses] == ["+33612345678@wa.contoso.com"]


def test_rerun_imports_nothing_twice_and_checkpoint_moves_on(backend, tenant, people, standard_feed) -> None:
    cid = make_feed_connector(backend, tenant, people.admin, standard_feed)
    first = backend.connectors.run(tenant, cid, now=NOW)
    again = backend.connectors.run(tenant, cid, now=NOW + timedelta(days=1))
    assert first.copies > 0 and first.already_archived == 0
    # The second run re-reads 48 hours behind the first's end (late arrivals): what it reads again is already
    # in every mailbox, so it writes no copy and says so.
    assert again.window_start == (NOW - timedelta(hours=48)).isoformat()
    assert again.copies == 0 and again.duplicates == first.copies
    assert again.imported == first.imported == again.already_archived
    assert plain(again)["already_archived"] == first.imported
    assert backend.archive.count(tenant, people.alice) == 4
    assert backend.connectors.describe(tenant, cid).checkpoint == (NOW + timedelta(days=1)).isoformat()


def test_a_message_reaching_the_feed_after_the_run_that_covered_its_time_is_imported_next_run(
        backend, tenant, people) -> None:
    """Issue #10, item 1: the archiver syncs once a day, so a message sent at 01:00 can reach the feed after the
    02:00 run whose window held 01:00. The next run must still import it."""
    items = [feed_item(1)]
    with FeedServer(items, {}) as feed:
        cid = make_feed_connector(backend, tenant, people.admin, feed)
        first = backend.connectors.run(tenant, cid, now=NOW)
        assert first.imported == 1
        late = feed_item(2, when=NOW - timedelta(hours=1))   # sent 01:00, reaches the archiver after 02:00
        items.append(late)
        second = backend.connectors.run(tenant, cid, now=NOW + timedelta(days=1))
    assert second.status == "succeeded" and second.imported == 2 and second.already_archived == 1
    assert second.copies == 2     # Alice's and Bob's copy of the late message
    texts = sorted(m.get_body(("plain",)).get_content().strip() for m in parsed(backend, tenant, people.alice))
    assert texts == ["message 1", "message 2"]


def test_a_late_message_older_than_the_overlap_is_not_reached_unless_the_overlap_is_widened(
        backend, tenant, people) -> None:
    items = [feed_item(1)]
    with FeedServer(items, {}) as feed:
        cid = make_feed_connector(backend, tenant, people.admin, feed)
        backend.connectors.run(tenant, cid, now=NOW)
        items.append(feed_item(2, when=NOW - timedelta(hours=60)))     # 60 hours late
        short = backend.connectors.run(tenant, cid, now=NOW + timedelta(hours=1))
        assert short.imported == 1 and short.already_archived == 1
        assert backend.connectors.configure(tenant, cid, overlap_hours=72).overlap_hours == 72
        wide = backend.connectors.run(tenant, cid, now=NOW + timedelta(hours=2))
    assert wide.imported == 2 and wide.copies == 2
    assert backend.archive.count(tenant, people.alice, WHATSAPP_FOLDER) == 2


def test_an_overlap_under_48_hours_is_refused_and_changes_nothing(backend, tenant, people, standard_feed) -> None:
    with pytest.raises(Invalid, match="overlap_hours must be between 48"):
        make_feed_connector(backend, tenant, people.admin, standard_feed, overlap_hours=24)
    assert backend.connectors.list_connectors(tenant) == []
    cid = make_feed_connector(backend, tenant, people.admin, standard_feed)
    assert backend.connectors.describe(tenant, cid).overlap_hours == 48
    with pytest.raises(Invalid, match="overlap_hours"):
        backend.connectors.configure(tenant, cid, overlap_hours=12)
    with pytest.raises(Invalid, match="run_at"):
        backend.connectors.configure(tenant, cid, run_at="25:00", overlap_hours=96)
    info = backend.connectors.describe(tenant, cid)
    assert info.overlap_hours == 48 and info.run_at == "02:00"


def test_reimport_of_the_same_window_is_idempotent(backend, tenant, people, standard_feed) -> None:
    cid = make_feed_connector(backend, tenant, people.admin, standard_feed)
    backend.connectors.run(tenant, cid, now=NOW)
    from sqlalchemy import update

    from tenantry.connectors.models import Connector

    with backend.db.session() as session:  # as if the first run had crashed before moving the checkpoint
        session.execute(update(Connector).where(Connector.id == cid).values(checkpoint=None))
    again = backend.connectors.run(tenant, cid, now=NOW)
    assert again.copies == 0 and again.duplicates == first_copies(backend, tenant, people)
    assert backend.archive.count(tenant, people.alice) == 4


def first_copies(backend, tenant, people) -> int:  # noqa: ANN001
    return sum(backend.archive.count(tenant, u) for u in (people.alice, people.bob, people.carol))


def test_unreachable_feed_fails_the_run_and_keeps_the_checkpoint(backend, tenant, people, standard_feed) -> None:
    cid = make_feed_connector(backend, tenant, people.admin, standard_feed)
    backend.connectors.enable(tenant, cid)
    standard_feed.server.should_exit = True
    standard_feed.thread.join(5)
    report = backend.connectors.run(tenant, cid, now=NOW)
    assert report.status == "failed" and "could not reach the target" in (report.error or "")
    info = backend.connectors.describe(tenant, cid)
    assert info.checkpoint is None
    # Retried with back-off, well before the next daily run.
    assert info.next_run_at is not None


def test_mapping_csv_comes_first_and_a_bad_csv_saves_nothing(backend, tenant, people) -> None:
    items = [feed_item(1, sender={"phone": "+491709999999", "name": "Carol's phone"},
                       participants=[{"phone": "+491709999999"}])]
    with FeedServer(items, {}) as feed:
        cid = make_feed_connector(backend, tenant, people.admin, feed)
        saved = backend.connectors.upload_mapping(tenant, cid, "mobile,email\n+49 170 9999999,carol@contoso.com\n")
        assert saved.entries == 1 and saved.notes == []
        with pytest.raises(Invalid, match="line 3"):
            backend.connectors.upload_mapping(tenant, cid, "mobile,email\n+491701,x@y.z\nnot-a-number,nobody\n")
        assert backend.connectors.describe(tenant, cid).mapping_entries == 1
        report = backend.connectors.run(tenant, cid, now=NOW)
    assert report.imported == 1
    assert backend.archive.count(tenant, people.carol, WHATSAPP_FOLDER) == 1


def test_schedule_runs_enabled_connectors_when_due(backend, tenant, people, standard_feed) -> None:
    cid = make_feed_connector(backend, tenant, people.admin, standard_feed)
    backend.connectors.enable(tenant, cid)
    due_at = backend.connectors.describe(tenant, cid).next_run_at
    assert due_at is not None
    from datetime import datetime

    when = datetime.fromisoformat(due_at)
    assert (tenant, cid) not in backend.connectors.due(when - timedelta(seconds=1))
    assert (tenant, cid) in backend.connectors.due(when)
    from tenantry.jobs import InlineJobs, Scheduler

    jobs = InlineJobs(backend)
    submitted = Scheduler(backend, jobs, interval=1).tick(when)
    reports = [jobs.results[j] for j in submitted if jobs.results[j].get("connector_id") == cid]
    assert reports and reports[0]["trigger"] == "schedule" and reports[0]["status"] == "succeeded"


def test_a_connector_mapping_by_email_only_can_be_enabled_and_imports(backend, tenant, people, standard_feed) -> None:
    """No CSV and no directory mobiles: the item's e-mail address (seed 000's second rule) is a mapping."""
    cid = make_feed_connector(backend, tenant, people.admin, standard_feed, use_directory_mobiles=False)
    review = backend.connectors.review(tenant, cid)
    assert review.ready is True and review.blockers == []
    assert backend.connectors.enable(tenant, cid).status == "enabled"
    report = backend.connectors.run(tenant, cid, now=NOW)
    assert report.status == "succeeded", report.error
    assert [m["Subject"] for m in parsed(backend, tenant, people.carol)]   # item 8 carries carol's e-mail
    assert copies(backend, tenant, people.alice) == 0  # by phone only: no rule left


def test_a_csv_row_wins_over_the_items_email(backend, tenant, people) -> None:
    """Seed 000: the custom CSV is consulted first, then the item's e-mail address."""
    item = feed_item(1, sender={"phone": "+491705555555", "name": "Shared phone", "email": "alice@contoso.com"},
                     participants=[{"phone": "+491705555555", "email": "alice@contoso.com"}])
    with FeedServer([item], {}) as feed:
        cid = make_feed_connector(backend, tenant, people.admin, feed, use_directory_mobiles=False)
        backend.connectors.upload_mapping(tenant, cid, "mobile,email\n+49 170 5555555,bob@contoso.com\n")
        report = backend.connectors.run(tenant, cid, now=NOW)
    assert report.status == "succeeded" and report.imported == 1, report.error
    assert copies(backend, tenant, people.bob) == 1
    assert copies(backend, tenant, people.alice) == 0


def copies(backend, tenant: str, user: str) -> int:  # noqa: ANN001
    """How many archived items a user has (0 when no mailbox was ever made for them)."""
    try:
        return len(backend.archive.items(tenant, user, WHATSAPP_FOLDER))
    except NotFound:
        return 0
