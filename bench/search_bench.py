"""Search benchmark: the tantivy index against plain SQLite FTS5 and our PostgreSQL backend on 1M generated items.

    .venv/bin/python bench/search_bench.py [--items 1000000] [--runs 30] [--keep DIR] [--json]
        [--engines tantivy,fts5,postgres] [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Generates chat-like items as the WhatsApp connectors deliver them — one item per participant's mailbox, 500
mailboxes, chats of 2–6 participants with names, addresses and numbers, multilingual text (English, German,
Spanish, Korean, Japanese, emoji) from a Zipf-distributed vocabulary with a long tail, planted rare words,
phrases and word pairs, dates over two years, calls, attachments, deleted messages and events — in batches of
2,000 (one delivery batch). Each batch goes into ``TantivySearchIndex`` (add + commit, so searchable at once),
then, from the same seed, into an FTS5 table (contentless, ``unicode61``, one transaction per batch). Then the
fixed query set runs ``--runs`` times on each: the search screen's work, the total and the first 20 (by
relevance, bm25 for FTS5, unless "newest"). Prints items/s, commit latency, p50/p95 per query, the ratio and
both totals (they must agree); the goals are ≥ 20,000 items/s and p95 < 50 ms for every query.

``postgres`` is ``PostgresSearchIndex`` (``search_postgres.py``, the code the server runs with a PostgreSQL
database) on a fresh database created beside the one ``--database-url`` names and dropped at the end: each batch
through ``add`` (its own transaction), then ``VACUUM ANALYZE`` of its table and narrow table (what autovacuum
does to insert-only tables), then the same queries through ``search``. A database kept from an earlier run
(``--keep-database``) is first brought to this code's schema, as a server's first search would, and timed. Its
goal (issue #16) is p95 < 100 ms for every query. The engines run in the order given; the first is the anchor the
others' p95 is divided by.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, make_url, text

from tenantry.archive.search import IndexDocument, Order, participant_text
from tenantry.archive.search_postgres import PostgresSearchIndex
from tenantry.archive.search_tantivy import TantivySearchIndex, micros
from tenantry.protocols.query.ast import And, Near, Node, Phrase, Range, Term

BATCH = 2_000
TENANT = "contoso"
OTHER_TENANT = "fabrikam"          # a small second tenant, so every query really filters by tenant
START = datetime(2024, 12, 1, tzinfo=UTC)
SPAN_SECONDS = 730 * 86_400


def _words(text: str) -> list[str]:
    return text.split()


EN = _words("""ok the to and you i it is that of for in on we have be this will can me my your are do not with at
    so just know what get about if send call but there tomorrow today meeting thanks yes no great see later morning
    week monday friday office team project budget deadline update sorry need time good please check client price
    deal numbers report quarterly contract signed invoice invoices invoiced invoicing draft review lunch flight hotel
    car train late early done""")
DE = _words("""ich du und der die das ist nicht ein eine zu wir sie es mit auf für hallo danke bitte ja nein morgen
    heute treffen bericht vertrag unterschrieben rechnung kunde preis zahlen büro woche montag freitag später gut
    schön grüße müller straße über größe können würde termin angebot""")
ES = _words("""el la de que y en a los se no un por con para es lo una su al del las mañana hoy reunión informe
    contrato firmado factura cliente precio gracias sí bueno oficina semana lunes viernes después""")
KO = _words("""안녕하세요 감사합니다 회의 내일 오늘 보고서 계약 서명 고객 가격 네 아니요 사무실 주간
    월요일 금요일 나중에 좋아요 회의는 확인 부탁드립니다""")
JA = _words("""こんにちは ありがとう 会議 明日 今日 報告書 契約 署名 顧客 価格 はい いいえ 事務所
    月曜日 金曜日 後で 確認 お願いします""")
EMOJI = _words("😀 😂 👍 🙏 🎉 ❤️ 🔥 💰 📄 ✅ 😅 🤝")
FIRST = _words("""Anna Lukas Mia Jonas Emma Noah Sofia Elias Lea Paul Olivia Liam Lucia Mateo Carmen Pablo Yuki
    Haruto Sakura Minjun Jiwoo Seoyeon Jürgen Björn Zoë Chloé""")
LAST = _words("""Schmidt Müller Schneider Fischer Weber Meyer Smith Johnson Brown Garcia Martinez Lopez Tanaka Suzuki
    Kim Lee Park Choi Nguyen Rossi Dubois Novak""")
GROUPS = ("Finance team", "Projekt Nord", "Sales EMEA", "Equipo Madrid", "Trading desk", "서울 팀", "東京オフィス",
          "Board", "IT support", "Legal", "Einkauf", "Familie")
# Mobile number prefixes and how many digits follow (Germany, US, Korea, Spain, UK).
NUMBERS = (("+49170", 7), ("+49151", 8), ("+1415555", 4), ("+8210", 8), ("+34612", 6), ("+447700", 6))
LANGS = ((EN, " ", 0.55), (DE, " ", 0.2), (ES, " ", 0.12), (KO, " ", 0.07), (JA, "", 0.06))


@dataclass(frozen=True)
class Person:
    name: str
    address: str
    number: str
    user_id: str | None          # a mailbox owner, or an outside contact


@dataclass(frozen=True)
class Chat:
    index: int
    chat_id: str
    name: str
    members: tuple[Person, ...]
    lang: int
    participants: str            # the index text for all members, computed once per chat


def _tail(rng: random.Random, lang: int, n: int) -> list[str]:
    """The long tail of a language's vocabulary: made-up but plausible words."""
    if lang == 3:
        return ["".join(chr(0xAC00 + rng.randrange(11172)) for _ in range(rng.randint(2, 3))) for _ in range(n)]
    if lang == 4:
        return ["".join(chr(rng.choice([0x3041 + rng.randrange(83), 0x30A1 + rng.randrange(86),
                                        0x4E00 + rng.randrange(3000)])) for _ in range(rng.randint(2, 3)))
                for _ in range(n)]
    onsets = ["b", "k", "d", "f", "g", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sch", "st", "br", "tr"]
    vowels = ["a", "e", "i", "o", "u"] + (["ä", "ö", "ü", "ei"] if lang == 1 else ["á", "é"] if lang == 2 else [])
    return ["".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(2, 4))) +
            rng.choice(["", "n", "r", "s", "t"]) for _ in range(n)]


