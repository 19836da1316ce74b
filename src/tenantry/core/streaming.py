"""Request bodies read under a limit, and downloads streamed from a generator that always stops — at the end,
or as soon as the client goes away.

Starlette cancels a StreamingResponse on ``http.disconnect`` but leaves a synchronous iterator to the garbage
collector: its ``finally`` (where a download is audited and database work ends) would run late, on the event
loop's thread. ``ClosingStreamingResponse`` closes the generator itself, in a worker thread, when the response
ends for any reason; no ``next()`` runs after that, so no further batch is read.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from typing import Any

import anyio
from starlette.requests import Request
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


async def bounded_chunks(request: Request, limit: int, too_large: Callable[[str], Exception],
                         what: str = "the body") -> AsyncIterator[bytes]:
    """The request body in the pieces the server receives, refused past ``limit``: by its Content-Length before
    any of it is read, else as soon as the count passes it, so no more than ``limit`` bytes are ever taken in.
    (A Content-Length that is no number never gets here: the HTTP server refuses it.)"""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(f"{what} ({declared} bytes) is over the {limit}-byte limit")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"{what} is over the {limit}-byte limit")
        yield chunk


async def read_bounded(request: Request, limit: int, too_large: Callable[[str], Exception],
                       what: str = "the body") -> bytes:
    """The whole body (at most ``limit`` bytes), as ``bounded_chunks`` reads it."""
    return b"".join([chunk async for chunk in bounded_chunks(request, limit, too_large, what)])
