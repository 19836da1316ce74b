"""The partner endpoints (``/trust/{realm}/…``), on both backends: the documents partners fetch, the RFC 7523
token endpoint, and what trust unlocks — each accepting only a valid token of an enabled partner whose linked
account holds the role, refusing everything else by a named rule, and recording every call in the ledger."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws, jwt
from joserfc.jwk import OctKey, RSAKey

from tenantry.app import Services
from tenantry.archive.compliance import PURGES
from tenantry.protocols.s2s.actor import Recipient, mint_actor_token, mint_app_user_token
from tenantry.protocols.s2s.assertion import CLIENT_ASSERTION_TYPE
from tenantry.protocols.s2s.certificates import SigningCertificate, certificate_der
from tenantry.trust.service import SERVICE_NAME
from tenantry.trust.unlocks import CONVERSATION_HISTORY
from tests.conftest import user_payload
from tests.protocols.s2s_support import certificate_now

SFB = "00000004-0000-0ff1-ce00-000000000000"
HOST = "testserver"   # TestClient's host: the audience's host when no public_url is set


@dataclass
class Partner:
    tenant: str
    realm: str
    id: str
    account: str
    signing: SigningCertificate
    user: str           # a mailbox user of the tenant
    user_name: str

    @property
    def base(self) -> str:
        return f"/trust/{self.realm}"

    @property
    def recipient(self) -> Recipient:
        return Recipient(SERVICE_NAME, HOST, self.realm)


def _partner(backend: Services, tenant: str, *, roles: tuple[str, ...] = ("ArchiveApplication", "UserApplication"),
             name: str = "sfb-partner") -> Partner:
    """The seed's steps done through the services: a hidden application account on a verified domain with the
    roles assigned directly, the partner linked to it, and the partner's own signing certificate on its
    service principal (beside ours)."""
    directory = backend.directory
    domain = f"{tenant.lower()}.contoso.test"
    directory.add_domain(tenant, domain, verified=True)
    account = directory.create_mail_user(tenant, "SfBOnline-ApplicationAccount",
                                         f"sfbonline-applicationaccount@{domain}", hidden=True)
    for role in roles:
        directory.assign_role(tenant, account.id, role)
    partner = backend.trust.create_partner(tenant, name="SfBOnline", application_id=SFB, linked_account=account.id)
    config = backend.trust.auth_config(tenant)
    backend.trust.add_service_principal_key(tenant, partner.id, backend.trust.export_certificate(tenant))
    signing = certificate_now(name)
    backend.trust.add_service_principal_key(tenant, partner.id, certificate_der(signing.certificate))
    user_name = f"alice@{domain}"
    user = backend.scim.create(tenant, "User", user_payload(user_name, emails=[
        {"type": "work", "value": user_name, "primary": True}]))["id"]
    return Partner(tenant, config.realm, partner.id, account.id, signing, user, user_name)


def _assertion(p: Partner, *, audience: str | None = None, jti: str | None = None,
               signing: SigningCertificate | None = None, lifetime: int = 300) -> str:
    signing = signing or p.signing
    now = int(time.time())
    claims = {"iss": SFB, "sub": SFB, "aud": audience or f"http://{HOST}{p.base}/token", "iat": now,
              "exp": now + lifetime, "jti": jti or str(uuid.uuid4())}
    return jwt.encode({"alg": "RS256", "kid": signing.descriptor.x5t}, claims, RSAKey.import_key(signing.private_key))


def _token_request(client: TestClient, p: Partner, **form: str) -> Any:
    body = {"grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": _assertion(p)}
    body.update(form)
    return client.post(f"{p.base}/token", data=body)


def _access_token(client: TestClient, p: Partner, **form: str) -> str:
    r = _token_request(client, p, **form)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _actor_token(p: Partner, *, delegate: bool = False, signing: SigningCertificate | None = None) -> str:
    return mint_actor_token(signing or p.signing, p.recipient, partner_app_id=SFB, now=int(time.time()),
                            trusted_for_delegation=delegate)


def _message(subject: str = "Archived conversation", body: str = "alice: the merger is on") -> bytes:
    return (f"From: alice@contoso.com\r\nTo: bob@contoso.com\r\nSubject: {subject}\r\n"
            f"Date: Mon, 30 Nov 2026 09:00:00 +0000\r\nMessage-ID: <{uuid.uuid4()}@sfb.contoso.com>\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


def _deposit(client: TestClient, p: Partner, token: str, raw: bytes | None = None, user: str | None = None) -> Any:
    return client.post(f"{p.base}/mailboxes/{user or p.user}/purges", content=raw or _message(),
                       headers={"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"})


def _partner_calls(backend: Services, tenant: str) -> list[dict[str, Any]]:
    return [dict(e.detail, actor=e.actor, target=e.target)
            for e in backend.ledger.entries(tenant, action="partner.call", limit=100)]


# -- the documents partners fetch --------------------------------------------------------------------------------

def test_jwks_publishes_current_next_and_previous_keys_by_x5t(app_client: TestClient, backend: Services,
                                                              tenant: str) -> None:
    config = backend.trust.auth_config(tenant)
    first = app_client.get(f"/trust/{config.realm}/jwks")
    assert first.status_code == 200
    assert [k["kid"] for k in first.json()["keys"]] == [
        base64.urlsafe_b64encode(bytes.fromhex(config.current_certificate_thumbprint)).rstrip(b"=").decode()]
    backend.trust.publish_next(tenant)
    keys = app_client.get(f"/trust/{config.realm}/jwks").json()["keys"]
    assert len(keys) == 2 and all(k["kty"] == "RSA" and "d" not in k and k["use"] == "sig" for k in keys)


def test_auth_metadata_names_our_issuer_audience_keys_and_token_endpoint(app_client: TestClient,
                                                                         backend: Services, tenant: str) -> None:
    config = backend.trust.auth_config(tenant)
    doc = app_client.get(f"/trust/{config.realm}/metadata/json/1").json()
    assert doc["issuer"] == f"{SERVICE_NAME}@{config.realm}"
    assert doc["allowedAudiences"] == [f"{SERVICE_NAME}/{HOST}@{config.realm}"]
    assert base64.b64decode(doc["keys"][0]["keyvalue"]["value"]) == backend.trust.export_certificate(tenant)
    assert doc["endpoints"][0]["location"] == f"http://{HOST}/trust/{config.realm}/token"
    rfc8414 = app_client.get(f"/trust/{config.realm}/.well-known/oauth-authorization-server").json()
    assert rfc8414["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert rfc8414["jwks_uri"].endswith(f"/trust/{config.realm}/jwks")


def test_an_unknown_realm_is_404_for_every_partner_route(app_client: TestClient) -> None:
    realm = str(uuid.uuid4())
    for method, path in (("GET", "/jwks"), ("GET", "/metadata/json/1"), ("POST", "/token"),
                         ("POST", "/mailboxes/x/purges")):
        assert app_client.request(method, f"/trust/{realm}{path}").status_code == 404


# -- the token endpoint ------------------------------------------------------------------------------------------

def test_token_endpoint_issues_a_short_lived_bearer_access_token(app_client: TestClient, backend: Services,
                                                                 tenant: str) -> None:
    p = _partner(backend, tenant)
    r = _token_request(app_client, p, scope="ArchiveApplication")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600 and body["scope"] == "ArchiveApplication"
    header = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[0] + "=="))
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"


@pytest.mark.parametrize(("form", "error"), [
    ({"grant_type": "password"}, "unsupported_grant_type"),
    ({"grant_type": ""}, "invalid_request"),
    ({"client_assertion_type": "urn:other"}, "invalid_client"),
    ({"client_assertion": "not.a.jwt"}, "invalid_client"),
    ({"scope": "Organization-Management"}, "invalid_scope"),
    ({"client_id": "00000009-0000-0ff1-ce00-000000000000"}, "invalid_client"),
])
def test_token_requests_are_refused_by_rfc6749_error(app_client: TestClient, backend: Services, tenant: str,
                                                      form: dict[str, str], error: str) -> None:
    p = _partner(backend, tenant)
    r = _token_request(app_client, p, **form)
    assert r.status_code in (400, 401) and r.json()["error"] == error, r.text


def test_token_endpoint_refuses_a_replayed_assertion(app_client: TestClient, backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant)
    once = _assertion(p)
    assert _token_request(app_client, p, client_assertion=once).status_code == 200
    r = _token_request(app_client, p, client_assertion=once)
    assert r.status_code == 401 and "already been used" in r.json()["error_description"]


def test_token_endpoint_refuses_an_assertion_for_another_audience(app_client: TestClient, backend: Services,
                                                                  tenant: str) -> None:
    p = _partner(backend, tenant)
    r = _token_request(app_client, p, client_assertion=_assertion(p, audience="https://elsewhere.example/token"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_our_own_certificate_on_the_service_principal_never_authenticates_the_partner(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant)
    ours = backend.partner_gate._signer(tenant)
    r = _token_request(app_client, p, client_assertion=_assertion(p, signing=ours))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_a_disabled_partner_gets_no_token_and_its_issued_token_stops_working(app_client: TestClient,
                                                                             backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant)
    token = _access_token(app_client, p)
    backend.trust.set_enabled(tenant, p.id, False)
    assert _token_request(app_client, p).json()["error"] == "invalid_client"
    r = _deposit(app_client, p, token)
    assert r.status_code == 401 and "disabled" in r.json()["error_description"]
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert backend.archive.count(tenant, p.user) == 0


def test_token_request_must_be_a_bounded_form(app_client: TestClient, backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant)
    assert app_client.post(f"{p.base}/token", json={"grant_type": "client_credentials"}).status_code == 400
    big = {"grant_type": "client_credentials", "pad": "x" * 70_000}
    assert app_client.post(f"{p.base}/token", data=big).status_code == 413


# -- what trust unlocks ------------------------------------------------------------------------------------------

def test_deposit_with_an_access_token_lands_in_purges_and_is_found_by_ediscovery(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant)
    token = _access_token(app_client, p)
    r = _deposit(app_client, p, token, _message(subject="Quarterly merger chat", body="zebracorn terms agreed"))
    assert r.status_code == 201, r.text
    assert r.json()["folder"] == PURGES and r.json()["stored"] is True
    items = backend.archive.items(tenant, p.user, PURGES)
    assert [i.subject for i in items] == ["Quarterly merger chat"] and items[0].source == "partner:SfBOnline"
    case = backend.ediscovery.create_case(tenant, "Merger", "test")
    backend.ediscovery.add_custodians(tenant, case.id, [p.user], "test")
    assert backend.ediscovery.run_search(tenant, case.id, "zebracorn", "test").count == 1
    # A content search leaves Recoverable Items out unless asked, as for deleted items.
    assert backend.ediscovery.content_search(tenant, "zebracorn", "test").count == 0
    assert backend.ediscovery.content_search(tenant, "zebracorn", "test", include_purges=True).count == 1
    (call,) = _partner_calls(backend, tenant)
    assert call["outcome"] == "stored" and "SfBOnline (partner" in call["actor"] and call["target"] == p.user
    deliver = backend.ledger.entries(tenant, action="deliver", limit=1)[0]
    assert deliver.actor == call["actor"]


def test_the_same_deposit_twice_is_one_item(app_client: TestClient, backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant)
    token = _access_token(app_client, p)
    raw = _message()
    assert _deposit(app_client, p, token, raw).json()["stored"] is True
    assert _deposit(app_client, p, token, raw).json()["stored"] is False
    assert backend.archive.count(tenant, p.user, PURGES) == 1


def test_seed_actor_token_minted_by_joserfc_from_the_partners_key_is_accepted(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    """Not our minting code: the seed's claims and header put together here and signed by joserfc."""
    p = _partner(backend, tenant)
    now = int(time.time())
    claims = {"aud": f"{SERVICE_NAME}/{HOST}@{p.realm}", "iss": f"{SFB}@{p.realm}", "nbf": now, "exp": now + 3600,
              "nameid": f"{SFB}@{p.realm}"}
    header = {"typ": "JWT", "alg": "RS256", "x5t": p.signing.descriptor.x5t}
    token = jws.serialize_compact(header, json.dumps(claims), RSAKey.import_key(p.signing.private_key))
    r = _deposit(app_client, p, token)
    assert r.status_code == 201, r.text
    assert _partner_calls(backend, tenant)[0]["token"] == "actor token"


