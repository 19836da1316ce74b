"""The connector kinds: a source or a target is one module that registers a KIND; the wizard and the runner
know kinds only through the registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tenantry.archive.service import WHATSAPP_FOLDER
from tenantry.connectors.items import ItemKind, Participant, SkipReason, SourceIssue, SourceItem
from tenantry.connectors.registry import builtin
from tenantry.connectors.schedule import next_daily, retry_at
from tenantry.connectors.service import ConnectorService
from tenantry.connectors.sources import SourceSpec, SourceUnavailable
from tenantry.connectors.targets import TargetError, store
from tenantry.connectors.targets.imap import ImapAuth, ImapLogin, ImapSecurity, imap_settings
from tenantry.core.egress import EgressPolicy
from tenantry.core.errors import Invalid
from tests.conftest import as_admin
from tests.connectors.conftest import NOW, People


@dataclass
class MemorySource:
    """A source of the items it was given: what a third-party source module builds."""

    items_given: list[SourceItem | SourceIssue]
    fail: bool = False
    kind: str = "memory"
    closed: list[bool] = field(default_factory=list)

    def test(self) -> None:
        if self.fail:
            raise SourceUnavailable("the memory is full")

    def items(self, since: datetime | None, until: datetime) -> Iterator[SourceItem | SourceIssue]:
        yield from self.items_given

    def close(self) -> None:
        self.closed.append(True)


class MemoryKind:
    name = "memory"
    takes_files = False
    windowed = True

    def __init__(self, items: list[SourceItem | SourceIssue]) -> None:
        self.items = items
        self.built: list[SourceSpec] = []
        self.sources: list[MemorySource] = []

    def check(self, settings: dict[str, Any], password: str | None, egress: EgressPolicy) -> dict[str, Any]:
        if "shelf" not in settings:
            raise Invalid("a memory source needs a shelf")
        return {**settings, "checked": True}

    def build(self, spec: SourceSpec) -> MemorySource:
        self.built.append(spec)
        source = MemorySource(self.items, fail=spec.settings.get("shelf") == "broken")
        self.sources.append(source)
        return source


def item(n: int, phone: str) -> SourceItem:
    who = Participant(phone=phone)
    return SourceItem(source="memory", source_id=f"m-{n}", chat_id="memory-chat", chat_name="Memory",
                      kind=ItemKind.CHAT, sent_at=NOW - timedelta(hours=n), sender=who, participants=(who,),
                      text=f"remembered {n}")


def test_the_builtin_kinds_are_the_two_sources_and_the_two_targets() -> None:
    kinds = builtin()
    assert kinds.source("whatsapp-export").takes_files and not kinds.source("whatsapp-export").windowed
    assert kinds.source("archiver-feed").windowed and not kinds.source("archiver-feed").takes_files
    assert kinds.target("store").name == "store" and kinds.target("imap").name == "imap"
    with pytest.raises(Invalid, match="kind must be one of whatsapp-export, archiver-feed"):
        kinds.source("telegram")
    with pytest.raises(Invalid, match="target kind must be store or imap"):
        kinds.target(None)


def test_a_kind_is_registered_once() -> None:
    kinds = builtin()
    with pytest.raises(ValueError, match="registered already"):
        kinds.add_target(store.KIND)


def test_each_kind_checks_its_own_settings_when_a_connector_is_created() -> None:
    kinds = builtin()
    egress = EgressPolicy()
    with pytest.raises(Invalid, match="unknown time zone"):
        kinds.source("whatsapp-export").check({"timezone": "Mars/Olympus"}, None, egress)
    assert kinds.source("whatsapp-export").check({"timezone": "Europe/Berlin"}, None, egress) == {
        "timezone": "Europe/Berlin"}
    with pytest.raises(Invalid, match="needs url, username and password"):
        kinds.source("archiver-feed").check({"url": "https://feed.example"}, None, egress)
    with pytest.raises(Invalid, match="needs a host"):
        kinds.target("imap").check({"kind": "imap"}, egress)
    assert kinds.target("store").check({"kind": "store"}, egress) == {"kind": "store"}


@pytest.mark.parametrize(("setting", "value"), [("security", "ssl"), ("security", "TLS"), ("auth", "kerberos"),
                                              ("login_with", "uid"), ("security", ["tls"])])
def test_an_imap_setting_outside_its_words_is_refused_when_saved_and_when_a_saved_row_is_built(
        setting: str, value: object) -> None:
    """A misspelt ``security`` used to fall through to a connection without TLS; now it names its words."""
    target = builtin().target("imap")
    settings = {"kind": "imap", "host": "imap.example", setting: value}
    with pytest.raises(Invalid, match=f"the IMAP {setting} must be "):
        target.check(settings, EgressPolicy())
    with pytest.raises(TargetError, match=f"the IMAP {setting} must be "):
        imap_settings(settings, None)


def test_imap_settings_read_the_saved_words_as_their_enums() -> None:
    saved = imap_settings({"host": "imap.example", "security": "starttls", "auth": "per-user",
                           "login_with": "local-part"}, {"passwords": {"a@example.com": "pw"}})
    assert (saved.security, saved.auth, saved.login_with) == (
        ImapSecurity.STARTTLS, ImapAuth.PER_USER, ImapLogin.LOCAL_PART)
    assert imap_settings({"host": "imap.example"}, None).security is ImapSecurity.TLS   # the default


def test_a_new_source_is_one_kind_registered_and_runs_like_the_builtin_ones(backend, tenant,  # noqa: ANN001
                                                                            people: People) -> None:
    """Mapping, conversion, delivery and the report are the same for any kind: nothing else changes."""
    memory = MemoryKind([item(1, "+49 170 1111111"), item(2, "+49 170 9999999"),
                         SourceIssue(SkipReason.UNPARSEABLE, "a torn page", location="shelf 3")])
    kinds = builtin()
    kinds.add_source(memory)
    connectors = ConnectorService(backend.db, backend.directory, backend.archive, backend.secrets, kinds=kinds)
    with pytest.raises(Invalid, match="needs a shelf"):
        connectors.create(tenant, name="Memory", kind="memory",
                          by=as_admin(backend, tenant, people.admin), accept_terms=True)
    with pytest.raises(Invalid, match="did not accept the connection: the memory is full"):
        connectors.create(tenant, name="Memory", kind="memory",
                          by=as_admin(backend, tenant, people.admin), accept_terms=True,
                          source={"shelf": "broken"})
    info = connectors.create(tenant, name="Memory", kind="memory",
                             by=as_admin(backend, tenant, people.admin), accept_terms=True,
                             source={"shelf": "top"})
    assert info.source == {"shelf": "top", "checked": True} and info.overlap_hours == 48
    assert memory.sources[-1].closed == [True]          # the wizard's test closed what it opened
    connectors.consent(tenant, info.id, as_admin(backend, tenant, people.admin))
    report = connectors.run(tenant, info.id, now=NOW)
    assert report.status == "succeeded", report.error
    assert (report.seen, report.imported, report.skipped_by_reason) == (
        3, 1, {"no_user": 1, "unparseable": 1})
    assert backend.archive.count(tenant, people.alice, WHATSAPP_FOLDER) == 1
    assert memory.built[-1].settings == {"shelf": "top", "checked": True}
    assert memory.sources[-1].closed == [True]
    with pytest.raises(Invalid, match="export files go to a whatsapp-export connector"):
        connectors.add_export(tenant, info.id, b"x", "chat.txt", people.alice)


def test_retries_back_off_from_five_minutes_to_six_hours_and_never_overflow() -> None:
    failed = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    assert [retry_at(failed, n) - failed for n in (1, 2, 3)] == [
        timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=20)]
    assert retry_at(failed, 8) - failed == timedelta(hours=6)
    assert retry_at(failed, 10_000) - failed == timedelta(hours=6)   # 2**9999 times 5 minutes would overflow


def test_the_daily_run_is_the_next_run_at_time() -> None:
    assert next_daily(datetime(2026, 11, 25, 1, 59, tzinfo=UTC), "02:00") == datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    assert next_daily(datetime(2026, 11, 25, 2, 0, tzinfo=UTC), "02:00") == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def test_a_policy_set_on_the_service_is_the_one_every_part_uses(backend) -> None:  # noqa: ANN001
    connectors = ConnectorService(backend.db, backend.directory, backend.archive, backend.secrets)
    policy = EgressPolicy()
    connectors.egress = policy
    connectors.upload_max_bytes = 1234
    assert connectors.wizard.env.egress is policy and connectors.runner.env.egress is policy
    assert connectors.files.env.egress is policy and connectors.files.max_bytes == 1234
    assert connectors.upload_dir == connectors.files.upload_dir


class FailingSource(MemorySource):
    """Gives its items, then fails: a feed that drops the connection half-way."""

    def items(self, since: datetime | None, until: datetime) -> Iterator[SourceItem | SourceIssue]:
        yield from self.items_given
        raise SourceUnavailable("the feed went away")


def memory_connector(backend, tenant: str, people: People, kind: MemoryKind) -> tuple[ConnectorService, str]:  # noqa: ANN001
    kinds = builtin()
    kinds.add_source(kind)
    connectors = ConnectorService(backend.db, backend.directory, backend.archive, backend.secrets, kinds=kinds)
    info = connectors.create(tenant, name="Memory", kind="memory", by=as_admin(backend, tenant, people.admin),
                             accept_terms=True, source={"shelf": "top"})
    connectors.consent(tenant, info.id, as_admin(backend, tenant, people.admin))
    return connectors, info.id


def test_a_source_that_fails_while_a_batch_is_delivered_fails_the_run_with_that_batch_counted(
        backend, tenant, people: People, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    # Batches of 2: two are delivered, then the source fails before a third.
    monkeypatch.setattr("tenantry.connectors.runner.BATCH", 2)
    kind = MemoryKind([item(n, "+49 170 1111111") for n in range(1, 5)])
    kind.build = lambda spec: FailingSource(kind.items)  # type: ignore[method-assign]
    connectors, connector_id = memory_connector(backend, tenant, people, kind)
    report = connectors.run(tenant, connector_id, now=NOW)
    assert report.status == "failed" and report.error == "the feed went away"
    # Everything stored is counted: nothing in the mailbox that the report does not know of.
    assert (report.seen, report.imported, report.copies) == (4, 4, 4)
    assert backend.archive.count(tenant, people.alice, WHATSAPP_FOLDER) == 4


def test_a_target_that_fails_on_a_batch_stops_the_run_before_the_batches_after_it(
        backend, tenant, people: People, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr("tenantry.connectors.runner.BATCH", 2)
    calls: list[int] = []
    deliver = store.StoreTarget.deliver

    def failing_second(self: store.StoreTarget, tenant: str, deliveries: Any) -> list[bool]:
        calls.append(len(deliveries))
        if len(calls) == 2:
            raise TargetError("the archive is full")
        return deliver(self, tenant, deliveries)

    monkeypatch.setattr(store.StoreTarget, "deliver", failing_second)
    connectors, connector_id = memory_connector(
        backend, tenant, people, MemoryKind([item(n, "+49 170 1111111") for n in range(1, 9)]))
    report = connectors.run(tenant, connector_id, now=NOW)
    assert report.status == "failed" and report.error == "the archive is full"
    assert calls == [2, 2]                       # no batch after the failed one reached the target
    assert (report.imported, report.copies) == (2, 2)
    assert backend.archive.count(tenant, people.alice, WHATSAPP_FOLDER) == 2
    # Run again once the target is well: what the first run stored is already there, the rest arrives.
    monkeypatch.setattr(store.StoreTarget, "deliver", deliver)
    again = connectors.run(tenant, connector_id, now=NOW)
    assert again.status == "succeeded" and backend.archive.count(tenant, people.alice, WHATSAPP_FOLDER) == 8
