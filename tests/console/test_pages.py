"""The console's pages through a TestClient: who may open what (roles, server-side), CSRF on its form, and tenant
isolation through a session. The browser walk is tests/console/test_browser.py."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient

from tenantry.app import create_app
from tenantry.core.access import APPLICATIONS, COMPLIANCE, EDISCOVERY, ORGANIZATION
from tests.conftest import user_payload
from tests.console.conftest import Console, signed_in_as


def _client(console: Console) -> TestClient:
    return TestClient(create_app(console.services.settings, console.services))


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page[:1000]
    return found.group(1)


def test_the_root_opens_the_sign_in_form_without_a_session_and_home_with_one(console: Console) -> None:
    r = console.client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/auth/login?next=%2Fconsole%2F"
    assert "Sign in to Tenantry" in console.client.get("/").text
    signed_in_as(console.services, console.client, console.tenant, "alma@contoso.com", [ORGANIZATION])
    home = console.client.get("/")
    assert home.status_code == 200 and str(home.url).endswith("/console/")
    assert "alma@contoso.com" in home.text and console.tenant in home.text and "Sign out" in home.text
    assert "default-src 'none'" in home.headers["content-security-policy"]
    assert home.headers["cache-control"] == "no-store"


def test_a_page_without_a_session_leads_to_the_sign_in_form_and_back(console: Console) -> None:
    assert console.client.get("/console", follow_redirects=False).headers["location"] == "/console/"
    r = console.client.get("/console/users?q=ada", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/auth/login?next=%2Fconsole%2Fusers%3Fq%3Dada"
    r = console.client.get("/console/users", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 204 and r.headers["HX-Redirect"].startswith("/auth/login?next=")


def test_home_shows_only_the_parts_the_roles_may_read(console: Console) -> None:
    signed_in_as(console.services, console.client, console.tenant, "ed@contoso.com", [EDISCOVERY])
    home = console.client.get("/console/").text
    assert "Holds and cases" in home and "Directory" in home
    assert "Data connectors" not in home and "Provisioning" not in home and "Trust" not in home
    assert "SCIM request log" not in home      # not offered in the navigation
    with _client(console) as other:
        signed_in_as(console.services, other, console.tenant, "org@contoso.com", [ORGANIZATION])
        home = other.get("/console/").text
        assert all(part in home for part in ("Directory", "Data connectors", "Provisioning", "Trust",
                                             "SCIM request log"))
        assert "Holds and cases" not in home


def test_a_user_without_organization_management_gets_403_on_the_scim_log(console: Console) -> None:
    signed_in_as(console.services, console.client, console.tenant, "cara@contoso.com", [COMPLIANCE])
    r = console.client.get("/console/scim-log")
    assert r.status_code == 403
    assert "Organization Management" in r.text and "Application Administrator" in r.text
    with _client(console) as apps:
        signed_in_as(console.services, apps, console.tenant, "app@contoso.com", [APPLICATIONS])
        assert apps.get("/console/scim-log").status_code == 200


def test_a_user_with_no_role_is_refused_the_directory(console: Console) -> None:
    signed_in_as(console.services, console.client, console.tenant, "nobody@contoso.com", [])
    assert "hold no administrator role" in console.client.get("/console/").text
    assert console.client.get("/console/users").status_code == 403
    assert console.client.get(f"/console/users/{console.admin}").status_code == 403


def test_users_are_found_by_prefix_and_paged(console: Console) -> None:
    for i in range(55):
        console.user(f"page{i:02d}@contoso.com", displayName=f"Paged {i:02d}")
    console.user("zoe@contoso.com", displayName="Zoë Quote\"s", emails=[{"value": "zq@fabrikam.example"}])
    signed_in_as(console.services, console.client, console.tenant, "alma@contoso.com", [ORGANIZATION])
    first = console.client.get("/console/users", params={"q": "page"})
    assert first.status_code == 200 and "1–50 of 55" in first.text and "page00@contoso.com" in first.text
    assert "page50@contoso.com" not in first.text and "start=51" in first.text
    second = console.client.get("/console/users", params={"q": "page", "start": "51"})
    assert "51–55 of 55" in second.text and "page54@contoso.com" in second.text
    for query in ("Zoë", "zq@fab", "ZOE@"):        # display name, e-mail, user name (case-insensitive)
        found = console.client.get("/console/users", params={"q": query})
        assert "zoe@contoso.com" in found.text and "page00" not in found.text, query
    odd = console.client.get("/console/users", params={"q": 'x" or userName pr or "'})
    assert odd.status_code == 200 and "No user matches" in odd.text      # the text is a value, not a filter
    for wildcard in ("%", "_age", "page0%"):                              # nor a LIKE pattern
        assert "No user matches" in console.client.get("/console/users", params={"q": wildcard}).text, wildcard
    fragment = console.client.get("/console/users", params={"q": "zoe"}, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="results"') and "<html" not in fragment.text


def test_hidden_users_are_listed_only_when_asked(console: Console) -> None:
    hidden = console.services.scim.create(console.tenant, "User", user_payload("svc-hidden@contoso.com"), hidden=True)
    signed_in_as(console.services, console.client, console.tenant, "alma@contoso.com", [ORGANIZATION])
    assert "svc-hidden" not in console.client.get("/console/users", params={"q": "svc"}).text
    assert "svc-hidden" in console.client.get("/console/users", params={"q": "svc", "hidden": "true"}).text
    assert console.client.get(f"/console/users/{hidden['id']}").status_code == 200


def test_user_detail_shows_scim_attributes_phones_licences_and_roles(console: Console) -> None:
    user = console.user("phil@contoso.com", displayName="Phil Phone",
                        phoneNumbers=[{"type": "mobile", "value": "+41 79 123 45 67"}])
    console.services.directory.assign_licence(console.tenant, user, "PHONE_SYSTEM")
    console.services.directory.add_role_group_member(console.tenant, "Compliance Management", user)
    signed_in_as(console.services, console.client, console.tenant, "alma@contoso.com", [ORGANIZATION])
    page = console.client.get(f"/console/users/{user}")
    assert page.status_code == 200
    for text in ("phil@contoso.com", "Phil Phone", "+41 79 123 45 67", "PHONE_SYSTEM", COMPLIANCE):
        assert text in page.text, text


def test_a_form_sent_as_multipart_is_refused_with_415_before_anything_is_read_or_changed(console: Console) -> None:
    """Every plain console form is taken by ``Kit.posted``: a multipart body (files would be spooled to disk
    before the CSRF token is checked) is refused, with the token right, and the user stays as it was."""
    user = console.user("multipart@contoso.com")
    signed_in_as(console.services, console.client, console.tenant, "alma@contoso.com", [ORGANIZATION])
    token = _csrf(console.client.get(f"/console/users/{user}").text)
    r = console.client.post(f"/console/users/{user}/hidden", data={"hidden": "true", "csrf_token": token},
                            files={"junk": ("junk.bin", b"x" * 1024, "application/octet-stream")})
    assert r.status_code == 415 and "application/x-www-form-urlencoded" in r.text
    assert not console.services.directory.users_by_id(console.tenant, [user])[0].hidden


def test_the_hide_action_needs_the_csrf_token_and_organization_management(console: Console) -> None:
    user = console.user("hideme@contoso.com")
    signed_in_as(console.services, console.client, console.tenant, "alma@contoso.com", [ORGANIZATION])
    page = console.client.get(f"/console/users/{user}").text
    assert "Hide from address lists" in page
    refused = console.client.post(f"/console/users/{user}/hidden", data={"hidden": "true"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = console.client.post(f"/console/users/{user}/hidden", data={"hidden": "true", "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    assert not console.services.directory.users_by_id(console.tenant, [user])[0].hidden
    done = console.client.post(f"/console/users/{user}/hidden", data={"hidden": "true", "csrf_token": _csrf(page)},
                               follow_redirects=False)
    assert done.status_code == 303
    assert console.services.directory.users_by_id(console.tenant, [user])[0].hidden
    ledger = console.services.ledger.entries(console.tenant, target=user)
    assert any(e.detail.get("via") == "console" for e in ledger)
    with _client(console) as reader:
        signed_in_as(console.services, reader, console.tenant, "ed@contoso.com", [EDISCOVERY])
        page = reader.get(f"/console/users/{user}").text
        assert "address lists</button>" not in page             # the action is not offered
        r = reader.post(f"/console/users/{user}/hidden", data={"hidden": "false", "csrf_token": _csrf(page)})
        assert r.status_code == 403 and "Organization Management" in r.text   # and refused when sent
    assert console.services.directory.users_by_id(console.tenant, [user])[0].hidden


def test_another_tenants_session_cannot_read_a_users_page_by_id(console: Console) -> None:
    other = f"b-{uuid.uuid4().hex[:8]}"
    console.services.directory.create_tenant(other, "B")
    secret = console.user("secret.person@contoso.com", displayName="A Secret Person")
    signed_in_as(console.services, console.client, other, "bob@b.example", [ORGANIZATION])
    r = console.client.get(f"/console/users/{secret}")
    assert r.status_code == 404 and "A Secret Person" not in r.text
    r = console.client.post(f"/console/users/{secret}/hidden",
                            data={"hidden": "true", "csrf_token": _csrf(console.client.get("/console/").text)})
    assert r.status_code == 404
    assert not console.services.directory.users_by_id(console.tenant, [secret])[0].hidden
    assert "secret.person" not in console.client.get("/console/users", params={"q": "secret"}).text


def test_the_scim_log_page_filters(console: Console) -> None:
    from tenantry.directory.scim_log import ScimRequestRecord

    record = ScimRequestRecord.start("POST")
    record.credential(console.tenant, "tok1", "okta")
    record.target("User", write=True)
    record.entry.describe({"userName": "logged@contoso.com"})
    console.services.scim_log.record(record.finish(409, b'{"scimType":"uniqueness","detail":"taken"}', 3))
    signed_in_as(console.services, console.client, console.tenant, "alma@contoso.com", [ORGANIZATION])
    page = console.client.get("/console/scim-log", params={"outcome": "failure"})
    assert page.status_code == 200 and "logged@contoso.com" in page.text and "uniqueness" in page.text
    assert "logged@contoso.com" not in console.client.get("/console/scim-log", params={"outcome": "success"}).text
    assert console.client.get("/console/scim-log", params={"method": "BREW"}).status_code == 400
    # The filter form sends its empty fields too: an empty status is "any", a wrong one a 400 page.
    every = console.client.get("/console/scim-log", params={"method": "", "outcome": "", "status": "", "name": ""})
    assert every.status_code == 200 and "logged@contoso.com" in every.text
    assert "logged@contoso.com" in console.client.get("/console/scim-log", params={"status": "409"}).text
    assert console.client.get("/console/scim-log", params={"status": "abc"}).status_code == 400


def test_static_files_are_served_from_the_package(console: Console) -> None:
    js = console.client.get("/console/static/htmx.min.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "htmx 2.0." in js.text[:200]
    assert console.client.get("/console/static/console.css").status_code == 200
    chart = console.client.get("/console/static/chart.umd.min.js")
    assert chart.status_code == 200 and b"Chart.js v4.6.1" in chart.content
    assert b"figure.chart" in console.client.get("/console/static/charts.js").content
    assert console.client.get("/console/static/../service.py").status_code == 404
    assert console.client.get("/console/static/%2e%2e/service.py").status_code == 404


def test_home_shows_each_parts_state(console: Console) -> None:
    from tests.conftest import administrator, as_admin

    services, tenant = console.services, console.tenant
    boss = administrator(services, tenant)
    services.connectors.create(tenant, name="Sales phones", kind="whatsapp-export", by=as_admin(services, tenant, boss),
                               accept_terms=True)
    services.compliance.place_hold(tenant, name="Litigation", actor="test", user_id=console.admin)
    services.provisioning.create_app(tenant, name="Slack", tenant_url="http://127.0.0.1:9/scim/v2", token="t",
                                     actor=boss)
    services.trust.create_partner(tenant, name="Teams", application_id=str(uuid.uuid4()))
    signed_in_as(services, console.client, tenant, "all@contoso.com", [ORGANIZATION, COMPLIANCE])
    home = console.client.get("/console/")
    assert home.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", home.text))
    for fact in ("Sales phones", "never run", "active holds 1", "Slack", "healthy", "partner applications 1",
                 "certificate and key dates"):
        assert fact in text, (fact, text)