def test_app_user_token_acts_in_its_users_mailbox_only(app_client: TestClient, backend: Services,
                                                       tenant: str) -> None:
    p = _partner(backend, tenant)
    other = backend.scim.create(tenant, "User", user_payload(f"bob@{tenant.lower()}.contoso.test"))["id"]
    actor = _actor_token(p, delegate=True)
    token = mint_app_user_token(actor, p.recipient, partner_app_id=SFB, nameid=p.user_name, nii="urn:tenantry:user",
                                now=int(time.time()))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"}
    r = app_client.post(f"{p.base}/mailboxes/{p.user_name}/conversation-history", content=_message(),
                        headers=headers)
    assert r.status_code == 201, r.text
    assert backend.archive.count(tenant, p.user, CONVERSATION_HISTORY) == 1
    r = app_client.post(f"{p.base}/mailboxes/{other}/conversation-history", content=_message(), headers=headers)
    assert r.status_code == 403 and "acts for" in r.json()["message"]
    assert backend.archive.count(tenant, other) == 0


def test_app_user_token_whose_actor_is_not_trusted_for_delegation_is_refused(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant)
    token = mint_app_user_token(_actor_token(p, delegate=False), p.recipient, partner_app_id=SFB,
                                nameid=p.user_name, nii="urn:tenantry:user", now=int(time.time()))
    r = app_client.post(f"{p.base}/mailboxes/{p.user}/conversation-history", content=_message(),
                        headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "trustedfordelegation" in r.json()["error_description"]


def test_wrong_role_is_403_naming_the_role_nothing_written_and_the_refusal_recorded(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant, roles=("UserApplication",))
    r = _deposit(app_client, p, _access_token(app_client, p))
    assert r.status_code == 403
    assert "'ArchiveApplication'" in r.json()["message"] and "role-assignment new" in r.json()["message"]
    assert backend.archive.count(tenant, p.user) == 0
    (call,) = _partner_calls(backend, tenant)
    assert call["outcome"] == "refused: needs ArchiveApplication"


def test_a_scope_narrows_the_roles_an_access_token_carries(app_client: TestClient, backend: Services,
                                                           tenant: str) -> None:
    p = _partner(backend, tenant)
    token = _access_token(app_client, p, scope="UserApplication")
    assert _deposit(app_client, p, token).status_code == 403


def test_refused_tokens_are_401_with_a_bearer_challenge(app_client: TestClient, backend: Services,
                                                        tenant: str) -> None:
    p = _partner(backend, tenant)
    stranger = certificate_now("stranger")
    signed = _actor_token(p).split(".")
    unsigned = ".".join((base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"none"}').rstrip(b"=").decode(), signed[1],
                         ""))                      # the partner's own claims, alg none, no signature
    for token in ("", "not-a-jwt", _actor_token(p, signing=stranger), unsigned,
                  jwt.encode({"alg": "HS256"}, {"iss": f"{SFB}@{p.realm}"}, OctKey.import_key(b"k" * 32))):
        r = _deposit(app_client, p, token)
        assert r.status_code == 401, (token, r.text)
        assert r.headers["www-authenticate"].startswith(f'Bearer realm="{p.realm}"')
    assert backend.archive.count(tenant, p.user) == 0


