"""Jobs: in-process by default; on a Celery worker over the local Redis when a broker is configured."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tenantry.core.settings import Settings
from tenantry.jobs import CeleryJobs, InlineJobs, Scheduler
from tenantry.protocols.query.ast import MatchAll
from tests.conftest import as_admin, periodic_work_due, stop_worker
from tests.connectors.conftest import NOW, FeedServer, feed_item

REDIS = os.environ.get("TENANTRY_TEST_REDIS", "redis://127.0.0.1:6379/15")


def redis_reachable() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        return f"Redis not reachable at {REDIS}: {exc}"
    return None


def enabled_feed_connector(backend, tenant, people, feed) -> str:  # noqa: ANN001
    info = backend.connectors.create(tenant, name="TM", kind="archiver-feed",
                                     by=as_admin(backend, tenant, people.admin),
                                     accept_terms=True, source={"url": feed.url, "username": feed.username},
                                     source_password=feed.password)
    backend.connectors.consent(tenant, info.id, as_admin(backend, tenant, people.admin))
    backend.connectors.enable(tenant, info.id)
    return str(info.id)


def test_scheduler_submits_each_due_run_once(backend, tenant, people) -> None:
    with FeedServer([feed_item(1, when=NOW)], {}) as feed:
        cid = enabled_feed_connector(backend, tenant, people, feed)
        from sqlalchemy import update

        from tenantry.connectors.models import Connector

        with backend.db.session() as session:
            session.execute(update(Connector).where(Connector.id == cid).values(next_run_at=NOW))
        jobs = InlineJobs(backend)
        scheduler = Scheduler(backend, jobs, interval=1)
        first = scheduler.tick()
        second = scheduler.tick()
    mine = [j for j in first if jobs.results[j].get("connector_id") == cid]
    assert len(mine) == 1 and jobs.results[mine[0]]["status"] == "succeeded"
    assert not [j for j in second if jobs.results[j].get("connector_id") == cid]
    assert backend.archive.count(tenant, people.alice) == 1


def test_connector_run_on_a_celery_worker_over_redis(backend, tenant, people, tmp_path) -> None:
    why = redis_reachable()
    if why:
        pytest.skip(why)
    queue = f"tenantry-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TENANTRY_DATA_DIR": str(backend.settings.data_dir),
           "TENANTRY_DATABASE_URL": backend.settings.resolved_database_url,
           "TENANTRY_BROKER_URL": REDIS, "TENANTRY_BROKER_QUEUE": queue}
    worker = subprocess.Popen([sys.executable, "-m", "tenantry", "worker"], env=env, stdin=subprocess.DEVNULL,
                              stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        with FeedServer([feed_item(1, when=NOW), feed_item(2, when=NOW)], {}) as feed:
            cid = enabled_feed_connector(backend, tenant, people, feed)
            jobs = CeleryJobs(Settings(data_dir=backend.settings.data_dir, broker_url=REDIS, broker_queue=queue))
            job_id = jobs.submit("connector.run", tenant=tenant, connector_id=cid, trigger="manual")
            result = jobs.app.AsyncResult(job_id).get(timeout=60)
    finally:
        stop_worker(worker)
    assert result["status"] == "succeeded" and result["imported"] == 2, (tmp_path / "worker.log").read_text()
    assert backend.archive.count(tenant, people.alice) == 2
    assert backend.archive.count(tenant, people.bob) == 2
    # The worker indexed them (this process did not) and committed before its result came: this process's next
    # search sees them, without waiting for tantivy's reload timer.
    assert backend.index.count(tenant, MatchAll()) == 4


def test_scheduler_applies_retention_once_a_day(backend, tenant) -> None:
    from datetime import UTC, datetime, timedelta

    from tenantry.archive.service import WHATSAPP_FOLDER, Delivery

    old = datetime.now(UTC) - timedelta(days=100)
    raw = b"Message-ID: <r@t>\r\n\r\nx\r\n"
    backend.archive.deliver(tenant, [Delivery("u1", "u1@contoso.com", WHATSAPP_FOLDER, raw, "r@t", "chat", "test",
                                              old)])
    backend.compliance.create_policy(tenant, name="30 days", actor="a", delete_after_days=30)
    periodic_work_due(backend)
    jobs = InlineJobs(backend)
    scheduler = Scheduler(backend, jobs, interval=1)
    first = [jobs.results[j] for j in scheduler.tick() if j.startswith(f"retention-{tenant}-")]
    second = [j for j in scheduler.tick() if j.startswith(f"retention-{tenant}-")]
    assert len(first) == 1 and first[0]["deleted"] == 1 and not second
    assert backend.archive.count(tenant, "u1") == 0


def test_a_due_run_that_fails_does_not_keep_the_rest_of_the_tick_from_running(backend, tenant, caplog) -> None:
    """One tick's work is claimed before it is submitted: an enabled connector whose run cannot start (here: no
    admin consent) is logged with what it was, and the day's retention in the same tick still runs."""
    import logging

    from sqlalchemy import update

    from tenantry.connectors.models import Connector
    from tests.conftest import grant_import_role, user_payload

    admin = backend.scim.create(tenant, "User", user_payload())["id"]
    grant_import_role(backend, tenant, admin)
    broken = backend.connectors.create(tenant, name="No consent", kind="whatsapp-export",
                                       by=as_admin(backend, tenant, admin), accept_terms=True,
                                       source={"timezone": "UTC"}, test_source=False).id
    with backend.db.session() as session:   # enabled and due without consent: what the tick must survive
        session.execute(update(Connector).where(Connector.id == broken).values(status="enabled", next_run_at=NOW))
    try:
        periodic_work_due(backend)
        jobs = InlineJobs(backend)
        with caplog.at_level(logging.ERROR, logger="tenantry.jobs"):
            submitted = Scheduler(backend, jobs, interval=3600).tick()
        assert any(j.startswith(f"retention-{tenant}-") for j in submitted)
        assert any("connector.run" in r.getMessage() and broken in r.getMessage() for r in caplog.records)
    finally:
        with backend.db.session() as session:   # not due again in later tests of this database
            session.execute(update(Connector).where(Connector.id == broken).values(status="draft"))


def test_a_run_says_it_ended_only_once_its_items_are_searchable_from_another_index_reader(
        backend, tenant, people, monkeypatch) -> None:  # noqa: ANN001
    """Another process (the server, while a Celery worker runs the connector) reads the index with its own reader
    and does not flush this process's indexer: a run's status must not come before its items' commit."""
    if backend.settings.search_backend == "postgres":
        pytest.skip("the PostgreSQL search index commits with each delivery")
    import time

    from tenantry.archive.search_tantivy import TantivySearchIndex

    index = backend.archive.indexer.index
    commit = index.commit

    def slow_commit() -> None:      # a loaded machine: the background commit lags the run's last transaction
        time.sleep(0.5)
        commit()

    monkeypatch.setattr(index, "commit", slow_commit)
    with FeedServer([feed_item(1, when=NOW), feed_item(2, when=NOW), feed_item(3, when=NOW)], {}) as feed:
        cid = enabled_feed_connector(backend, tenant, people, feed)
        report = backend.connectors.run(tenant, cid)
    assert report.status == "succeeded" and report.imported == 3
    other = TantivySearchIndex(backend.settings.data_dir / "index")     # a reader of its own, no writer
    assert other.count(tenant, MatchAll()) == 6      # 3 messages, each in alice's and bob's mailbox
