"""The public SCIM conformance suites, run against a real server process (tests/interop/conftest.py).

scim2-tester (through scim2-cli) checks discovery, CRUD, attributes/excludedAttributes and PATCH of every
attribute of every schema the server publishes — the GroupTalk extensions included. scim-sanity runs user
and group life cycles, paging and error cases. Both must pass 100%.
"""

from __future__ import annotations

import httpx
import pytest

from tests.interop.conftest import RunningServer
from tests.interop.suites import run_scim2_tester, run_scim_sanity

pytestmark = pytest.mark.interop


def test_scim2_tester_passes_every_check_including_grouptalk_extensions(server: RunningServer) -> None:
    schemas = httpx.get(f"{server.base_url}/Schemas").json()["Resources"]
    assert {s["id"] for s in schemas} >= {
        "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User",
        "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group",
    }
    result = run_scim2_tester(server.base_url, server.token)
    assert result.failed == 0 and result.skipped == 0, result.report()
    # The suite exercised the extension attributes: over 150 checks with them, about 135 without.
    assert result.passed >= 150, result.report()


def test_scim_sanity_probe_passes_with_patch_answering_200(server: RunningServer) -> None:
    result = run_scim_sanity(server.base_url, server.token)
    assert result.failed == 0, result.report()
    assert result.passed >= 25, result.report()


def test_conformance_suites_fail_without_a_valid_token(server: RunningServer) -> None:
    # The same suites against the same server with a wrong token must fail: the checks above can fail.
    result = run_scim2_tester(server.base_url, "not-the-token-at-all")
    assert not result.ok
    sanity = run_scim_sanity(server.base_url, "not-the-token-at-all")
    assert sanity.failed > 0
