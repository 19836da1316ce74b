"""kill -9 in the middle of an import, then run again: the mailboxes hold exactly the expected items, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import func, select

from tenantry.archive.models import Item, Mailbox
from tenantry.connectors.models import Run
from tests.conftest import as_admin
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

        assert backend.connectors.recover_interrupted() >= 1
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