class Corpus:
    """A deterministic stream of items: the same seed gives the same items, batch by batch."""

    def __init__(self, items: int, seed: int = 7) -> None:
        self.items = items
        rng = random.Random(seed)
        self.vocab: list[tuple[list[str], list[float], str]] = []
        for lang, (base, sep, _) in enumerate(LANGS):
            words = list(base) + _tail(rng, lang, 30_000)
            weights = list(itertools.accumulate(1 / (rank + 2) ** 1.07 for rank in range(len(words))))
            self.vocab.append((words, weights, sep))
        self.lang_weights = list(itertools.accumulate(w for _, _, w in LANGS))
        self.users = [self._person(rng, i, True) for i in range(500)]
        self.outside = [self._person(rng, i, False) for i in range(500, 3_500)]
        self.chats = [self._chat(rng, i) for i in range(8_000)]
        self.chat_weights = list(itertools.accumulate(1 / (r + 10) for r in range(len(self.chats))))
        self.seed = seed

    @staticmethod
    def _person(rng: random.Random, i: int, internal: bool) -> Person:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        prefix, width = rng.choice(NUMBERS)
        domain = "contoso.com" if internal else rng.choice(["gmail.com", "fabrikam.com", "outlook.de", ""])
        local = f"{first}.{last}".lower().encode("ascii", "ignore").decode()
        return Person(f"{first} {last}", f"{local}{i}@{domain}" if domain else "", f"{prefix}{i:0{width}d}",
                      f"user-{i:04d}-4b1e-9c2d" if internal else None)

    def _chat(self, rng: random.Random, i: int) -> Chat:
        size = rng.choice([2, 2, 2, 3, 3, 4, 5, 6])
        inside = rng.sample(self.users, rng.randint(1, min(3, size)))
        members = tuple(inside + rng.sample(self.outside, size - len(inside)))
        name = rng.choice(GROUPS) if size > 2 else members[1].name
        lang = rng.choices(range(len(LANGS)), cum_weights=self.lang_weights)[0]
        text = " ".join(participant_text(p.name, p.address, p.number) for p in members)
        return Chat(i, f"chat-{i:05d}", name, members, lang, text)

    def batches(self) -> Iterator[list[IndexDocument]]:
        rng = random.Random(self.seed * 1_000_003)
        batch: list[IndexDocument] = []
        item_id = 0
        message = 0
        while item_id < self.items:
            message += 1
            chat = rng.choices(self.chats, cum_weights=self.chat_weights)[0]
            sender = rng.choice(chat.members)
            sent = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
            words, weights, sep = self.vocab[chat.lang]
            body = sep.join(rng.choices(words, cum_weights=weights, k=rng.randint(3, 20)))
            if message % 20_011 == 0:
                body += " projektkoala"                          # rare: ~17 messages in a million items
            if message % 211 == 0:
                body += " the quarterly report is attached"
            if rng.random() < 0.1:
                body += " " + rng.choice(EMOJI)
            roll = rng.random()
            kind, size, attachment, subject = "chat", rng.randint(900, 4_000), "", f"WhatsApp message in {chat.name}"
            if roll < 0.05:
                kind, body = "call", f"Voice call, outgoing\nDuration: {rng.randint(0, 59)} min"
                subject = f"Voice call with {sender.name}"
            elif roll < 0.11:
                kind, size = "attachment", rng.randint(20_000, 5_000_000)
                day = f"2025{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
                attachment = rng.choice([f"IMG-{day}-WA{message:06d}.jpg",
                                         f"Rechnung_{message}.pdf", f"invoice-{message}.pdf", "Vertrag final.docx",
                                         f"PTT-{message}.opus"])
                subject = f"WhatsApp attachment in {chat.name}"
            elif roll < 0.13:
                kind = "deleted"
                body = f"This message was deleted by its sender.\nOriginal text, as captured before deletion:\n\n{body}"
                subject = f"WhatsApp message deleted in {chat.name}"
            elif roll < 0.15:
                kind, body = "system", f"{sender.name} added {rng.choice(chat.members).name}"
                subject = f"WhatsApp event in {chat.name}"
            others = [p for p in chat.members if p is not sender]
            sender_text = f"{sender.name} {sender.address} {sender.number}"
            to_text = " ".join(f"{p.name} {p.address}" for p in others)
            tenant = OTHER_TENANT if chat.index % 50 == 49 else TENANT
            for owner in chat.members:
                if owner.user_id is None:
                    continue
                item_id += 1
                batch.append(IndexDocument(
                    item_id=item_id, tenant=tenant, user_id=owner.user_id, folder="WhatsApp Archiver",
                    kind=kind, source="whatsapp-export", sent_at=sent, size=size, has_attachment=bool(attachment),
                    sender=sender_text, to=to_text, cc="", participants=chat.participants, subject=subject,
                    body=body, attachment_names=attachment, chat=f"{chat.chat_id} {chat.name}"))
                if len(batch) == BATCH:
                    yield batch
                    batch = []
                if item_id >= self.items:
                    break
        if batch:
            yield batch


