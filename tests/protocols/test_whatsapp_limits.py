"""The export reader's safety limits (issue #9, defect 4): judged from the zip headers before reading,
enforced while inflating (headers can lie), and every refusal an issue with its reason."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tenantry.protocols.whatsapp import (
    ExportLimits,
    ExportMessage,
    IssueReason,
    MessageKind,
    open_export,
    read_export,
    zip_refusal,
)
from tests.zipbombs import deflate_zip

MIB = 1024 * 1024
LINE = b"12/01/2024, 09:15 - Ann: hello there\n"
ITEM_RULE = ExportLimits(max_media_bytes=10 * MIB, max_text_chars=10 * MIB)


def _reasons(data: bytes, limits: ExportLimits = ITEM_RULE, filename: str = "export.zip") -> list[IssueReason]:
    return [i.reason for i in read_export(data, filename, limits).issues]


def _peak(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_zip_with_more_members_than_the_limit_is_refused_before_its_member_list_is_built() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("_chat.txt", LINE)
        for i in range(30):
            zf.writestr(f"f{i}.jpg", b"x")
    limits = ExportLimits(max_members=10)
    parsed = read_export(buf.getvalue(), "export.zip", limits)
    assert parsed.messages == []
    assert [(i.reason, "more than 10 members" in i.text) for i in parsed.issues] == [(IssueReason.ZIP_REFUSED, True)]
    assert "more than 10 members" in (zip_refusal(io.BytesIO(buf.getvalue()), limits) or "")


def test_chat_text_compressed_like_a_bomb_is_refused_from_its_header_without_inflating() -> None:
    data = deflate_zip([("_chat.txt", LINE * 20_000, 200)])  # 146 MB of text in ~150 KB
    peak = _peak(lambda: read_export(data, "export.zip", ITEM_RULE))
    parsed = read_export(data, "export.zip", ITEM_RULE)
    assert parsed.messages == [] and [i.reason for i in parsed.issues] == [IssueReason.ZIP_REFUSED]
    assert "ratio" in parsed.issues[0].text
    assert peak < 5 * MIB


def test_members_adding_up_over_the_total_limit_refuse_the_zip() -> None:
    data = deflate_zip([("_chat.txt", LINE, 1), ("a.bin", bytes(MIB), 3), ("b.bin", bytes(MIB), 3)])
    limits = ExportLimits(max_total_bytes=5 * MIB)
    assert _reasons(data, limits) == [IssueReason.ZIP_REFUSED]
    assert "over the limit" in (zip_refusal(io.BytesIO(data), limits) or "")


def test_media_over_the_item_limit_is_not_read_and_is_reported_with_its_size() -> None:
    chat = b"12/01/2024, 09:15 - Ann: IMG-20240112-WA0001.jpg (file attached)\n"
    data = deflate_zip([("_chat.txt", chat, 1), ("IMG-20240112-WA0001.jpg", bytes(MIB), 64)])
    peak = _peak(lambda: read_export(data, "export.zip", ITEM_RULE))
    parsed = read_export(data, "export.zip", ITEM_RULE)
    [message] = parsed.messages
    assert message.attachment_data is None and message.attachment_size == 64 * MIB
    assert [(i.reason, i.line) for i in parsed.issues] == [(IssueReason.MEDIA_TOO_LARGE, 1)]
    assert f"{64 * MIB} bytes" in parsed.issues[0].text
    assert peak < 5 * MIB  # the 64 MiB were never inflated


def test_media_compressed_like_a_bomb_is_refused_unread_even_under_the_item_limit() -> None:
    chat = b"12/01/2024, 09:15 - Ann: IMG-20240112-WA0001.jpg (file attached)\n"
    data = deflate_zip([("_chat.txt", chat, 1), ("IMG-20240112-WA0001.jpg", bytes(MIB), 8)])
    parsed = read_export(data, "export.zip", ITEM_RULE)
    assert parsed.messages[0].attachment_data is None
    assert [i.reason for i in parsed.issues] == [IssueReason.MEDIA_REFUSED]
    assert "ratio" in parsed.issues[0].text


def test_media_whose_header_says_small_but_inflates_big_stops_at_the_declared_size() -> None:
    chat = b"12/01/2024, 09:15 - Ann: IMG-20240112-WA0001.jpg (file attached)\n"
    # The headers say 1,000 bytes; the data inflates to 200 MiB.
    data = deflate_zip([("_chat.txt", chat, 1), ("IMG-20240112-WA0001.jpg", bytes(MIB), 200)],
                       declared={"IMG-20240112-WA0001.jpg": 1000})
    peak = _peak(lambda: read_export(data, "export.zip", ITEM_RULE))
    parsed = read_export(data, "export.zip", ITEM_RULE)
    assert parsed.messages[0].attachment_data is None
    assert [i.reason for i in parsed.issues] == [IssueReason.UNREADABLE_MEDIA]
    assert peak < 5 * MIB


def test_chat_text_whose_header_says_small_but_inflates_big_is_not_read_past_it() -> None:
    data = deflate_zip([("_chat.txt", LINE * 1000, 5000)], declared={"_chat.txt": 5000})
    peak = _peak(lambda: read_export(data, "export.zip", ITEM_RULE))
    parsed = read_export(data, "export.zip", ITEM_RULE)
    assert parsed.messages == []
    assert [i.reason for i in parsed.issues] == [IssueReason.UNREADABLE_ZIP]
    assert peak < 5 * MIB


def test_a_long_chat_text_is_read_line_by_line_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Ann.txt"
    lines = [b"12/01/2024, 09:%02d - Ann: message number %d, long enough to matter\n" % (i % 60, i)
             for i in range(20_000)]
    path.write_bytes(b"".join(lines))  # about 1.4 MB of text
    del lines

    def open_bytes() -> IO[bytes]:
        return path.open("rb")

    count = 0

    def read() -> None:
        nonlocal count
        stream = open_export(open_bytes, path.name, ITEM_RULE)
        for entry in stream.entries():
            count += isinstance(entry, ExportMessage)

    peak = _peak(read)
    assert count == 20_000
    assert peak < MIB // 2  # the text is 1.4 MB (several times that as Python strings): never held whole


def test_a_message_over_the_text_limit_is_cut_and_flagged() -> None:
    text = b"12/01/2024, 09:15 - Ann: start\n" + b"x" * 999 + b"\n" + b"y" * 5000 + b"\n12/01/2024, 09:16 - Ann: ok\n"
    parsed = read_export(text, "chat.txt", ExportLimits(max_text_chars=2000))
    first, second = parsed.messages
    assert first.oversize > 6000 and len(first.text) <= 2000
    assert second.oversize == 0 and second.text == "ok" and second.kind is MessageKind.TEXT
    assert [(i.reason, i.line) for i in parsed.issues] == [(IssueReason.MESSAGE_TOO_LONG, 1)]
