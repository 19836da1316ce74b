"""Downloads streamed from a generator that always stops — at the end, or as soon as the client goes away.

Starlette cancels a StreamingResponse on ``http.disconnect`` but leaves a synchronous iterator to the garbage
collector: its ``finally`` (where a download is audited and database work ends) would run late, on the event
loop's thread. ``ClosingStreamingResponse`` closes the generator itself, in a worker thread, when the response
ends for any reason; no ``next()`` runs after that, so no further batch is read.
"""

from __future__ import annotations

import io
from collections.abc import Generator, Mapping
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

CHUNK = 1 << 16


class ClosingStreamingResponse(StreamingResponse):
    def __init__(self, content: Generator[bytes, None, None], *, media_type: str,
                 headers: Mapping[str, str] | None = None) -> None:
        self._source = content
        super().__init__(content, media_type=media_type, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Shielded: the request's scope is being cancelled (the client left), and the close must still
            # run. anyio does not abandon a running worker thread on cancel, so no next() is in flight here.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._source.close)


class ChunkBuffer(io.RawIOBase):
    """A write-only sink that hands its bytes out in pieces (``take``): lets writers made for files (mboxrd,
    zipfile) produce a stream. ``tell`` counts what was written; it cannot seek, so zipfile writes data
    descriptors rather than going back to patch headers."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self.pending = 0
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self.pending += len(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        self.pending = 0
        return out


def in_chunks(data: bytes, size: int = CHUNK) -> Generator[bytes, None, None]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