def test_a_partner_key_outside_its_dates_verifies_nothing(app_client: TestClient, backend: Services,
                                                          tenant: str) -> None:
    p = _partner(backend, tenant)
    for key in backend.trust.service_principal(tenant, p.id).keys:
        backend.trust.remove_service_principal_key(tenant, p.id, key.key_id)
    expired = certificate_der(p.signing.certificate)
    yesterday = datetime.now(UTC) - timedelta(days=1)   # the registration ended yesterday, the certificate did not
    backend.trust.add_service_principal_key(tenant, p.id, expired, start=yesterday - timedelta(days=10), end=yesterday)
    r = _deposit(app_client, p, _actor_token(p))
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"


def test_another_tenants_partner_token_is_refused_in_this_realm(app_client: TestClient, backend: Services,
                                                                tenant: str) -> None:
    p = _partner(backend, tenant)
    other_tenant = f"other-{uuid.uuid4().hex[:8]}"
    backend.directory.create_tenant(other_tenant, other_tenant)
    q = _partner(backend, other_tenant, name="sfb-partner-2")
    # q's access token and actor token, presented at p's realm, for p's user.
    for token in (_access_token(app_client, q), _actor_token(q)):
        r = _deposit(app_client, p, token)
        assert r.status_code == 401, r.text
    # p's token at q's realm for q's user.
    assert _deposit(app_client, q, _access_token(app_client, p)).status_code == 401
    assert backend.archive.count(tenant, p.user) == 0 and backend.archive.count(other_tenant, q.user) == 0