# -- the query set --------------------------------------------------------------------------------

DEFAULT_COLUMNS = "{subject body participants attachmentnames chat}"


@dataclass(frozen=True)
class Case:
    name: str
    node: Node
    fts: str                          # the FTS5 MATCH expression
    where: str = ""                   # extra SQL on the items table
    params: tuple[Any, ...] = ()
    order: str = "relevance"


def query_set(corpus: Corpus) -> list[Case]:
    person = corpus.users[7]
    digits = person.number.lstrip("+")
    month = (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))
    return [
        Case("rare word", Term("projektkoala"), f"{DEFAULT_COLUMNS} : projektkoala"),
        Case("2-word AND", And((Term("meeting"), Term("tomorrow"))), f"{DEFAULT_COLUMNS} : (meeting AND tomorrow)"),
        Case("phrase", Phrase("quarterly report"), f'{DEFAULT_COLUMNS} : "quarterly report"'),
        Case("participant + month", And((Term(person.number, field="participants"), Range("sent", *month))),
             f'participants : "{digits}"', "AND i.sent_at >= ? AND i.sent_at < ?",
             (micros(month[0]), micros(month[1]))),
        Case("common word top-20", Term("ok"), f"{DEFAULT_COLUMNS} : ok"),
        Case("common word newest-20", Term("ok"), f"{DEFAULT_COLUMNS} : ok", order="newest"),
        Case("NEAR(5)", Near(Term("contract"), Term("signed"), 5), f"{DEFAULT_COLUMNS} : NEAR(contract signed, 5)"),
        Case("prefix invoi*", Term("invoi", prefix=True), f"{DEFAULT_COLUMNS} : invoi*"),
    ]


