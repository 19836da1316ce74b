"""Zips written by hand for the limit tests: members deflated from one repeated block (a 1 GiB member costs
about a second to make), and headers that can be made to lie about sizes."""

from __future__ import annotations

import struct
import zlib


def deflate_repeated(block: bytes, times: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``block`` × ``times`` and its CRC-32, compressing the block only once: after a
    full flush the compressor starts afresh, so every further copy compresses to the same bytes."""
    piece_maker = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = piece_maker.compress(block) + piece_maker.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty final block
    crc = 0
    for _ in range(times):
        crc = zlib.crc32(block, crc)
    return piece * times + end, crc


def deflate_zip(members: list[tuple[str, bytes, int]], declared: dict[str, int] | None = None) -> bytes:
    """A zip of members given as (name, block, times). ``declared`` makes a member's headers (local and
    central) state another uncompressed size than the data inflates to: a header that lies."""
    out = bytearray()
    central = bytearray()
    for name, block, times in members:
        data, crc = deflate_repeated(block, times)
        size = (declared or {}).get(name, len(block) * times)
        raw = name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), size, len(raw), 0)
        out += raw + data
        central += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(data), size,
                               len(raw), 0, 0, 0, 0, 0, offset) + raw
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + end)