def test_access_tokens_from_the_old_certificate_validate_during_the_overlap_only(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant)
    old = _access_token(app_client, p)
    backend.trust.publish_next(tenant)
    backend.trust.switch(tenant, force=True)
    new = _access_token(app_client, p)
    assert _deposit(app_client, p, old).status_code == 201
    assert _deposit(app_client, p, new).status_code == 201
    backend.trust.retire_previous(tenant)
    assert _deposit(app_client, p, old).status_code == 401
    assert _deposit(app_client, p, new).status_code == 201


def test_voicemail_greeting_set_and_read_back(app_client: TestClient, backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant)
    h = {"Authorization": f"Bearer {_access_token(app_client, p)}"}
    url = f"{p.base}/mailboxes/{p.user}/voicemail-greeting"
    assert app_client.get(url, headers=h).status_code == 404
    audio = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(200)
    r = app_client.put(url, content=audio, headers={**h, "Content-Type": "audio/wav"})
    assert r.status_code == 200, r.text
    got = app_client.get(url, headers=h)
    assert got.content == audio and got.headers["content-type"] == "audio/wav"
    assert app_client.put(url, content=b"hello", headers={**h, "Content-Type": "text/plain"}).status_code == 400
    assert app_client.put(url, content=bytes(6 * 1024 * 1024), headers={**h, "Content-Type": "audio/wav"}
                          ).status_code == 413
    assert app_client.get(url, headers=h).content == audio
    assert [c["call"] for c in reversed(_partner_calls(backend, tenant))] == [
        "read a voicemail greeting", "set a voicemail greeting", "read a voicemail greeting",
        "set a voicemail greeting", "read a voicemail greeting"]
    assert _partner_calls(backend, tenant)[1]["outcome"].startswith("refused: a voicemail greeting is audio")


def test_voicemail_greeting_needs_user_application(app_client: TestClient, backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant, roles=("ArchiveApplication",))
    h = {"Authorization": f"Bearer {_access_token(app_client, p)}", "Content-Type": "audio/wav"}
    r = app_client.put(f"{p.base}/mailboxes/{p.user}/voicemail-greeting", content=b"RIFF", headers=h)
    assert r.status_code == 403 and "'UserApplication'" in r.json()["message"]


def test_a_body_that_is_no_message_is_refused_and_nothing_stored(app_client: TestClient, backend: Services,
                                                                  tenant: str) -> None:
    p = _partner(backend, tenant)
    token = _access_token(app_client, p)
    assert _deposit(app_client, p, token, b"just some words").status_code == 400
    assert backend.archive.count(tenant, p.user) == 0


def test_a_deposit_for_an_unknown_user_is_404(app_client: TestClient, backend: Services, tenant: str) -> None:
    p = _partner(backend, tenant)
    assert _deposit(app_client, p, _access_token(app_client, p), user="nobody@nowhere.test").status_code == 404
