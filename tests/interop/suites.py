"""Run the two external SCIM conformance suites against a live server, non-interactively.

* ``run_scim2_tester`` runs scim2-tester through the ``scim2 test`` command of scim2-cli
  (or, with ``via="api"``, through ``scim2_tester.check_server`` in a child interpreter,
  which reports JSON and names the resource type of each check).
* ``run_scim_sanity`` runs ``scim-sanity probe --json-output`` (strict mode).

Both run the executables of the running interpreter's environment as subprocesses, with no
standard input and a timeout, and never raise on a failing suite: a crash, a timeout or an
unreadable output is reported as a failure, so ``result.failed == 0 and result.passed > 0``
(``result.ok``) is the only thing a test needs to assert.

``base_url`` is the SCIM root, e.g. ``http://127.0.0.1:8000/scim/v2``; ``token`` is sent as
``Authorization: Bearer <token>``. scim-sanity only accepts the token on its command line,
so use throw-away tokens.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["SuiteResult", "run_scim2_tester", "run_scim_sanity"]

DEFAULT_TIMEOUT = 300.0
"""Seconds a whole suite may run (scim2-server answers both in about 2 s)."""

# scim2_tester.Status names. 0.5.2 only ever reports SUCCESS, ERROR and SKIPPED; the others
# are classified by their documented meaning (COMPLIANT/ACCEPTABLE conform, the rest do not).
_PASSED = frozenset({"SUCCESS", "COMPLIANT", "ACCEPTABLE"})
_SKIPPED = frozenset({"SKIPPED"})
_FAILED = frozenset({"DEVIATION", "ERROR", "CRITICAL"})
_STATUS_LINE = re.compile(r"^(" + "|".join(sorted(_PASSED | _SKIPPED | _FAILED)) + r") (\S.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# check_server run in a child interpreter; prints one JSON list of results on stdout.
_API_DRIVER = """
import json, sys
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server
url, timeout = sys.argv[1], float(sys.argv[2])
headers = {"Authorization": "Bearer " + sys.stdin.readline().strip()}
client = SyncSCIMClient(Client(base_url=url, headers=headers, timeout=timeout))
print(json.dumps([
    {"status": r.status.name, "title": r.title, "reason": r.reason,
     "resource_type": r.resource_type}
    for r in check_server(client)
]))
"""


@dataclass
class SuiteResult:
    """Outcome of one suite run."""

    passed: int
    failed: int
    skipped: int
    failures: list[str]
    """``"<check name>: <reason>"`` of each failed check (or of the crash/timeout)."""
    output: str
    """Raw stdout, followed by stderr when there is any."""
    returncode: int | None = None
    """Exit code of the suite (``None`` on timeout). Both suites exit 1 on any failure."""
    warnings: list[str] = field(default_factory=list)
    """scim-sanity ``warn`` results (they do not fail its exit code)."""

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0

    def report(self) -> str:
        """A summary suited to a pytest assertion message."""
        lines = [f"passed={self.passed} failed={self.failed} skipped={self.skipped}"]
        lines += [f"FAIL {f}" for f in self.failures]
        lines += [f"WARN {w}" for w in self.warnings]
        return "\n".join(lines)


def _executable(name: str) -> str:
    path = Path(sys.executable).parent / name  # not resolved: keep the venv's bin directory
    if not path.exists():
        raise FileNotFoundError(f"{name} is not installed next to {sys.executable}")
    return str(path)


def _run(
    args: list[str], env_extra: dict[str, str], timeout: float, stdin_text: str | None = None
) -> tuple[int | None, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_CLI_")}
    env.update(env_extra)
    env["PYTHONIOENCODING"] = "utf-8"
    env["NO_COLOR"] = "1"
    # The server is on loopback: never send it through a proxy from the environment.
    env["NO_PROXY"] = env["no_proxy"] = ",".join(
        filter(None, [env.get("NO_PROXY"), "127.0.0.1", "localhost", "::1"])
    )
    try:
        proc = subprocess.run(
            args,
            input=stdin_text,
            stdin=subprocess.DEVNULL if stdin_text is None else None,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:

        def text(raw: bytes | str | None) -> str:
            if isinstance(raw, bytes):
                return raw.decode("utf-8", "replace")
            return raw or ""

        return None, text(exc.stdout), text(exc.stderr)
    return proc.returncode, proc.stdout, proc.stderr


def _raw(stdout: str, stderr: str) -> str:
    return stdout + (f"\n--- stderr ---\n{stderr}" if stderr.strip() else "")


def _sanity_check(
    result: SuiteResult, suite: str, rc: int | None, stderr: str, timeout: float
) -> SuiteResult:
    """Turn timeouts, crashes and exit codes the counts do not explain into failures."""
    if rc is None:
        result.failed += 1
        result.failures.append(f"{suite}: timed out after {timeout:g}s")
    elif rc != 0 and result.failed == 0 and result.skipped == 0:
        # scim2 test also exits 1 when a check is only SKIPPED; that is counted, not doubled.
        tail = " ".join(line.strip() for line in stderr.strip().splitlines()[-3:])
        result.failed += 1
        result.failures.append(f"{suite}: exited {rc}: {tail or 'no results'}")
    elif result.passed + result.failed + result.skipped == 0:
        result.failed += 1
        result.failures.append(f"{suite}: reported no results")
    return result


def _tally(checks: list[tuple[str, str, str]], output: str, rc: int | None) -> SuiteResult:
    """Count (status, name, reason) triples."""
    result = SuiteResult(0, 0, 0, [], output, rc)
    for status, name, reason in checks:
        if status in _PASSED:
            result.passed += 1
        elif status in _SKIPPED:
            result.skipped += 1
        else:
            result.failed += 1
            result.failures.append(f"{name}: {reason}" if reason else name)
    return result


def parse_scim2_test_output(stdout: str) -> list[tuple[str, str, str]]:
    """Parse ``scim2 test``: a ``STATUS title`` line per check, then its reason indented by
    two spaces (continuation lines of a multi-line reason are not indented)."""
    checks: list[tuple[str, str, list[str]]] = []
    for line in _ANSI.sub("", stdout).splitlines():
        match = _STATUS_LINE.match(line)
        if match:
            checks.append((match[1], match[2].strip(), []))
        elif checks and line.strip():
            checks[-1][2].append(line.removeprefix("  "))
    return [(status, title, "\n".join(reason)) for status, title, reason in checks]


def run_scim2_tester(
    base_url: str,
    token: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    via: Literal["cli", "api"] = "cli",
) -> SuiteResult:
    """Run every scim2-tester check (discovery, then CRUD + PATCH per resource type)."""
    if via == "api":
        rc, stdout, stderr = _run(
            [sys.executable, "-c", _API_DRIVER, base_url, str(min(timeout, 60.0))],
            {},
            timeout,
            stdin_text=token + "\n",
        )
        try:
            rows: list[dict[str, Any]] = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            rows = []
        checks = [
            (
                row["status"],
                f"{row['resource_type']}/{row['title']}" if row["resource_type"] else row["title"],
                row["reason"] or "",
            )
            for row in rows
        ]
    else:
        rc, stdout, stderr = _run(
            [_executable("scim2"), "--url", base_url, "test"],
            {"SCIM_CLI_HEADERS": f"Authorization: Bearer {token}"},
            timeout,
        )
        checks = parse_scim2_test_output(stdout)
    result = _tally(checks, _raw(stdout, stderr), rc)
    return _sanity_check(result, "scim2-tester", rc, stderr, timeout)


def run_scim_sanity(base_url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT) -> SuiteResult:
    """Run ``scim-sanity probe`` in strict mode; ``error`` results count as failures."""
    rc, stdout, stderr = _run(
        [
            _executable("scim-sanity"),
            "probe",
            base_url,
            "--token",
            token,
            "--i-accept-side-effects",
            "--json-output",
            "--timeout",
            str(max(1, int(min(timeout, 30)))),
        ],
        {},
        timeout,
    )
    try:
        report: dict[str, Any] = json.loads(stdout[stdout.index("{") :])
        rows = report.get("results", [])
    except ValueError:
        rows = []
    status_map = {"pass": "SUCCESS", "skip": "SKIPPED", "fail": "ERROR", "error": "CRITICAL"}
    checks = [
        (status_map[row["status"]], row["name"], row.get("message", ""))
        for row in rows
        if row.get("status") in status_map
    ]
    result = _tally(checks, _raw(stdout, stderr), rc)
    result.warnings = [
        f"{row['name']}: {row.get('message', '')}" for row in rows if row.get("status") == "warn"
    ]
    return _sanity_check(result, "scim-sanity", rc, stderr, timeout)
