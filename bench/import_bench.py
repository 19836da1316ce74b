"""Import benchmark: WhatsApp export items through parse → map → MIME → store → search index, end to end.

    .venv/bin/python bench/import_bench.py [--items 100000] [--chats 100] [--database-url URL] [--json]

Generates Android-format export files (``--chats`` chats, 3–5 participants each, every participant a directory
user found by mobile number), hands them to a whatsapp-export connector and times ``ConnectorService.run`` —
the real pipeline, SQLite in a temp folder by default. In the same run, the same files go through the naive
path (same parser and mapping, but ``email.message.EmailMessage`` with ``policy.SMTP`` to build each message)
into a second tenant, as the anchor. Prints items/s for both and the ratio; the goal (issue #16) is ≥ 6,000 items/s
at 100k items and at 30k.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from tenantry.app import build_services
from tenantry.archive.service import WHATSAPP_FOLDER, Delivery
from tenantry.connectors.convert import body_for, subject_for, to_mail
from tenantry.connectors.items import SourceItem
from tenantry.connectors.mapping import MatchedBy, Recipient, UserMapper
from tenantry.connectors.sources import ExportUpload
from tenantry.connectors.sources.whatsapp_export import WhatsAppExportSource
from tenantry.core.settings import Settings

GOAL = 6000   # items/s, end to end (issue #16 goal 2)
TEXT = ("the meeting is moved to thursday please send the report before noon I will call the client "
        "about the invoice can you check the numbers again thanks see you tomorrow ok great")


def make_exports(items: int, chats: int, users: int, rng: random.Random) -> list[tuple[str, bytes, list[int]]]:
    """``chats`` Android exports (24 h, day-first), about items/chats messages each."""
    per_chat = items // chats
    words = TEXT.split()
    files = []
    start = datetime(2026, 1, 5, 8, 0)
    for chat in range(chats):
        members = rng.sample(range(users), rng.randint(3, 5))
        lines = []
        when = start + timedelta(days=chat)
        for n in range(per_chat):
            when += timedelta(seconds=rng.randint(20, 400))
            author = members[n % len(members)]
            text = " ".join(rng.choice(words) for _ in range(rng.randint(4, 18)))
            if n % 50 == 7:
                text += "\nand a second line"
            lines.append(f"{when:%d/%m/%Y, %H:%M} - +49 170 {author:07d}: {text}")
        files.append((f"WhatsApp Chat {chat}.txt", ("\n".join(lines) + "\n").encode(), members))
    return files


def setup(services: Any, tenant: str, users: int) -> list[str]:
    services.directory.create_tenant(tenant, tenant)
    ids = []
    for u in range(users):
        doc = services.scim.create(tenant, "User", {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"user{u}@contoso.com",
            "emails": [{"type": "work", "value": f"user{u}@contoso.com", "primary": True}],
            "phoneNumbers": [{"type": "mobile", "value": f"+49 170 {u:07d}"}]})
        ids.append(doc["id"])
    services.directory.add_role_group_member(tenant, "Organization Management", ids[0])
    # No role group has the import role by default (seed 000): the bench grants it as an administrator would.
    services.directory.create_role_group(tenant, "Importers", ["Mailbox Import Export"])
    services.directory.add_role_group_member(tenant, "Importers", ids[0])
    return ids


def run_tenantry(services: Any, tenant: str, owner: str, files: list[tuple[str, bytes, list[int]]]) -> dict[str, Any]:
    info = services.connectors.create(tenant, name="bench", kind="whatsapp-export",
                                      by=services.directory.administrator(tenant, owner, "bench"),
                                      accept_terms=True, source={"timezone": "UTC"})
    services.connectors.consent(tenant, info.id, services.directory.administrator(tenant, owner, "bench"))
    for name, data, _ in files:
        services.connectors.add_export(tenant, info.id, data, name, "user0@contoso.com")
    started, cpu_started = time.perf_counter(), time.process_time()
    report = services.connectors.run(tenant, info.id)
    services.indexer.flush()  # end to end: until the last item is searchable
    elapsed = time.perf_counter() - started
    # Every thread of this process (the run, the index writer, the WAL checkpointer, SQLite itself on the embedded
    # default): with the work split perfectly over every core, items/s can be no more than cores / CPU an item.
    cpu = time.process_time() - cpu_started
    assert report.status == "succeeded", report.error
    return {"items": report.imported, "copies": report.copies, "seconds": elapsed, "cpu_seconds": cpu,
            "skipped": report.skipped}


def naive_message(item: SourceItem, resolve: Any, domain: str) -> tuple[str, bytes]:
    """The same message content, built the stdlib way: EmailMessage with policy.SMTP."""
    mail = to_mail(item, resolve, domain)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"{mail.sender.name} <{mail.sender.addr}>" if mail.sender.name else mail.sender.addr
    msg["To"] = ", ".join(a.addr for a in mail.to)
    msg["Date"] = mail.date
    msg["Subject"] = subject_for(item)
    msg["Message-ID"] = f"<{mail.message_id}>"
    msg["References"] = f"<{mail.thread_id}>"
    for name, value in mail.headers:
        msg[name] = value
    msg.set_content(body_for(item))
    return mail.message_id, msg.as_bytes()


def run_naive(services: Any, tenant: str, files: list[tuple[str, bytes, list[int]]]) -> dict[str, Any]:
    owner = services.directory.find_users_by_email(tenant, ["user0@contoso.com"])["user0@contoso.com"][0]
    owner_recipient = Recipient(owner.id, owner.email, owner.display_name, MatchedBy.OWNER)
    started = time.perf_counter()
    source = WhatsAppExportSource([ExportUpload(d, n, owner.id) for n, d, _ in files], "UTC")
    mapper = UserMapper(services.directory, tenant, [], use_directory_mobiles=True)
    items = copies = 0
    batch: list[Delivery] = []
    for item in source.items(None, datetime.now(UTC)):
        if not isinstance(item, SourceItem):
            continue
        found = {p: mapper.resolve(p.phone, p.name, p.email) for p in item.participants}

        def resolve(p: Any, found: dict[Any, Any] = found) -> str | None:
            users = found.get(p)
            return users[0].address if users else None

        message_id, raw = naive_message(item, resolve, "whatsapp.invalid")
        recipients = {u.user_id: u for users in found.values() for u in users}
        recipients.setdefault(owner.id, owner_recipient)  # the export's owner gets every message, as in the pipeline
        for r in recipients.values():
            batch.append(Delivery(r.user_id, r.address, WHATSAPP_FOLDER, raw, message_id, item.kind.value,
                                  item.source, item.sent_at, item.chat_id))
        items += 1
        if len(batch) >= 1500:
            copies += sum(services.archive.deliver(tenant, batch))
            batch = []
    copies += sum(services.archive.deliver(tenant, batch))
    services.indexer.flush()
    return {"items": items, "copies": copies, "seconds": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--naive-items", type=int, default=None,
                        help="items for the naive path (default: the same as --items)")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp folder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(42)
    files = make_exports(args.items, args.chats, args.users, rng)
    naive_files = files
    if args.naive_items is not None:
        naive_chats = max(1, args.chats * args.naive_items // args.items)
        naive_files = make_exports(args.naive_items, naive_chats, args.users, random.Random(42))
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(data_dir=Path(tmp), database_url=args.database_url))
        suffix = f"{int(time.time())}"
        ids = setup(services, f"bench-{suffix}", args.users)
        ours = run_tenantry(services, f"bench-{suffix}", ids[0], files)
        setup(services, f"naive-{suffix}", args.users)
        naive = run_naive(services, f"naive-{suffix}", naive_files)
        services.indexer.flush()
        services.db.dispose()
    ours_rate = ours["items"] / ours["seconds"]
    cores = len(os.sched_getaffinity(0))
    cpu_per_item = ours["cpu_seconds"] / max(ours["items"], 1)
    ceiling = cores / cpu_per_item if cpu_per_item else 0.0
    naive_rate = naive["items"] / naive["seconds"]
    result = {"database": args.database_url or "sqlite", "items": ours["items"], "copies": ours["copies"],
              "seconds": round(ours["seconds"], 2), "items_per_s": round(ours_rate),
              "copies_per_s": round(ours["copies"] / ours["seconds"]),
              "naive_items": naive["items"], "naive_seconds": round(naive["seconds"], 2),
              "naive_items_per_s": round(naive_rate), "ratio": round(ours_rate / naive_rate, 2),
              "cpu_us_per_item": round(cpu_per_item * 1e6, 1), "cores": cores,
              "ceiling_items_per_s": round(ceiling), "goal_items_per_s": GOAL, "goal_met": ours_rate >= GOAL}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"tenantry pipeline : {ours['items']:>7} items ({ours['copies']} mailbox copies) in "
              f"{ours['seconds']:.1f} s = {ours_rate:,.0f} items/s")
        print(f"naive stdlib path : {naive['items']:>7} items ({naive['copies']} mailbox copies) in "
              f"{naive['seconds']:.1f} s = {naive_rate:,.0f} items/s")
        print(f"CPU of the run    : {cpu_per_item * 1e6:.0f} µs an item, every thread of this process "
              f"({ours['cpu_seconds']:.1f} s; {ours['cpu_seconds'] / ours['seconds']:.2f} cores busy on average); "
              f"all {cores} cores busy at that cost: at most {ceiling:,.0f} items/s")
        print(f"ratio             : {ours_rate / naive_rate:.2f}x   goal ≥ {GOAL:,} items/s: "
              f"{'met' if ours_rate >= GOAL else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
