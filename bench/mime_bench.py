"""MIME rendering benchmark: ``tenantry.protocols.mime.render`` against the stdlib, same run, same messages.

    .venv/bin/python bench/mime_bench.py [--messages 2000] [--seconds 1.0] [--repeat 5] [--json] [--encodings]

What it does, in order:

1. Generates ``--messages`` typical chat messages (seeded, so every run renders the same items): 20 chats
   of 3-4 participants with ASCII, German, Korean, Arabic and emoji names; an ASCII or short UTF-8 body
   (one in five has two lines); 2-3 recipients; a per-chat subject; five X- headers, one of them unique
   per message; In-Reply-To/References to the chat root; no attachment.
2. Checks both paths on every message: the stdlib parser must read the same From, To, Subject and
   X- headers back from each, and the same body (the stdlib path turns line breaks into CRLF and adds a
   final one, so bodies are compared after undoing that). Any mismatch makes the exit status 1.
3. Times, on one core, ``render(mail)`` and the naive path building the same message from the same
   ``ChatMail`` (``EmailMessage(policy=policy.SMTP)``, header assignment, ``set_content``,
   ``as_bytes``), each in passes of at least ``--seconds`` over the whole list, best of ``--repeat``.
   A "cold" render figure repeats the measurement with every name and header value unique and the
   memoised display names, addresses and header values forgotten before each pass (no cache hits).
4. Prints messages/s for both, their ratio, and the mean message size. ``--encodings`` adds the body
   size table (UTF-8, quoted-printable, base64) the body-encoding choice in ``chatmail`` is based on.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.parser import BytesParser

from tenantry.protocols.mime import Address, ChatMail, chatmail, message_id_for, render

NAMES = ["Kim Lee", "Adele Vance", "Jürgen Groß", "김민지", "박서준", "Zoë, \"the boss\"", "محمد علي",
         "Sofia 🌸", "Tomás Cruz", "Lidia Holloway", "Ngọc Anh", "Raúl", "Miriam Graham", "山田太郎",
         "Olga Petrova", "Pradeep Gupta", "Yuki Ito", "Zainab", "Isaiah Langer", "Grady Archie"]
BODIES = ["ok", "See you at 7", "Running 10 min late, sorry!", "Can you send me the invoice?",
          "👍", "Haha 😂😂", "Bin gleich da, Stau auf der A9.", "네 알겠습니다", "Thanks a lot!",
          "Meeting moved to 15:30 - room 2.14", "¿Dónde estás?", "Call me when you're free",
          "The file is on the shared drive under /projects/2024/q1", "Danke schön 🙏", "OK, tomorrow then.",
          "Did you see the email from the bank?", "شكرا جزيلا", "I'll bring the charger.",
          "Flight lands 21:05", "Yes"]
CHAT_NAMES = ["Family", "Familie Groß 👪", "Project Atlas", "Badminton Sunday", "가족", "Office Berlin",
              "Trip to Lisbon ✈️", "Book club", "Neighbours", "Kita-Eltern"]

ENCODING_SAMPLES = {
    "English": "Running 10 min late, sorry! Can you order for me? The usual, thanks.",
    "German": "Bin gleich da, Stau auf der A9. Könnt ihr schon bestellen? Für mich das Übliche.",
    "French": "J'arrive dans dix minutes, désolé ! Vous pouvez commander pour moi ? Merci.",
    "Spanish": "¿Dónde estás? Llego en diez minutos, pedid por mí, lo de siempre. ¡Gracias!",
    "Russian": "Буду через десять минут, пробки. Закажите мне, пожалуйста, как обычно.",
    "Greek": "Έρχομαι σε δέκα λεπτά, συγγνώμη! Παραγγείλτε για μένα, τα συνηθισμένα.",
    "Arabic": "سأصل بعد عشر دقائق، آسف! هل يمكنكم الطلب لي؟ المعتاد، شكرا.",
    "Hebrew": "אני מגיע בעוד עשר דקות, סליחה! תזמינו לי? את הרגיל, תודה.",
    "Chinese": "我十分钟后到，抱歉！你们可以先帮我点吗？老样子，谢谢。",
    "Japanese": "10分遅れます、すみません！先に注文しておいてもらえますか？いつもので。",
    "Korean": "10분 늦어요, 죄송해요! 먼저 주문해 줄 수 있어요? 늘 먹던 걸로요.",
    "Emoji": "😂😂😂 👍🙏 🎉🎉 ❤️❤️ 😍",
}


def _mailbox(name: str, index: int) -> Address:
    return Address(name, f"+49170{index:07d}@whatsapp.example")


def make_messages(count: int, *, unique: bool = False, seed: int = 17) -> list[ChatMail]:
    """Typical chat messages; with ``unique`` every name and header value differs between messages."""
    rng = random.Random(seed)
    chats = []
    for c in range(20):
        members = rng.sample(range(len(NAMES)), rng.choice((3, 4)))
        chats.append((f"chat-{c}", CHAT_NAMES[c % len(CHAT_NAMES)], members))
    start = datetime(2024, 1, 12, 9, 0, tzinfo=UTC)
    messages = []
    for i in range(count):
        chat_id, chat_name, members = chats[i % len(chats)]
        order = rng.sample(members, len(members))
        people = [_mailbox(NAMES[m] + (f" {i}" if unique else ""), m + (1000 * i if unique else 0)) for m in order]
        body = rng.choice(BODIES)
        if rng.random() < 0.2:
            body += "\n" + rng.choice(BODIES)
        label = f"{chat_name} #{i}" if unique else chat_name
        messages.append(ChatMail(
            message_id=message_id_for("wa", chat_id, str(i)),
            date=start + timedelta(seconds=37 * i),
            sender=people[0],
            to=tuple(people[1:4]),
            subject=f"WhatsApp: {label}",
            body=body,
            thread_id=message_id_for("wa", chat_id),
            headers=(
                ("X-Tenantry-Kind", "chat"),
                ("X-Tenantry-Source", "whatsapp-export" + (f"-{i}" if unique else "")),
                ("X-Tenantry-Chat", label),
                ("X-Tenantry-Item", f"sha256:{message_id_for('item', str(i)).split('@')[0]}"),
                ("X-Tenantry-Direction", "inbound" if i % 3 else "outbound"),
            ),
        ))
    return messages


def naive(mail: ChatMail) -> bytes:
    """The same message through ``email.message.EmailMessage`` and ``policy.SMTP``."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["Date"] = mail.date.astimezone(UTC)
    msg["From"] = HeaderAddress(mail.sender.name or "", addr_spec=mail.sender.addr)
    msg["To"] = [HeaderAddress(a.name or "", addr_spec=a.addr) for a in mail.to]
    if mail.cc:
        msg["Cc"] = [HeaderAddress(a.name or "", addr_spec=a.addr) for a in mail.cc]
    if mail.subject:
        msg["Subject"] = mail.subject
    msg["Message-ID"] = f"<{mail.message_id}>"
    if mail.thread_id and mail.thread_id != mail.message_id:
        msg["In-Reply-To"] = f"<{mail.thread_id}>"
        msg["References"] = f"<{mail.thread_id}>"
    for name, value in mail.headers:
        msg[name] = value
    msg.set_content(mail.body)
    for part in mail.parts:
        maintype, subtype = part.content_type.split(";")[0].split("/")
        msg.add_attachment(part.data, maintype=maintype, subtype=subtype, filename=part.filename)
    return msg.as_bytes()


