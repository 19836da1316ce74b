"""What each index of the archive's ``items`` table costs a delivery, on SQLite, in CPU.

    .venv/bin/python bench/item_rows_bench.py [--items 30000] [--repeat 2] [--json]

Writes the rows an import of ``--items`` messages writes (4–6 mailbox copies each, 61 mailboxes, the shapes of
``bench/import_bench.py``: a 40-character Message-ID, a SHA-256, a chat id, a time) into a new SQLite file made from
the models' own table (``Item.__table__``), with the statement a delivery sends (``INSERT … VALUES (…) × 1000 ON
CONFLICT DO NOTHING RETURNING …``, a transaction per 9,000 rows; the file in /dev/shm where there is one), and
times it with ``time.process_time`` (SQLite's
C and the driver; the rows are built before). Once with every index of the table, once with each secondary index
left out, and once with only the unique (mailbox, Message-ID) one — the anchor: what the rows cost with no index
a feature reads. Prints µs an item for each, and each index's share (issue #16, goal 2: what bounds the import).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from tenantry.archive.models import Item

COLUMNS = ("tenant_id", "mailbox_id", "folder_id", "message_id", "sha256", "size", "kind", "source", "chat_id",
           "sent_at", "subject", "sender", "delivered_at")
ROWS_PER_STATEMENT = 1000
ROWS_PER_TRANSACTION = 9000


def schema(without: set[str]) -> list[str]:
    """The table's DDL as SQLAlchemy writes it for SQLite, without the named indexes."""
    dialect = sa.create_engine("sqlite://").dialect
    table = Item.__table__
    ddl = [str(CreateTable(table).compile(dialect=dialect))]   # the unique (mailbox, Message-ID) is in the table
    ddl += [str(CreateIndex(index).compile(dialect=dialect)) for index in sorted(table.indexes, key=lambda i: i.name)
            if index.name not in without]
    return ddl


def make_rows(items: int, rng: random.Random) -> list[tuple[Any, ...]]:
    mailboxes = [str(uuid.uuid4()) for _ in range(61)]
    folders = {m: str(uuid.uuid4()) for m in mailboxes}
    rows = []
    for i in range(items):
        message_id = f"{hashlib.sha256(str(i).encode()).hexdigest()[:40]}@whatsapp.tenantry"
        digest = hashlib.sha256(b"x" + str(i).encode()).hexdigest()
        sent = f"2026-01-{5 + i // 1000 % 25:02d} 08:{i % 60:02d}:{i % 59:02d}.000000"
        chat = f"wa-{hashlib.md5(str(i // 1000).encode()).hexdigest()}"
        for mailbox in rng.sample(mailboxes, rng.randint(4, 6)):
            rows.append(("bench", mailbox, folders[mailbox], message_id, digest, 900, "chat", "whatsapp-export", chat,
                         sent, "WhatsApp message in WhatsApp Chat 1", "user1@contoso.com",
                         "2026-12-01 00:00:00.000000"))
    return rows


def timed(rows: list[tuple[Any, ...]], ddl: list[str], folder: Path) -> float:
    """CPU seconds to write ``rows`` into a new database with ``ddl``."""
    path = folder / f"{uuid.uuid4().hex}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")   # as core.db sets them
    conn.execute("PRAGMA wal_autocheckpoint=10000")
    for statement in ddl:
        conn.execute(statement)
    marks = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    head = f"INSERT INTO items ({', '.join(COLUMNS)}) VALUES "
    tail = " ON CONFLICT (mailbox_id, message_id) DO NOTHING RETURNING id, mailbox_id, message_id, sha256"
    started = time.process_time()
    for start in range(0, len(rows), ROWS_PER_TRANSACTION):
        conn.execute("BEGIN IMMEDIATE")
        batch = rows[start:start + ROWS_PER_TRANSACTION]
        for n in range(0, len(batch), ROWS_PER_STATEMENT):
            chunk = batch[n:n + ROWS_PER_STATEMENT]
            conn.execute(head + ", ".join([marks] * len(chunk)) + tail,
                         [value for row in chunk for value in row]).fetchall()
        conn.execute("COMMIT")
    spent = time.process_time() - started
    conn.close()
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each variant; the best is kept")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = make_rows(args.items, random.Random(42))
    secondary = sorted(i.name for i in Item.__table__.indexes if i.name)
    variants = {"every index": set(), **{f"without {name}": {name} for name in secondary},
                "unique (mailbox, Message-ID) only (anchor)": set(secondary)}
    best: dict[str, float] = {}
    # In memory where the machine has /dev/shm: the disk's write-back (most of the system time, and most of the
    # spread from one run to the next on this machine) is not what is measured.
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        for _ in range(args.repeat):
            for label, without in variants.items():   # alternated, so a slow moment falls on every variant
                spent = timed(rows, schema(without), Path(tmp))
                best[label] = min(best.get(label, spent), spent)
    us = {label: best[label] / args.items * 1e6 for label in variants}
    full, anchor = us["every index"], us["unique (mailbox, Message-ID) only (anchor)"]
    result = {"items": args.items, "rows": len(rows), "us_per_item": {k: round(v, 1) for k, v in us.items()},
              "index_cost_us": {name: round(full - us[f"without {name}"], 1) for name in secondary},
              "every_index_vs_anchor": round(full / anchor, 2)}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.items} items, {len(rows)} rows (SQLite {sqlite3.sqlite_version}), best of {args.repeat}:")
    for label, value in us.items():
        print(f"  {label:<44} {value:7.1f} µs an item")
    for name in secondary:
        print(f"  {name:<44} {full - us[f'without {name}']:7.1f} µs an item of the total")
    print(f"every index ÷ anchor: {full / anchor:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
