"""The SIP redirect service fed from the database: one tenant's routing snapshot, re-read in a thread every few
seconds, so that routing a call never waits on SQL (``voice.sip_server`` asks ``LiveSnapshot()`` per INVITE).

A change made with ``tenantry voice …`` or the API reaches the SIP service within ``every`` seconds
(``TENANTRY_VOICE_SNAPSHOT_SECONDS``, 5 by default). A failed re-read keeps the last good snapshot and is
logged: calls keep being routed as before rather than refused.
"""

from __future__ import annotations

import logging
import threading

from tenantry.voice.service import VoiceService
from tenantry.voice.snapshot import RoutingSnapshot

log = logging.getLogger(__name__)


class LiveSnapshot:
    def __init__(self, voice: VoiceService, tenant: str, *, every: float = 5.0) -> None:
        self.voice = voice
        self.tenant = tenant
        self.every = every
        self._current = voice.routing_snapshot(tenant)   # the first read fails loudly: a wrong tenant, no database
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self) -> RoutingSnapshot:
        return self._current

    def refresh(self) -> None:
        self._current = self.voice.routing_snapshot(self.tenant)

    def start(self) -> LiveSnapshot:
        self._thread = threading.Thread(target=self._run, name="voice-snapshot", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.every + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.refresh()
            except Exception:   # the database away for a moment: keep routing with what we have
                log.warning("voice snapshot of %s not re-read; routing with the last one", self.tenant, exc_info=True)


def serve_in_thread(voice: VoiceService, tenant: str, *, host: str, port: int, every: float) -> threading.Thread:
    """``tenantry serve`` with ``TENANTRY_VOICE_SIP_ENABLED``: the SIP redirect service beside the web server, in a
    daemon thread with its own event loop (it ends with the process)."""
    from tenantry.voice import sip_server

    source = LiveSnapshot(voice, tenant, every=every).start()
    thread = threading.Thread(target=sip_server.run, args=(host, port, source), name="voice-sip", daemon=True)
    thread.start()
    return thread
