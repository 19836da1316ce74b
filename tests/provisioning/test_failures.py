"""Rate, failures and quarantine: 429 Retry-After, retries with back-off, quarantine and release with e-mail."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tenantry.core.clock import as_utc, utcnow
from tenantry.provisioning.client import RateLimiter, retry_after_seconds
from tenantry.provisioning.models import ProvisioningApp
from tests.factories.provisioning import assign
from tests.provisioning.conftest import Peer, SmtpSink, Source

FAST = {"backoff_seconds": 0.01}


class FaultProxy:
    """A proxy in front of the real target that answers the next ``n`` requests with a fault instead."""

    def __init__(self, upstream: str) -> None:
        url = httpx.URL(upstream)
        self.upstream = f"{url.scheme}://{url.host}:{url.port}"   # requests keep their own path
        self.faults: list[tuple[int, dict[str, str]]] = []
        self.fail_after: tuple[int, int] | None = None     # (requests let through, then this status for all)
        self.seen: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy.lock:
                    proxy.seen.append(self.command)
                    fault = proxy.faults.pop(0) if proxy.faults else None
                    if proxy.fail_after is not None:
                        through, status = proxy.fail_after
                        if through <= 0:
                            fault = (status, {})
                        proxy.fail_after = (through - 1, status)
                if fault is not None:
                    status, headers = fault
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                r = httpx.request(self.command, proxy.upstream + self.path, content=body, headers={
                    k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")})
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("content-type", "application/scim+json"))
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        path = httpx.URL(upstream).path
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def fail_next(self, n: int, status: int, **headers: str) -> None:
        with self.lock:
            self.faults.extend((status, dict(headers)) for _ in range(n))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def proxy(target) -> Iterator[FaultProxy]:
    p = FaultProxy(target.base_url)
    yield p
    p.close()


def test_429_retry_after_is_honoured_and_the_object_still_provisioned(src: Source, target, peer: Peer,
                                                                      proxy: FaultProxy) -> None:
    uid = src.user("ann")
    app = src.app(proxy.base_url, target.token, **FAST, users=[uid])
    proxy.fail_next(2, 429, **{"Retry-After": "0"})
    report = src.run(app)
    assert report.status == "succeeded" and report.stats["users_created"] == 1
    assert report.stats["throttled"] == 2
    assert peer.user(src.name("ann")) is not None


def test_a_429_longer_than_the_limit_fails_the_object_and_says_so(src: Source, target, proxy: FaultProxy) -> None:
    uid = src.user("ann")
    app = src.app(proxy.base_url, target.token, max_retry_after=60, **FAST, users=[uid])
    proxy.fail_next(1, 429, **{"Retry-After": "3600"})
    report = src.run(app)
    assert report.stats["users_failed"] == 1
    reason = src.services.provisioning.logs(src.tenant, app, result="failure")[0].reason
    assert "429 Too Many Requests" in reason and "3600" in reason


def test_server_errors_are_retried_with_back_off(src: Source, target, peer: Peer, proxy: FaultProxy) -> None:
    uid = src.user("ann")
    app = src.app(proxy.base_url, target.token, retries=3, **FAST, users=[uid])
    proxy.fail_next(2, 503)
    report = src.run(app)
    assert report.status == "succeeded" and report.stats["retries"] == 2
    assert peer.user(src.name("ann")) is not None


def test_a_server_error_that_outlasts_the_retries_fails_only_that_object(src: Source, target,
                                                                         proxy: FaultProxy) -> None:
    uid = src.user("ann")
    app = src.app(proxy.base_url, target.token, retries=1, **FAST, users=[uid])
    proxy.fail_next(2, 502)
    report = src.run(app)
    assert report.status == "completed_with_failures"
    assert "HTTP 502" in src.services.provisioning.logs(src.tenant, app, result="failure")[0].reason
    # Retried by the next cycle, which succeeds.
    assert src.run(app).stats["users_created"] == 1


def _failing_app(src: Source, target, n: int = 4, **config: Any) -> str:
    ids = [src.user(f"u{i}") for i in range(n)]
    app = src.app(target.base_url, "wrong-token-" + src.tag, quarantine_min_attempts=3,
                  quarantine_retry_minutes=10, concurrency=1, **FAST, **config)
    assign(src.services, src.tenant, app, *ids)
    return app


def test_a_target_that_keeps_failing_puts_the_app_in_quarantine_and_mails_the_admin(
        src: Source, target, smtp: SmtpSink) -> None:
    app = _failing_app(src, target)
    provisioning = src.services.provisioning
    provisioning.set_enabled(src.tenant, app, True)
    before = utcnow()

    report = src.run(app)

    assert report.status == "quarantined"
    assert report.stats["requests"] == 3                     # stopped after 3 of 4: it does not hammer the app
    assert report.stats["not_attempted"] == 1
    stopped = provisioning.logs(src.tenant, app, cycle_id=report.id, result="skipped")[0]
    assert stopped.object_type == "App" and "1 object(s) not attempted, retried next cycle" in stopped.reason
    assert "3 of the last 3 objects attempted failed" in (report.reason or "") and "HTTP 401" in (report.reason or "")
    status = provisioning.status(src.tenant, app)
    assert status.health == "quarantined"
    next_run = datetime.fromisoformat(status.next_run_at)
    assert before + timedelta(minutes=10) <= next_run <= utcnow() + timedelta(minutes=10)
    mails = smtp.to(f"admin.{src.tag}@contoso.com")
    assert len(mails) == 1 and "in quarantine" in mails[0]["Subject"]
    assert "HTTP 401" in mails[0].get_payload()
    notice = provisioning.logs(src.tenant, app, action="notify")[0]
    assert notice.result == "success" and "sent to admin." in notice.reason
    # The watermark did not move: the failed cycle is not counted as done.
    assert status.watermark is None

    # Still failing: the retry interval doubles; no second e-mail.
    report = src.run(app)
    status = provisioning.status(src.tenant, app)
    assert report.status == "quarantined"
    assert datetime.fromisoformat(status.next_run_at) >= utcnow() + timedelta(minutes=19)
    assert len(smtp.to(f"admin.{src.tag}@contoso.com")) == 1


def test_quarantine_is_released_when_the_target_recovers(src: Source, target, peer: Peer, smtp: SmtpSink) -> None:
    app = _failing_app(src, target)
    provisioning = src.services.provisioning
    assert src.run(app).status == "quarantined"
    provisioning.update_app(src.tenant, app, token=target.token)     # the administrator fixes the token

    report = src.run(app)

    assert report.status == "succeeded" and report.stats["users_created"] == 4
    status = provisioning.status(src.tenant, app)
    assert status.health == "healthy" and status.quarantined_at is None and status.watermark
    subjects = [m["Subject"] for m in smtp.to(f"admin.{src.tag}@contoso.com")]
    assert len(subjects) == 2 and "released from quarantine" in subjects[1]
    assert peer.user(src.name("u3")) is not None


def test_an_app_in_quarantine_too_long_is_switched_off_and_the_admin_told(src: Source, target,
                                                                          smtp: SmtpSink) -> None:
    app = _failing_app(src, target, quarantine_max_days=28)
    provisioning = src.services.provisioning
    provisioning.set_enabled(src.tenant, app, True)
    src.run(app)
    with src.services.db.session() as session:
        row = session.get(ProvisioningApp, app)
        assert row is not None and row.quarantined_at is not None
        row.quarantined_at = as_utc(row.quarantined_at) - timedelta(days=29)
    src.run(app)
    status = provisioning.status(src.tenant, app)
    assert status.enabled is False and status.next_run_at is None
    assert "switched off" in smtp.to(f"admin.{src.tag}@contoso.com")[-1]["Subject"]


def test_a_notification_that_cannot_be_sent_is_logged_not_lost(src: Source, target) -> None:
    app = _failing_app(src, target)
    src.services.provisioning.mailer.settings.smtp_host = None  # type: ignore[union-attr]
    assert src.run(app).status == "quarantined"
    notice = src.services.provisioning.logs(src.tenant, app, action="notify")[0]
    assert notice.result == "failure" and "no SMTP server configured" in notice.reason


def test_a_target_that_dies_mid_cycle_is_quarantined_within_the_window(src: Source, target,
                                                                       proxy: FaultProxy) -> None:
    ids = [src.user(f"u{i}") for i in range(10)]
    app = src.app(proxy.base_url, target.token, quarantine_min_attempts=3, concurrency=1, retries=0, **FAST)
    assign(src.services, src.tenant, app, *ids)
    proxy.fail_after = (12, 503)          # 6 users go through (a GET and a POST each), then the app is down
    report = src.run(app)
    # Over the whole cycle 2 failures in 8 would be 25 %; over the last 3 attempts it is 67 %.
    assert report.status == "quarantined"
    assert (report.stats["users_created"], report.stats["users_failed"], report.stats["not_attempted"]) == (6, 2, 2)


def test_a_few_object_failures_do_not_quarantine(src: Source, target) -> None:
    ids = [src.user(f"u{i}") for i in range(6)]
    app = src.app(target.base_url, target.token, quarantine_min_attempts=3, concurrency=1, **FAST)
    config = src.services.provisioning.config(src.tenant, app).model_dump(mode="json")
    config["user_mappings"].append({"target": "nickName2", "type": "expression",
                                    "source": f'Switch([userName], "", "{src.name("u0")}", "x")'})
    src.services.provisioning.configure(src.tenant, app, {"user_mappings": config["user_mappings"]})
    assign(src.services, src.tenant, app, *ids)
    report = src.run(app)       # 1 of 6 fails (17 %, under 40 %)
    assert report.status == "completed_with_failures" and report.stats["users_created"] == 5


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_the_rate_limiter_spaces_requests_evenly(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    slept: list[float] = []
    monkeypatch.setattr("tenantry.provisioning.client.time.monotonic", lambda: clock[0])
    monkeypatch.setattr("tenantry.provisioning.client.time.sleep", lambda s: slept.append(round(s, 6)))
    limiter = RateLimiter(4)            # 4 requests/s: 0.25 s apart
    for _ in range(4):
        limiter.wait()
    assert slept == [0.25, 0.5, 0.75]   # the first goes at once; the clock did not move
    clock[0] += 10                      # idle for a while: no burst credit beyond the next slot
    slept.clear()
    limiter.wait()
    limiter.wait()
    assert slept == [0.25]
    assert not RateLimiter(0).interval  # 0: no limit
