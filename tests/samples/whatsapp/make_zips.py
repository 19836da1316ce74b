"""Build the two .zip samples of this folder: `python tests/samples/whatsapp/make_zips.py`.

The zips are committed; ``test_committed_zips_are_what_make_zips_builds`` checks they match this script.
Members are stored (not deflated) with a fixed date, so the bytes do not depend on the zlib version.
The media files are short ASCII stand-ins, so the expected JSON can spell them out.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
LRM = "\u200e"

ANDROID_CHAT = "\n".join([
    "12/01/2024, 09:00 - Messages and calls are end-to-end encrypted. No one outside of this chat, not even "
    "WhatsApp, can read or listen to them. Tap to learn more.",
    "12/01/2024, 09:10 - Alice: Photos from the trip",
    "12/01/2024, 09:11 - Alice: IMG-20240112-WA0003.jpg (file attached)",
    "The lake at sunrise",
    "and the boat",
    "12/01/2024, 09:12 - Alice: PTT-20240112-WA0004.opus (file attached)",
    "12/01/2024, 09:13 - Me: VID-20240112-WA0005.mp4 (file attached)",
    "13/01/2024, 10:00 - Me: Itinerary.pdf (file attached)",
    "13/01/2024, 10:01 - Alice: Thanks!",
]) + "\n"

# The video of line 7 is missing on purpose; the sticker is in the zip but no message names it.
ANDROID: dict[str, bytes] = {
    "WhatsApp Chat with Alice.txt": ANDROID_CHAT.encode(),
    "IMG-20240112-WA0003.jpg": b"JPEG:lake",
    "PTT-20240112-WA0004.opus": b"OPUS:voice",
    "Itinerary.pdf": b"%PDF-itinerary",
    "STK-20240112-WA0009.webp": b"WEBP:sticker",
}

IOS_CHAT = "\r\n".join([
    f"[12/01/2024, 09:15:00] Trip Planning: {LRM}Messages and calls are end-to-end encrypted. No one outside of "
    "this chat, not even WhatsApp, can read or listen to them.",
    "[12/01/2024, 09:16:00] Nora: Here are the tickets",
    f"{LRM}[12/01/2024, 09:17:00] Nora: {LRM}<attached: 00000012-PHOTO-2024-01-12-09-17-00.jpg>",
    "Front row!",
    f"{LRM}[12/01/2024, 09:18:00] Omar: {LRM}<attached: 00000013-AUDIO-2024-01-12-09-18-00.opus>",
    f"{LRM}[12/01/2024, 09:19:00] Nora: Tickets.pdf \u2022 {LRM}1 page {LRM}<attached: 00000014-Tickets.pdf>",
    "Print them please",
    f"{LRM}[13/01/2024, 08:00:00] Omar: {LRM}<attached: 00000015-VIDEO-2024-01-13-08-00-00.mp4>",
    "[13/01/2024, 08:01:00] Omar: Got them \U0001f44d",
]) + "\r\n"

# The video of line 8 is missing on purpose.
IOS: dict[str, bytes] = {
    "_chat.txt": IOS_CHAT.encode(),
    "00000012-PHOTO-2024-01-12-09-17-00.jpg": b"JPEG:tickets",
    "00000013-AUDIO-2024-01-12-09-18-00.opus": b"OPUS:omar",
    "00000014-Tickets.pdf": b"%PDF-tickets",
}

ZIPS = {"zip-android-media.zip": ANDROID, "zip-ios-attached.zip": IOS}


def build(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 13, 10, 2, 0))
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def main() -> None:
    for name, members in ZIPS.items():
        (HERE / name).write_bytes(build(members))


if __name__ == "__main__":
    main()