# -- the two engines ------------------------------------------------------------------------------


def by_message(batch: list[IndexDocument]) -> list[IndexDocument]:
    """A message's copies (neighbours in a batch, sharing their text objects) as one document with ``copies``,
    as a delivery hands them to the index since issue #16; the FTS5 anchor keeps a row per copy."""
    out: list[IndexDocument] = []
    last: tuple[Any, ...] | None = None
    for doc in batch:
        key = (id(doc.body), id(doc.sender), doc.sent_at, doc.kind, doc.tenant)
        if key == last:
            out[-1] = replace(out[-1], copies=(*out[-1].copies, (doc.item_id, doc.user_id)))
        else:
            out.append(doc)
            last = key
    return out


def build_tantivy(corpus: Corpus, path: Path, threads: int) -> tuple[TantivySearchIndex, dict[str, float]]:
    index = TantivySearchIndex(path, writer_threads=threads)
    spent, commits, items = 0.0, [], 0
    wall = time.perf_counter()
    cpu = time.process_time()                # all threads: indexing, merging, and generating the items
    for batch in corpus.batches():
        started = time.perf_counter()
        index.add(by_message(batch))
        added = time.perf_counter()
        index.commit()
        done = time.perf_counter()
        spent += done - started
        commits.append(done - added)
        items += len(batch)
    merge_started = time.perf_counter()
    index.close()                            # finishes the merges the commits started
    merged = time.perf_counter()
    return index, {"items": items, "seconds": spent, "items_per_s": items / spent,
                   "cpu_us_per_item_incl_generation": 1e6 * (time.process_time() - cpu) / items,
                   "commit_p50_ms": 1000 * statistics.median(commits), "commit_p95_ms": 1000 * _p95(commits),
                   "merge_wait_s": merged - merge_started, "wall_s": merged - wall,
                   "disk_mb": _disk_mb(path)}


