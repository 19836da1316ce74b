"""kill -9 in the middle of an import, then run again: the mailboxes hold exactly the expected items, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tenantry.archive.models import Item, Mailbox
from tenantry.connectors.models import Connector, Run, RunStatus
from tenantry.connectors.runner import HEARTBEAT_LEASE
from tenantry.core.clock import as_utc, utcnow
from tenantry.jobs import InlineJobs, Scheduler
from tests.conftest import as_admin, grant_import_role, user_payload
from tests.connectors.conftest import NOW, FeedServer, feed_item
from tests.connectors.conftest import people as people  # noqa: F401,PLC0414  (fixture)

ITEMS = 3000


def test_kill_9_mid_run_then_rerun_leaves_exactly_the_expected_items(backend, tenant, people) -> None:  # noqa: F811
    items = [feed_item(n, when=NOW - timedelta(hours=2, seconds=n)) for n in range(ITEMS)]
    with FeedServer(items, {}, page_delay=0.4) as feed:
        info = backend.connectors.create(tenant, name="crashy", kind="archiver-feed",
                                         by=as_admin(backend, tenant, people.admin), accept_terms=True,
            source={"url": feed.url, "username": feed.username}, source_password=feed.password)
        backend.connectors.consent(tenant, info.id, as_admin(backend, tenant, people.admin))
        env = {**os.environ, "TENANTRY_DATA_DIR": str(backend.settings.data_dir),
               "TENANTRY_DATABASE_URL": backend.settings.resolved_database_url}
        proc = subprocess.Popen([sys.executable, "-m", "tenantry", "connector", "run", "crashy", "--tenant", tenant],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stored() -> int:
            with backend.db.session() as session:
                return session.scalar(select(func.count()).select_from(Item).where(Item.tenant_id == tenant)) or 0

        deadline = time.monotonic() + 60
        while stored() == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        at_kill = stored()
        # Two copies per item (Alice and Bob): the kill came after some batches and before the end.
        assert 0 < at_kill < 2 * ITEMS, at_kill

        # Its heartbeat is fresh: to another process it looks like a live run, and is left alone until the lease
        # lapses (the scheduler's next tick after that recovers it).
        assert backend.connectors.recover_interrupted() == 0
        assert backend.connectors.recover_interrupted(now=utcnow() + HEARTBEAT_LEASE + timedelta(seconds=1)) >= 1
        with backend.db.session() as session:
            statuses = session.scalars(select(Run.status).where(Run.connector_id == info.id)).all()
        assert statuses == ["failed"]
        report = backend.connectors.run(tenant, info.id, now=NOW)

    assert report.status == "succeeded", report.error
    assert report.seen == ITEMS and report.imported == ITEMS
    assert report.duplicates == at_kill and report.copies == 2 * ITEMS - at_kill
    with backend.db.session() as session:
        rows = session.execute(select(Mailbox.user_id, Item.message_id).join(Mailbox, Mailbox.id == Item.mailbox_id)
                               .where(Item.tenant_id == tenant)).all()
    per_user: dict[str, set[str]] = {}
    for user_id, message_id in rows:
        per_user.setdefault(user_id, set()).add(message_id)
    assert len(rows) == 2 * ITEMS  # no duplicates …
    assert set(per_user) == {people.alice, people.bob}
    assert per_user[people.alice] == per_user[people.bob] and len(per_user[people.alice]) == ITEMS  # … none lost


def _export_connector(backend, tenant: str) -> str:  # type: ignore[no-untyped-def]
    admin = backend.scim.create(tenant, "User", user_payload())["id"]
    grant_import_role(backend, tenant, admin)
    return str(backend.connectors.create(tenant, name="Exports", kind="whatsapp-export",
                                         by=as_admin(backend, tenant, admin), accept_terms=True,
                                         source={"timezone": "UTC"}, test_source=False).id)


def _running(backend, tenant: str, connector: str, heartbeat_ago: timedelta | None,  # type: ignore[no-untyped-def]
             started_ago: timedelta = timedelta(hours=1)) -> str:
    now = utcnow()
    run_id = f"run-{time.monotonic_ns()}"
    with backend.db.session() as session:
        session.add(Run(id=run_id, connector_id=connector, tenant_id=tenant, trigger="manual",
                        status=RunStatus.RUNNING, started_at=now - started_ago,
                        heartbeat_at=None if heartbeat_ago is None else now - heartbeat_ago))
    return run_id


def _status(backend, run_id: str) -> str:  # type: ignore[no-untyped-def]
    with backend.db.session() as session:
        return str(session.scalar(select(Run.status).where(Run.id == run_id)))


def test_a_run_whose_process_still_beats_is_not_recovered_by_another_process(backend, tenant) -> None:
    """A second server or a Celery worker starting must not fail a run another live process is doing."""
    connector = _export_connector(backend, tenant)
    live = _running(backend, tenant, connector, heartbeat_ago=timedelta(seconds=5))
    assert backend.connectors.recover_interrupted() == 0
    assert _status(backend, live) == "running"


def test_the_scheduler_recovers_a_run_whose_heartbeat_lapsed_and_makes_its_connector_due(backend, tenant) -> None:
    connector = _export_connector(backend, tenant)
    lapsed = _running(backend, tenant, connector, heartbeat_ago=HEARTBEAT_LEASE + timedelta(seconds=30))
    old_style = _running(backend, tenant, connector, heartbeat_ago=None)   # written before heartbeats existed
    live = _running(backend, tenant, connector, heartbeat_ago=timedelta(seconds=1))
    with backend.db.session() as session:
        session.execute(Connector.__table__.update().where(Connector.id == connector).values(status="enabled"))
    Scheduler(backend, InlineJobs(backend), interval=3600).tick(now=NOW)
    assert (_status(backend, lapsed), _status(backend, old_style), _status(backend, live)) == \
        ("failed", "failed", "running")
    with backend.db.session() as session:
        due = session.scalar(select(Connector.next_run_at).where(Connector.id == connector))
        # Back to a draft: an enabled connector without consent would be handed out by later tests' ticks.
        session.execute(Connector.__table__.update().where(Connector.id == connector).values(status="draft"))
    assert due is not None


def test_a_working_run_writes_its_heartbeat_and_stops_when_it_ends(backend, tenant, monkeypatch) -> None:
    from tenantry.connectors import runner

    monkeypatch.setattr(runner, "HEARTBEAT", timedelta(seconds=0.05))
    connector = _export_connector(backend, tenant)
    run_id = _running(backend, tenant, connector, heartbeat_ago=timedelta(minutes=1))
    stop = backend.connectors.runner._heartbeat(run_id)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with backend.db.session() as session:
                beat = session.scalar(select(Run.heartbeat_at).where(Run.id == run_id))
            if beat is not None and utcnow() - as_utc(beat) < timedelta(seconds=10):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the heartbeat was not written")
    finally:
        stop()
    assert backend.connectors.recover_interrupted() == 0


def test_a_connector_runs_once_at_a_time_and_a_crashed_run_does_not_hold_it(backend, tenant) -> None:
    """A second start while a run is alive (a double-clicked "Run now", a manual run beside a scheduled one) is
    refused with 409 and writes no run; a run whose heartbeat lapsed (its process is gone) does not hold it."""
    from tenantry.core.errors import Conflict

    admin = backend.scim.create(tenant, "User", user_payload())["id"]
    grant_import_role(backend, tenant, admin)
    backend.directory.add_role_group_member(tenant, "Organization Management", admin)   # for the consent
    by = as_admin(backend, tenant, admin)
    connector = backend.connectors.create(tenant, name="Once", kind="whatsapp-export", by=by, accept_terms=True,
                                          source={"timezone": "UTC"}, test_source=False).id
    backend.connectors.consent(tenant, connector, by)
    live = _running(backend, tenant, connector, heartbeat_ago=timedelta(seconds=3))
    with pytest.raises(Conflict, match="in progress") as refused:
        backend.connectors.run(tenant, connector)
    assert refused.value.status_code == 409
    with backend.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Run).where(Run.connector_id == connector)) == 1
        # The live run's process dies: once its heartbeat is older than the lease, a new run may start.
        session.execute(Run.__table__.update().where(Run.id == live).values(
            heartbeat_at=utcnow() - HEARTBEAT_LEASE - timedelta(seconds=1)))
    assert backend.connectors.run(tenant, connector).status == "succeeded"