def check(messages: Sequence[ChatMail], build: Callable[[ChatMail], bytes], *, canonical_body: bool) -> int:
    """How many messages the stdlib parser does not read back as given."""
    parser = BytesParser(policy=policy.default)
    failures = 0
    for mail in messages:
        parsed = parser.parsebytes(build(mail))
        body = parsed.get_content()
        if canonical_body:
            body = body.replace("\r\n", "\n").removesuffix("\n")
        got = (
            [(a.display_name, a.addr_spec) for a in parsed["From"].addresses],
            [(a.display_name, a.addr_spec) for a in parsed["To"].addresses],
            str(parsed["Subject"]),
            [str(parsed[name]) for name, _ in mail.headers],
            body,
        )
        want = (
            [(mail.sender.name or "", mail.sender.addr)],
            [(a.name or "", a.addr) for a in mail.to],
            mail.subject,
            [value for _, value in mail.headers],
            mail.body,
        )
        failures += got != want
    return failures


def rate(
    messages: Sequence[ChatMail],
    build: Callable[[ChatMail], bytes],
    seconds: float,
    repeat: int,
    before_pass: Callable[[], None] | None = None,
) -> float:
    """Best messages/s over ``repeat`` runs, each of whole passes lasting at least ``seconds``.

    ``before_pass`` runs untimed before every pass over ``messages``.
    """
    best = 0.0
    for _ in range(repeat):
        done, elapsed = 0, 0.0
        while elapsed < seconds:
            if before_pass is not None:
                before_pass()
            began = time.perf_counter()
            for mail in messages:
                build(mail)
            elapsed += time.perf_counter() - began
            done += len(messages)
        best = max(best, done / elapsed)
    return best