def build_fts5(corpus: Corpus, path: Path) -> tuple[sqlite3.Connection, dict[str, float]]:
    db = sqlite3.connect(path)
    db.executescript("""
        PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-262144;
        CREATE TABLE items (item_id INTEGER PRIMARY KEY, tenant TEXT, user_id TEXT, folder TEXT, kind TEXT,
                            source TEXT, sent_at INTEGER, size INTEGER, has_attachment INTEGER);
        CREATE INDEX ix_items_tenant_sent ON items (tenant, sent_at);
        CREATE VIRTUAL TABLE fts USING fts5(subject, body, participants, attachmentnames, chat, sender, "to", cc,
                                            content='', tokenize='unicode61 remove_diacritics 0');
    """)
    spent, items = 0.0, 0
    cpu = time.process_time()
    for batch in corpus.batches():
        started = time.perf_counter()
        with db:
            db.executemany("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?)", [
                (d.item_id, d.tenant, d.user_id, d.folder, d.kind, d.source, micros(d.sent_at), d.size,
                 int(d.has_attachment)) for d in batch])
            db.executemany("INSERT INTO fts (rowid, subject, body, participants, attachmentnames, chat, sender, "
                           '"to", cc) VALUES (?,?,?,?,?,?,?,?,?)', [
                (d.item_id, d.subject, d.body, d.participants, d.attachment_names, d.chat, d.sender, d.to, d.cc)
                for d in batch])
        spent += time.perf_counter() - started
        items += len(batch)
    return db, {"items": items, "seconds": spent, "items_per_s": items / spent, "disk_mb": _disk_mb(path.parent),
                "cpu_us_per_item_incl_generation": 1e6 * (time.process_time() - cpu) / items}


def create_database(admin_url: str, keep: str | None) -> tuple[Engine, Callable[[], None], bool]:
    """A fresh database beside the one ``admin_url`` names, an engine on it, the call that drops it, and whether
    it is ``keep``'s database from an earlier run (built already: then it is neither rebuilt nor dropped)."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = keep or f"bench_search_{os.getpid()}"
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if keep is None or not exists:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(text(f"CREATE DATABASE {name}"))
    # One connection, so that every search runs in the backend whose CPU time backend_cpu reads.
    engine = create_engine(make_url(admin_url).set(database=name), pool_size=1, max_overflow=0)
    if keep is not None:
        return engine, engine.dispose, bool(exists)

    def drop() -> None:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
    return engine, drop, False


def build_postgres(corpus: Corpus, engine: Engine) -> tuple[PostgresSearchIndex, dict[str, float]]:
    index = PostgresSearchIndex(engine)
    spent, batches, items = 0.0, [], 0
    cpu = time.process_time()
    for batch in corpus.batches():
        started = time.perf_counter()
        index.add(batch)                     # one transaction: searchable when it returns
        took = time.perf_counter() - started
        spent += took
        batches.append(took)
        items += len(batch)
    vacuum, disk = vacuum_postgres(index, engine)
    return index, {"items": items, "seconds": spent, "items_per_s": items / spent,
                   "cpu_us_per_item_incl_generation": 1e6 * (time.process_time() - cpu) / items,
                   "batch_p50_ms": 1000 * statistics.median(batches), "batch_p95_ms": 1000 * _p95(batches),
                   "vacuum_analyze_s": vacuum, "disk_mb": disk}


def vacuum_postgres(index: PostgresSearchIndex, engine: Engine) -> tuple[float, float]:
    """``VACUUM ANALYZE`` of the index's tables (what autovacuum does to insert-only tables); seconds, and MB on disk
    (the table and the narrow table, with their indexes and out-of-line values)."""
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in (index.table, index.narrow):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
        disk = conn.execute(text(f"SELECT pg_total_relation_size('{index.table}') + "
                                 f"pg_total_relation_size('{index.narrow}')")).scalar_one()
    return time.perf_counter() - started, disk / 1e6


def upgrade_postgres(index: PostgresSearchIndex, engine: Engine) -> dict[str, float]:
    """A kept database from an earlier run is brought to this code's schema as a server's first search would
    (``_ensure``: a table made before the narrow table gets it filled), then vacuumed; the seconds of each."""
    started = time.perf_counter()
    index._ensure()
    ensured = time.perf_counter() - started
    vacuum, disk = vacuum_postgres(index, engine)
    return {"ensure_s": ensured, "vacuum_analyze_s": vacuum, "disk_mb": disk}


def postgres_runner(index: PostgresSearchIndex, case: Case) -> Callable[[], int]:
    def run() -> int:
        order = Order.NEWEST if case.order == "newest" else Order.RELEVANCE
        return index.search(TENANT, case.node, limit=20, order=order).total
    return run


def tantivy_runner(index: TantivySearchIndex, case: Case) -> Callable[[], int]:
    def run() -> int:
        order = "newest" if case.order == "newest" else "relevance"
        return index.search(TENANT, case.node, limit=20, order=order).total
    return run


def fts5_runner(db: sqlite3.Connection, case: Case) -> Callable[[], int]:
    # CROSS JOIN: SQLite keeps the order, so the full-text match drives (else it may scan items and probe fts)
    base = f"FROM fts CROSS JOIN items i ON i.item_id = fts.rowid WHERE fts MATCH ? AND i.tenant = ? {case.where}"
    order = "i.sent_at DESC" if case.order == "newest" else "bm25(fts)"
    params = (case.fts, TENANT, *case.params)

    def run() -> int:
        total = db.execute(f"SELECT count(*) {base}", params).fetchone()[0]
        db.execute(f"SELECT fts.rowid {base} ORDER BY {order} LIMIT 20", params).fetchall()
        return int(total)
    return run


def timed(run: Callable[[], int], runs: int, budget_s: float,
          cpu: Callable[[], float] = time.process_time) -> tuple[int, list[float], float]:
    """The total, each run's wall-clock ms, and the CPU ms a run took on average (``cpu``: this process's, plus
    the PostgreSQL backend's for postgres) — the figure a loaded machine moves least."""
    total = run()                                      # warm-up, and the total to compare
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    cpu_started = cpu()
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(1000 * (time.perf_counter() - started))
        if time.perf_counter() > deadline and len(times) >= 5:
            break
    return total, times, 1000 * (cpu() - cpu_started) / len(times)


