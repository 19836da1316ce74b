"""The console's provisioning pages through a TestClient, against a real SCIM target (scim2-server, a process on
loopback): the apps and one app (the token never shown, only that one is set and its host), Test Connection
(success, and a clear failure for an endpoint nothing answers), mappings and scoping, provision on demand with
its steps, the logs and their filters, quarantine and its release, the status part htmx polls; who may do it
(Application Administrator or Organization Management, as the admin API), CSRF on every action, and another
tenant's app id (404)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tenantry.app import create_app
from tenantry.core.access import APPLICATIONS, EDISCOVERY, ORGANIZATION
from tenantry.provisioning.results import AppHealth, LogAction
from tests.console.conftest import Console, signed_in_as
from tests.factories.provisioning import make_app
from tests.interop.conftest import free_port
from tests.provisioning.conftest import Peer, scim2_server  # noqa: F401 - the fixture, shared

TOKEN = "console-secret-token-" + "z" * 16


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page[:1000]
    return found.group(1)


def _user(console: Console, who: str) -> str:
    name = f"{who}.{uuid.uuid4().hex[:6]}@contoso.com"
    return console.user(name, name={"givenName": who.title(), "familyName": "Tester"},
                        emails=[{"type": "work", "value": name, "primary": True}])


def _nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}/scim/v2"


def _quarantined(console: Console) -> Any:
    """An app whose endpoint nothing answers, in quarantine after one cycle (every object failed)."""
    users = [_user(console, f"q{i}") for i in range(3)]
    app = make_app(console.services, console.tenant, _nowhere(), TOKEN, name="Broken", users=users,
                   quarantine_min_attempts=2, retries=0, backoff_seconds=0.01)
    report = console.services.provisioning.run_cycle(console.tenant, app.id)
    assert report.status == "quarantined", report
    return app


def test_the_apps_and_an_app_show_that_a_token_is_set_and_its_host_never_the_token(
        console: Console, scim2_server: Any) -> None:  # noqa: F811 - the imported fixture
    app = make_app(console.services, console.tenant, scim2_server.base_url, TOKEN, name="GroupTalk")
    signed_in_as(console.services, console.client, console.tenant, "apps@contoso.com", [APPLICATIONS])
    listing = console.client.get("/console/provisioning")
    assert listing.status_code == 200, listing.text
    host = scim2_server.base_url.split("//")[1].split("/")[0]      # 127.0.0.1:port
    assert "GroupTalk" in listing.text and f"/console/provisioning/{app.id}" in listing.text and host in listing.text
    assert 'href="/console/provisioning"' in listing.text            # in the navigation
    page = console.client.get(f"/console/provisioning/{app.id}")
    assert page.status_code == 200, page.text
    assert "set (never shown)" in page.text and host in page.text and "Test Connection" in page.text
    assert "No cycle has run yet." in page.text
    by_name = console.client.get("/console/provisioning/GroupTalk")
    assert by_name.status_code == 200 and app.id in by_name.text
    for text in (listing.text, page.text):
        assert TOKEN not in text and "console-secret" not in text


def test_test_connection_shows_success_and_a_clear_failure_for_an_endpoint_nothing_answers(
        console: Console, scim2_server: Any) -> None:  # noqa: F811
    good = make_app(console.services, console.tenant, scim2_server.base_url, scim2_server.token, name="Good")
    bad = make_app(console.services, console.tenant, _nowhere(), TOKEN, name="Unreachable")
    signed_in_as(console.services, console.client, console.tenant, "org@contoso.com", [ORGANIZATION])
    token = _csrf(console.client.get(f"/console/provisioning/{good.id}").text)
    ok = console.client.post(f"/console/provisioning/{good.id}/test-connection", data={"csrf_token": token})
    assert ok.status_code == 200, ok.text
    assert "Test Connection succeeded" in ok.text and "HTTP 200" in ok.text and "failed" not in ok.text
    failed = console.client.post(f"/console/provisioning/{bad.id}/test-connection", data={"csrf_token": token})
    assert failed.status_code == 200
    assert "Test Connection failed" in failed.text and "could not reach the target" in failed.text
    assert TOKEN not in failed.text and scim2_server.token not in ok.text
    ledger = console.services.ledger.entries(console.tenant, target=good.id)
    assert [e.detail.get("via") for e in ledger] == ["console"]
    assert ledger[0].detail["operation"] == "POST /console/provisioning/{app}/test-connection"


def test_the_mappings_page_shows_mappings_scoping_filters_roles_and_who_is_in_scope(console: Console) -> None:
    inside, skipped = _user(console, "inside"), _user(console, "skipped")
    app = make_app(console.services, console.tenant, name="Mapped", users=[inside],
                   scoping_filters=[[{"attribute": "department", "operator": "EQUALS", "value": "Sales"}]])
    console.services.provisioning.assign(console.tenant, app.id, "User", skipped, "Default Access")
    signed_in_as(console.services, console.client, console.tenant, "apps@contoso.com", [APPLICATIONS])
    page = console.client.get(f"/console/provisioning/{app.id}/mappings")
    assert page.status_code == 200, page.text
    text = page.text
    assert "userName" in text and "precedence 1" in text and "externalId" in text        # user mappings
    assert "displayName" in text                                                        # group mappings
    assert "department" in text and "EQUALS" in text and "Sales" in text                # the scoping filter
    assert "1 users in scope, 1 skipped" in text and "not effectively entitled" in text
    assert "Default Access" in text and "(built in)" in text


def test_provision_on_demand_shows_the_steps_and_the_users_log(console: Console, scim2_server: Any) -> None:  # noqa: F811
    ann = _user(console, "ann")
    ann_name = console.services.directory.users_by_id(console.tenant, [ann])[0].user_name
    app = make_app(console.services, console.tenant, scim2_server.base_url, scim2_server.token, name="OnDemand",
                   users=[ann])
    signed_in_as(console.services, console.client, console.tenant, "apps@contoso.com", [APPLICATIONS])
    form = console.client.get(f"/console/provisioning/{app.id}/on-demand")
    assert form.status_code == 200 and 'name="user"' in form.text
    r = console.client.post(f"/console/provisioning/{app.id}/on-demand",
                            data={"csrf_token": _csrf(form.text), "user": ann_name})
    assert r.status_code == 200, r.text
    steps = re.findall(r"<li class=\"[a-z]*\"><strong>([a-z]+)</strong>", r.text)
    assert steps[:2] == ["import", "scope"] and "match" in steps and steps[-1] == "action", steps
    assert "create — success" in r.text
    created = Peer(scim2_server.base_url, scim2_server.token).user(ann_name)
    assert created is not None and created["externalId"] == ann
    log = console.client.get(f"/console/provisioning/{app.id}/logs", params={"user": ann_name})
    assert log.status_code == 200 and ann_name in log.text and "create" in log.text
    unknown = console.client.post(f"/console/provisioning/{app.id}/on-demand",
                                  data={"csrf_token": _csrf(form.text), "user": "nobody@contoso.com"})
    assert unknown.status_code == 200 and "no user &#39;nobody@contoso.com&#39; in this tenant" in unknown.text
    assert [e.detail["user_id"] for e in console.services.ledger.entries(console.tenant, target=app.id)] == [ann]
    # A disabled user is named by userName too: on demand, the app's copy is disabled.
    console.services.scim.patch(console.tenant, "User", ann, {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}]})
    r = console.client.post(f"/console/provisioning/{app.id}/on-demand",
                            data={"csrf_token": _csrf(form.text), "user": ann_name.upper()})
    assert r.status_code == 200 and "no user" not in r.text, r.text[-800:]
    disabled = Peer(scim2_server.base_url, scim2_server.token).user(ann_name)
    assert disabled is not None and disabled["active"] is False


def test_the_logs_filter_by_result_and_action_and_bad_filters_are_an_error_page(console: Console) -> None:
    app = _quarantined(console)
    signed_in_as(console.services, console.client, console.tenant, "apps@contoso.com", [APPLICATIONS])
    url = f"/console/provisioning/{app.id}/logs"
    failures = console.client.get(url, params={"result": "failure"})
    assert failures.status_code == 200 and "could not reach the target" in failures.text
    assert "assigned with role" not in failures.text                    # the assignments succeeded
    assigned = console.client.get(url, params={"action": "assign"}).text
    assert "assigned with role" in assigned and "could not reach the target" not in assigned
    for params, said in (({"result": "maybe"}, "result is one of success, failure, skipped"),
                         ({"action": "explode"}, "action is one of"),
                         ({"cycle": "<script>"}, "cycle is a cycle&#39;s id"),
                         ({"before": "yesterday"}, "before is a log entry&#39;s number"),
                         ({"user": "a\x01b"}, "without control characters")):
        r = console.client.get(url, params=params)
        assert r.status_code == 400 and said in r.text and "<script>" not in r.text, (params, r.text[-600:])


def test_quarantine_is_shown_and_released_by_name_in_the_apps_log(console: Console) -> None:
    app = _quarantined(console)
    user = signed_in_as(console.services, console.client, console.tenant, "apps@contoso.com", [APPLICATIONS])
    page = console.client.get(f"/console/provisioning/{app.id}")
    assert "In quarantine" in page.text and "Release from quarantine" in page.text
    assert "quarantined" in console.client.get("/console/provisioning").text
    r = console.client.post(f"/console/provisioning/{app.id}/release", data={"csrf_token": _csrf(page.text)},
                            follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=released")
    status = console.services.provisioning.status(console.tenant, app.id)
    assert status.health == AppHealth.HEALTHY and status.quarantined_at is None and status.enabled
    page = console.client.get(r.headers["location"]).text
    assert "Released from quarantine" in page and "In quarantine" not in page
    start = console.services.provisioning.logs(console.tenant, app.id, action=LogAction.START)
    assert start and start[0].steps[0].actor == "apps@contoso.com"
    ledger = console.services.ledger.entries(console.tenant, target=app.id)
    assert ledger[0].detail["via"] == "console" and user in ledger[0].actor
    again = console.client.post(f"/console/provisioning/{app.id}/release", data={"csrf_token": _csrf(page)})
    assert again.status_code == 400 and "not in quarantine" in again.text


def test_the_status_part_stops_htmx_polling_when_no_cycle_runs_and_charts_the_last_cycles(
        console: Console) -> None:
    app = _quarantined(console)
    signed_in_as(console.services, console.client, console.tenant, "apps@contoso.com", [APPLICATIONS])
    part = console.client.get(f"/console/provisioning/{app.id}/status", headers={"HX-Request": "true"})
    assert part.status_code == 286 and "No cycle is running" in part.text and "<html" not in part.text
    assert 'data-chart="stacked"' in part.text and '<th scope="col">failed</th>' in part.text
    failed = console.services.provisioning.status(console.tenant, app.id).cycles[0].stats["users_failed"]
    assert failed >= 2 and f'<td class="num" data-value="{failed}">' in part.text     # the users that failed
    # Just after "Run a cycle now", before the cycle has shown up: the part keeps polling, for a while only.
    from tenantry.core.clock import utcnow

    now_ms = int(utcnow().timestamp() * 1000)
    asked = console.client.get(f"/console/provisioning/{app.id}/status", params={"ran": str(now_ms)},
                               headers={"HX-Request": "true"})
    assert asked.status_code == 200 and "A cycle was asked for" in asked.text
    assert "Run a cycle now</button>" in asked.text and " disabled>Run a cycle now" in asked.text
    long_ago = console.client.get(f"/console/provisioning/{app.id}/status", params={"ran": str(now_ms - 60_000)},
                                  headers={"HX-Request": "true"})
    assert long_ago.status_code == 286
    plain = console.client.get(f"/console/provisioning/{app.id}/status", follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == f"/console/provisioning/{app.id}"
    page = console.client.get(f"/console/provisioning/{app.id}").text
    assert 'hx-trigger="every 2s"' not in page and "chart.umd.min.js" in page


def test_scoping_filters_are_changed_in_the_page_validated_and_named_in_the_apps_log(console: Console) -> None:
    app = make_app(console.services, console.tenant, name="Scoped")
    signed_in_as(console.services, console.client, console.tenant, "apps@contoso.com", [APPLICATIONS])
    url = f"/console/provisioning/{app.id}"
    page = console.client.get(url + "/mappings").text
    assert "No scoping filter" in page and "Add clause" in page
    digest = re.findall(r'name="digest" value="([^"]+)"', page)[0]
    base = {"csrf_token": _csrf(page), "digest": digest, "kind": "users", "op": "add"}
    r = console.client.post(url + "/scoping", data={**base, "filter": "new", "attribute": "department",
                                                    "operator": "EQUALS", "value": "Sales"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    config = console.services.provisioning.config(console.tenant, app.id)
    assert [[c.model_dump() for c in f] for f in config.scoping_filters] == [
        [{"attribute": "department", "operator": "EQUALS", "value": "Sales"}]]
    stale = console.client.post(url + "/scoping", data={**base, "filter": "1", "attribute": "title",
                                                        "operator": "IS NOT NULL"})
    assert stale.status_code == 409 and "changed meanwhile" in stale.text       # drawn from the old filters
    page = console.client.get(r.headers["location"]).text
    assert "Scoping filters saved" in page and "Sales" in page
    base["digest"] = re.findall(r'name="digest" value="([^"]+)"', page)[0]
    bad = console.client.post(url + "/scoping", data={**base, "filter": "1", "attribute": "title",
                                                      "operator": "REGEX MATCH", "value": "(unclosed"})
    assert bad.status_code == 200 and "Not changed:" in bad.text and 'value="(unclosed"' in bad.text
    assert len(console.services.provisioning.config(console.tenant, app.id).scoping_filters[0]) == 1
    r = console.client.post(url + "/scoping", data={**base, "filter": "1", "attribute": "title",
                                                    "operator": "IS NOT NULL"}, follow_redirects=False)
    assert r.status_code == 303
    filters = console.services.provisioning.config(console.tenant, app.id).scoping_filters
    assert [c.attribute for c in filters[0]] == ["department", "title"]
    page = console.client.get(r.headers["location"]).text
    digest = re.findall(r'name="digest" value="([^"]+)"', page)[0]
    for clause in ("1", "1"):     # both clauses out: the filter left empty goes
        r = console.client.post(url + "/scoping", data={"csrf_token": _csrf(page), "digest": digest, "kind": "users",
                                                        "op": "remove", "filter": "1", "clause": clause},
                                follow_redirects=False)
        assert r.status_code == 303, r.text
        digest = re.findall(r'name="digest" value="([^"]+)"', console.client.get(r.headers["location"]).text)[0]
    assert console.services.provisioning.config(console.tenant, app.id).scoping_filters == []
    changes = console.services.provisioning.logs(console.tenant, app.id, action=LogAction.CONFIGURE)
    assert len(changes) == 4 and all(e.steps[0].actor == "apps@contoso.com" for e in changes)
    ledger = console.services.ledger.entries(console.tenant, target=app.id)
    assert len(ledger) == 4 and {e.detail["operation"] for e in ledger} == {"POST /console/provisioning/{app}/scoping"}


@pytest.mark.parametrize("action", ["test-connection", "on-demand", "release", "run", "scoping"])
def test_every_action_needs_the_csrf_token_and_changes_nothing_without_it(console: Console, action: str) -> None:
    app = _quarantined(console)
    signed_in_as(console.services, console.client, console.tenant, "apps@contoso.com", [APPLICATIONS])
    entries = len(console.services.provisioning.logs(console.tenant, app.id))
    for data in ({"user": "q0@contoso.com"}, {"user": "q0@contoso.com", "csrf_token": "x" * 43}):
        r = console.client.post(f"/console/provisioning/{app.id}/{action}", data=data)
        assert r.status_code == 403 and "CSRF" in r.text, r.text
    assert console.services.provisioning.status(console.tenant, app.id).health == AppHealth.QUARANTINED
    assert len(console.services.provisioning.logs(console.tenant, app.id)) == entries
    assert not console.services.ledger.entries(console.tenant, target=app.id)


def test_the_roles_are_the_admin_apis_application_administrator_or_organization_management(
        console: Console) -> None:
    app = make_app(console.services, console.tenant, name="Roles")
    signed_in_as(console.services, console.client, console.tenant, "ed@contoso.com", [EDISCOVERY])
    token = _csrf(console.client.get("/console/").text)
    assert 'href="/console/provisioning"' not in console.client.get("/console/").text
    for path in ("", f"/{app.id}", f"/{app.id}/mappings", f"/{app.id}/on-demand", f"/{app.id}/logs"):
        r = console.client.get(f"/console/provisioning{path}")
        assert r.status_code == 403 and "Application Administrator" in r.text and "Roles" not in r.text, path
    for action in ("test-connection", "run", "release", "on-demand", "scoping"):
        r = console.client.post(f"/console/provisioning/{app.id}/{action}", data={"csrf_token": token})
        assert r.status_code == 403 and "Application Administrator" in r.text, action
    assert not console.services.ledger.entries(console.tenant, target=app.id)
    for role in (APPLICATIONS, ORGANIZATION):
        with TestClient(create_app(console.services.settings, console.services)) as other:
            signed_in_as(console.services, other, console.tenant, f"{role.split()[0].lower()}@contoso.com", [role])
            assert other.get(f"/console/provisioning/{app.id}").status_code == 200, role


def test_another_tenants_app_id_is_a_404_page(console: Console) -> None:
    app = _quarantined(console)
    other = f"b-{uuid.uuid4().hex[:8]}"
    console.services.directory.create_tenant(other, "B")
    signed_in_as(console.services, console.client, other, "bob@b.example", [ORGANIZATION])
    token = _csrf(console.client.get("/console/").text)
    assert "Broken" not in console.client.get("/console/provisioning").text
    for path in (app.id, "Broken", f"{app.id}/mappings", f"{app.id}/on-demand", f"{app.id}/logs"):
        r = console.client.get(f"/console/provisioning/{path}")
        assert r.status_code == 404 and "quarantine" not in r.text and "could not reach" not in r.text, path
    r = console.client.get(f"/console/provisioning/{app.id}/status", headers={"HX-Request": "true"})
    assert r.status_code == 404
    for action in ("test-connection", "run", "release", "on-demand", "scoping"):
        r = console.client.post(f"/console/provisioning/{app.id}/{action}", data={"csrf_token": token, "user": "x"})
        assert r.status_code == 404, action
    assert console.services.provisioning.status(console.tenant, app.id).health == AppHealth.QUARANTINED
    assert not console.services.ledger.entries(console.tenant, target=app.id)