def clear_caches() -> None:
    """Forget every memoised name, address and header value, so the next pass starts cold."""
    for cached in (chatmail._mailbox, chatmail._unstructured_line, chatmail._extra_line):
        cached.cache_clear()


def encoding_table() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for language, text in ENCODING_SAMPLES.items():
        data = text.encode("utf-8")
        rows.append({
            "text": language,
            "utf8": len(data),
            "qp": len(chatmail._qp(data)),
            "base64": len(chatmail._base64_lines(data)),
            "chosen": chatmail._encode_body(text)[0],
        })
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=2000, help="distinct messages per pass")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum length of one timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per path; the best counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--encodings", action="store_true", help="also print the body encoding size table")
    args = parser.parse_args(argv)

    warm = make_messages(args.messages)
    cold = make_messages(args.messages, unique=True, seed=18)
    failures = check(warm, render, canonical_body=False) + check(cold, render, canonical_body=False)
    naive_failures = check(warm, naive, canonical_body=True)

    render_rate = rate(warm, render, args.seconds, args.repeat)
    cold_rate = rate(cold, render, args.seconds, args.repeat, before_pass=clear_caches)
    naive_rate = rate(warm[: max(1, min(len(warm), 500))], naive, args.seconds, max(1, min(args.repeat, 3)))
    result: dict[str, object] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "messages": args.messages,
        "render_msgs_per_s": round(render_rate),
        "render_cold_msgs_per_s": round(cold_rate),
        "naive_smtp_msgs_per_s": round(naive_rate),
        "ratio": round(render_rate / naive_rate, 1),
        "render_mean_bytes": round(sum(len(render(m)) for m in warm) / len(warm)),
        "naive_mean_bytes": round(sum(len(naive(m)) for m in warm[:500]) / len(warm[:500])),
        "roundtrip_failures": failures,
        "naive_roundtrip_failures": naive_failures,
    }
    if args.encodings:
        result["body_encodings"] = encoding_table()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"Python {result['python']} on {result['machine']}, {args.messages} typical chat messages, one core")
        print(f"  render()                     {render_rate:>10,.0f} messages/s  (cold caches: {cold_rate:,.0f}/s)")
        print(f"  EmailMessage + policy.SMTP   {naive_rate:>10,.0f} messages/s")
        print(f"  ratio                        {render_rate / naive_rate:>10.1f}x")
        print(f"  mean size: render {result['render_mean_bytes']} B, naive {result['naive_mean_bytes']} B; "
              f"round-trip failures: render {failures}, naive {naive_failures}")
        if args.encodings:
            print("\n  body encoding (bytes)   UTF-8      QP  base64  chosen")
            for row in encoding_table():
                print(f"  {row['text']:<20} {row['utf8']:>8} {row['qp']:>7} {row['base64']:>7}  {row['chosen']}")
    return 1 if failures or naive_failures else 0


if __name__ == "__main__":
    sys.exit(main())