def backend_cpu(engine: Engine) -> Callable[[], float]:
    """CPU seconds of this process and of the one PostgreSQL backend behind ``engine`` (a pool of one connection),
    read from /proc: the server runs on this machine. Ticks of 10 ms, so only a sum over runs means anything."""
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    stat = Path(f"/proc/{pid}/stat")
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return time.process_time() + (int(fields[11]) + int(fields[12])) / ticks   # utime, stime
    return cpu


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def _disk_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


ENGINES = ("tantivy", "fts5", "postgres")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--writer-threads", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="build in this folder and keep it")
    parser.add_argument("--engines", default="tantivy,fts5",
                        help="comma-separated, in order, of tantivy, fts5, postgres; the first is the anchor")
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="for postgres: a database on the server; the benchmark creates and drops its own")
    parser.add_argument("--keep-database", default=None, metavar="NAME",
                        help="for postgres: build in this database and keep it; if it exists, reuse it unbuilt")
    parser.add_argument("--keep-database-build", default="search-bench-postgres-build.json", metavar="FILE",
                        help="where --keep-database's build figures are kept for the runs that reuse it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not engines or any(e not in ENGINES for e in engines) or len(set(engines)) != len(engines):
        parser.error(f"--engines: distinct names among {', '.join(ENGINES)}")

    work = args.keep or Path(tempfile.mkdtemp(prefix="search-bench-"))
    # With --keep, a tantivy index a run finished there (its build figures beside it) is reused, not rebuilt.
    tantivy_built = work / "tantivy-build.json"
    if not (args.keep and tantivy_built.exists()):
        tantivy_built.unlink(missing_ok=True)
        shutil.rmtree(work / "tantivy", ignore_errors=True)
    shutil.rmtree(work / "fts5", ignore_errors=True)
    cleanups: list[Callable[[], None]] = []
    try:
        started = time.perf_counter()
        corpus = Corpus(args.items)
        _say(args, f"corpus: {args.items:,} items in batches of {BATCH:,}; vocabulary and people ready in "
                   f"{time.perf_counter() - started:.1f} s")
        load = [os.getloadavg()[0]]
        builds: dict[str, dict[str, float]] = {}
        runners: dict[str, Callable[[Case], Callable[[], int]]] = {}
        cpus: dict[str, Callable[[], float]] = {name: time.process_time for name in engines}
        tantivy: TantivySearchIndex | None = None
        postgres: PostgresSearchIndex | None = None
        for name in engines:
            if name == "tantivy":
                if tantivy_built.exists():
                    tantivy, b = TantivySearchIndex(work / "tantivy"), json.loads(tantivy_built.read_text())
                    _say(args, f"tantivy : reusing {work / 'tantivy'}")
                else:
                    tantivy, b = build_tantivy(corpus, work / "tantivy", args.writer_threads)
                    if args.keep:
                        tantivy_built.write_text(json.dumps(b))
                runners[name] = functools.partial(tantivy_runner, tantivy)
                _say(args, f"tantivy : {b['items_per_s']:,.0f} items/s; commit per {BATCH:,} p50 "
                           f"{b['commit_p50_ms']:.0f} ms p95 {b['commit_p95_ms']:.0f} ms; merges after "
                           f"{b['merge_wait_s']:.1f} s; {b['disk_mb']:,.0f} MB")
            elif name == "fts5":
                (work / "fts5").mkdir(parents=True)
                db, b = build_fts5(corpus, work / "fts5" / "fts.db")
                runners[name] = functools.partial(fts5_runner, db)
                _say(args, f"fts5    : {b['items_per_s']:,.0f} items/s; {b['disk_mb']:,.0f} MB")
            else:
                engine, drop, built = create_database(args.database_url, args.keep_database)
                cleanups.append(drop)
                if built:
                    postgres, b = PostgresSearchIndex(engine), json.loads(
                        (Path(args.keep_database_build)).read_text())
                    _say(args, f"postgres: reusing database {args.keep_database}, built as {args.keep_database_build}")
                    upgraded = upgrade_postgres(postgres, engine)
                    b["reused"] = upgraded
                    _say(args, f"postgres: schema ensured in {upgraded['ensure_s']:.1f} s, VACUUM ANALYZE "
                               f"{upgraded['vacuum_analyze_s']:.1f} s; now {upgraded['disk_mb']:,.0f} MB")
                else:
                    postgres, b = build_postgres(corpus, engine)
                    if args.keep_database:
                        Path(args.keep_database_build).write_text(json.dumps(b))
                runners[name] = functools.partial(postgres_runner, postgres)
                cpus[name] = backend_cpu(engine)
                _say(args, f"postgres: {b['items_per_s']:,.0f} items/s; add per {BATCH:,} p50 "
                           f"{b['batch_p50_ms']:.0f} ms p95 {b['batch_p95_ms']:.0f} ms; VACUUM ANALYZE "
                           f"{b['vacuum_analyze_s']:.1f} s; {b['disk_mb']:,.0f} MB")
            builds[name] = b
            load.append(os.getloadavg()[0])

        rows = []
        for case in query_set(corpus):
            row: dict[str, Any] = {"query": case.name}
            for name in engines:
                total, times, cpu_ms = timed(runners[name](case), args.runs, 30, cpus[name])
                row.update({f"{name}_total": total, f"{name}_p50": statistics.median(times),
                            f"{name}_p95": _p95(times), f"{name}_runs": len(times), f"{name}_cpu_ms": cpu_ms})
            rows.append(row)
        extra: dict[str, dict[str, dict[str, float]]] = {}
        for engine_name, index in (("tantivy", tantivy), ("postgres", postgres)):
            if index is None:
                continue
            extra[engine_name] = {}
            for name, call in (("count_by_user, 2-word AND", functools.partial(
                                    _count_by_user, index, And((Term("meeting"), Term("tomorrow"))))),
                               ("item_ids, common word", functools.partial(_item_ids, index, Term("ok")))):
                total, times, cpu_ms = timed(call, min(args.runs, 10), 30, cpus[engine_name])
                extra[engine_name][name] = {"result": total, "p50": statistics.median(times), "p95": _p95(times),
                                            "cpu_ms": cpu_ms}
        result = {"items": next(iter(builds.values()))["items"], "engines": engines,
                  **{f"{name}_build": b for name, b in builds.items()}, "queries": rows, "extra": extra,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - started, "cpus": os.cpu_count(),
                  "load_average_1min": [*load, os.getloadavg()[0]]}
        if args.json:
            print(json.dumps(result, indent=2))
            return
        _report(engines, builds, rows, extra, result)
    finally:
        for cleanup in cleanups:
            cleanup()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _count_by_user(index: TantivySearchIndex | PostgresSearchIndex, node: Node) -> int:
    return len(index.count_by_user(TENANT, node))


def _item_ids(index: TantivySearchIndex | PostgresSearchIndex, node: Node) -> int:
    return len(index.item_ids(TENANT, node))


def _report(engines: list[str], builds: dict[str, dict[str, float]], rows: list[dict[str, Any]],
            extra: dict[str, dict[str, dict[str, float]]], result: dict[str, Any]) -> None:
    anchor = engines[0]
    header = f"\n{'query':<24}{'total':>9}" + "".join(f"{e + ' p50':>14}{'p95':>9}{'CPU':>9}" for e in engines)
    print(header + "".join(f"{e + ' p95, CPU ÷ ' + anchor:>{max(20, len(e + anchor) + 13)}}" for e in engines[1:]))
    for r in rows:
        line = f"{r['query']:<24}{r[anchor + '_total']:>9,}"
        line += "".join(f"{r[e + '_p50']:>12.1f}ms{r[e + '_p95']:>7.1f}ms{r[e + '_cpu_ms']:>7.1f}ms" for e in engines)
        line += "".join(f"{r[e + '_p95'] / r[anchor + '_p95']:>{max(20, len(e + anchor) + 13) - 8}.1f}x"
                        f"{r[e + '_cpu_ms'] / max(r[anchor + '_cpu_ms'], 0.01):>7.1f}x" for e in engines[1:])
        differ = [f"{e} total {r[e + '_total']:,}" for e in engines[1:] if r[e + "_total"] != r[anchor + "_total"]]
        print(line + (f"  (TOTALS DIFFER: {', '.join(differ)})" if differ else ""))
    for engine_name, calls in extra.items():
        for name, e in calls.items():
            print(f"{engine_name} {name}: {e['result']:,} -> p50 {e['p50']:.1f} ms, p95 {e['p95']:.1f} ms, "
                  f"CPU {e['cpu_ms']:.1f} ms")
    goals = {"tantivy": 50.0, "fts5": 50.0, "postgres": 100.0}
    print()
    for e in engines:
        worst = max(r[e + "_p95"] for r in rows)
        cpu = builds[e]["cpu_us_per_item_incl_generation"]
        print(f"{e}: build {builds[e]['items_per_s']:,.0f} items/s ({cpu:.0f} µs CPU per item in this process, "
              f"incl. generating it); worst p95 {worst:.1f} ms (goal < {goals[e]:.0f} ms: "
              f"{'met' if worst < goals[e] else 'NOT met'}); {builds[e]['disk_mb']:,.0f} MB")
    loads = ", ".join(f"{x:.1f}" for x in result["load_average_1min"])
    print(f"max RSS {result['max_rss_mb']:,.0f} MB; {result['seconds']:.0f} s in all; load average at start, after "
          f"each build, at the end: {loads} on {os.cpu_count()} CPUs")


def _say(args: argparse.Namespace, line: str) -> None:
    print(line, file=sys.stderr if args.json else sys.stdout, flush=True)


if __name__ == "__main__":
    main()
