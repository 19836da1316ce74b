"""The embedded tantivy index written by several processes (a server and ``tenantry worker``s sharing the data
folder): writers take turns on its one writer lock and lose nothing, a writer kept waiting too long says so, and
a search sees every commit any process made before it (docs/search.md, "Several processes")."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenantry.archive import indexing
from tenantry.archive.indexing import Indexer, IndexFields, document
from tenantry.archive.search import IndexDocument, SearchIndexUnavailable
from tenantry.archive.search_tantivy import TantivySearchIndex
from tenantry.protocols.query.ast import MatchAll

SENT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TENANT = "t"

# One process's deliveries: batches of documents handed to a background Indexer, as a delivering process does.
WRITER = """
import sys
from datetime import UTC, datetime
from tenantry.archive.indexing import IndexFields, Indexer, document
from tenantry.archive.search_tantivy import TantivySearchIndex
path, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
indexer = Indexer(None, TantivySearchIndex(path))
for start in range(first, first + count, 100):
    indexer.add([document(i, "t", f"u{i % 7}", "WhatsApp Archiver", "chat", "test",
                          datetime(2026, 1, 5, tzinfo=UTC), 100, IndexFields(body=f"word{i} shared"))
                 for i in range(start, start + 100)])
indexer.flush()
indexer.index.close()
"""


def doc(item_id: int) -> IndexDocument:
    return document(item_id, TENANT, "u1", "WhatsApp Archiver", "chat", "test", SENT, 100,
                    IndexFields(body=f"word{item_id}"))


def test_two_processes_indexing_into_one_index_take_turns_and_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "index"
    TantivySearchIndex(path).close()   # created once, as the first start does
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(first), "2000"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for first in (1, 2001)]
    for writer in writers:
        out, _ = writer.communicate(timeout=240)
        assert writer.returncode == 0, out.decode(errors="replace")
    index = TantivySearchIndex(path)
    assert index.count(TENANT, MatchAll()) == 4000
    assert index.item_ids(TENANT, MatchAll()) == set(range(1, 4001))


def test_a_search_sees_a_commit_another_process_made_before_it(tmp_path: Path) -> None:
    reader, writer = TantivySearchIndex(tmp_path / "index"), TantivySearchIndex(tmp_path / "index")
    assert reader.count(TENANT, MatchAll()) == 0
    writer.add([doc(1), doc(2)])
    writer.commit()
    # No wait: the reader notices meta.json changed and reloads before searching.
    assert reader.count(TENANT, MatchAll()) == 2
    writer.delete([1])
    writer.commit()
    writer.close()
    assert reader.item_ids(TENANT, MatchAll()) == {2}


def test_a_writer_kept_from_the_lock_too_long_says_so_and_writes_once_it_is_free(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    holder = TantivySearchIndex(tmp_path / "index")
    holder.add([doc(1)])    # takes the writer lock and keeps it (another process delivering)
    monkeypatch.setattr(indexing, "WRITER_WAIT_SECONDS", 0.0)
    waiting = Indexer(None, TantivySearchIndex(tmp_path / "index"), background=False)  # type: ignore[arg-type]
    with pytest.raises(SearchIndexUnavailable, match="cannot be written"):
        waiting.add([doc(2)])
    holder.commit()
    holder.close()
    waiting.add([doc(2)])
    assert TantivySearchIndex(tmp_path / "index").item_ids(TENANT, MatchAll()) == {1, 2}
