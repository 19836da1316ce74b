"""RFC 7523 client assertions (``private_key_jwt``) and the access tokens our token endpoint issues: an assertion
made by Authlib's own client helper is accepted; each §3 rule has a named refusal, all ``invalid_client``; the
access token is an RFC 9068 JWT named by our key's ``x5t`` and survives a key rotation."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import pytest
from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import RSAKey

from tenantry.protocols.s2s import errors
from tenantry.protocols.s2s.actor import mint_actor_token
from tenantry.protocols.s2s.assertion import (
    CLIENT_ASSERTION_TYPE,
    mint_access_token,
    unverified_client_id,
    validate_access_token,
    validate_client_assertion,
)
from tenantry.protocols.s2s.certificates import KeyDescriptor, SigningCertificate
from tests.protocols.s2s_support import DAY, NOW, NOW_DT, PARTNER_APP_ID, US, certificate, certificate_now

TOKEN_ENDPOINT = "https://mail.contoso.com/oauth2/token"
ISSUER = "https://mail.contoso.com"
API = "https://mail.contoso.com/api"
CLIENT_ID = PARTNER_APP_ID


class Jtis:
    """The caller's single-use store: a set, as a test double of the database table."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, client_id: str, jti: str, exp: int) -> bool:
        if (client_id, jti) in self.seen:
            return False
        self.seen.add((client_id, jti))
        return True


def _client() -> SigningCertificate:
    return certificate("client")


def _assertion(claims: dict[str, Any] | None = None, *, signing: SigningCertificate | None = None,
               header: dict[str, Any] | None = None, alg: str = "RS256", drop: tuple[str, ...] = ()) -> str:
    signing = signing or _client()
    body = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": TOKEN_ENDPOINT, "iat": NOW, "exp": NOW + 300,
            "jti": "jti-1"}
    body.update(claims or {})
    for name in drop:
        body.pop(name)
    hdr = {"alg": alg, "kid": signing.descriptor.x5t}
    hdr.update(header or {})
    return jwt.encode({k: v for k, v in hdr.items() if v is not None}, body,
                      RSAKey.import_key(signing.private_key), algorithms=[alg])


def _validate(assertion: str, keys: list[KeyDescriptor] | None = None, *, now: int = NOW,
              jtis: Jtis | None = None, **kwargs: Any) -> Any:
    return validate_client_assertion(assertion, [_client().descriptor] if keys is None else keys,
                                     client_id=kwargs.pop("client_id", CLIENT_ID),
                                     audiences=kwargs.pop("audiences", {TOKEN_ENDPOINT, ISSUER}), now=now,
                                     claim_jti=jtis or Jtis(), **kwargs)


def _authlib_assertion(method: Any, secret: Any) -> str:
    """What Authlib's client puts in the token request body: the real client helper, not a re-implementation."""
    auth = SimpleNamespace(client_id=CLIENT_ID, client_secret=secret)
    _, _, body = method(auth, "POST", TOKEN_ENDPOINT, {}, "grant_type=client_credentials")
    form = parse_qs(body)
    assert form["client_assertion_type"] == [CLIENT_ASSERTION_TYPE]
    return form["client_assertion"][0]


# --- interop -------------------------------------------------------------------------------------------------

def test_interop_authlib_private_key_jwt_assertion_with_kid_is_accepted() -> None:
    signing = certificate_now("authlib-client")
    # Authlib does not copy the key's kid into the header; a client passes it as a header, as Entra asks.
    method = PrivateKeyJWT(TOKEN_ENDPOINT, headers={"kid": signing.descriptor.x5t})
    assertion = _authlib_assertion(method, RSAKey.import_key(signing.private_key))
    assert jwt.decode(assertion, signing.descriptor.jwk, algorithms=["RS256"]).header["kid"] == signing.descriptor.x5t
    result = _validate(assertion, [signing.descriptor], now=int(time.time()))
    assert result.client_id == CLIENT_ID and result.thumbprint == signing.descriptor.x5t and result.jti


def test_interop_authlib_private_key_jwt_assertion_without_kid_is_tried_against_each_key() -> None:
    signing = certificate_now("authlib-client")
    assertion = _authlib_assertion(PrivateKeyJWT(TOKEN_ENDPOINT), RSAKey.import_key(signing.private_key))
    keys = [certificate_now("authlib-other").descriptor, signing.descriptor]
    assert _validate(assertion, keys, now=int(time.time())).thumbprint == signing.descriptor.x5t


def test_interop_authlib_client_secret_jwt_is_refused_as_a_mac() -> None:
    assertion = _authlib_assertion(ClientSecretJWT(TOKEN_ENDPOINT), "a shared secret of enough length!!")
    with pytest.raises(errors.AssertionAlgorithmNotAllowed) as info:
        _validate(assertion, [certificate_now("authlib-client").descriptor], now=int(time.time()))
    assert info.value.error == "invalid_client"


def test_unverified_client_id_reads_the_issuer_to_find_the_keys() -> None:
    assert unverified_client_id(_assertion()) == CLIENT_ID
    with pytest.raises(errors.MalformedAssertion):
        unverified_client_id("not a jwt")


# --- RFC 7523 §3 rules ---------------------------------------------------------------------------------------

def test_valid_assertion_is_accepted_and_its_jti_remembered() -> None:
    jtis = Jtis()
    result = _validate(_assertion(), jtis=jtis)
    assert (result.client_id, result.jti, result.expires) == (CLIENT_ID, "jti-1", NOW + 300)
    assert jtis.seen == {(CLIENT_ID, "jti-1")}


def test_audience_list_containing_the_token_endpoint_is_accepted() -> None:
    assert _validate(_assertion({"aud": ["https://elsewhere", TOKEN_ENDPOINT]})).client_id == CLIENT_ID


def test_every_assertion_refusal_is_invalid_client_with_status_401() -> None:
    with pytest.raises(errors.ClientAssertionRefused) as info:
        _validate(_assertion({"aud": "https://elsewhere"}))
    assert info.value.as_dict()["error"] == "invalid_client" and info.value.status_code == 401


def test_replayed_assertion_is_refused() -> None:
    jtis = Jtis()
    _validate(_assertion(), jtis=jtis)
    with pytest.raises(errors.ReplayedAssertion):
        _validate(_assertion(), jtis=jtis)


def test_refused_assertion_does_not_use_up_its_jti() -> None:
    jtis = Jtis()
    with pytest.raises(errors.AssertionAudienceMismatch):
        _validate(_assertion({"aud": "https://elsewhere"}), jtis=jtis)
    assert jtis.seen == set()


def test_assertion_without_jti_is_refused() -> None:
    with pytest.raises(errors.MissingJti):
        _validate(_assertion(drop=("jti",)))


def test_subject_other_than_the_client_is_refused() -> None:
    with pytest.raises(errors.SubjectMismatch):
        _validate(_assertion({"sub": "someone-else"}))


def test_issuer_other_than_the_client_is_refused() -> None:
    with pytest.raises(errors.SubjectMismatch):
        _validate(_assertion({"iss": "someone-else"}))


def test_assertion_for_another_audience_is_refused() -> None:
    with pytest.raises(errors.AssertionAudienceMismatch):
        _validate(_assertion({"aud": "https://fabrikam.com/oauth2/token"}))


def test_assertion_without_audience_is_refused() -> None:
    with pytest.raises(errors.AssertionMissingClaim):
        _validate(_assertion(drop=("aud",)))


def test_assertion_without_exp_is_refused() -> None:
    with pytest.raises(errors.AssertionMissingClaim):
        _validate(_assertion(drop=("exp",)))


def test_expired_assertion_is_refused() -> None:
    with pytest.raises(errors.AssertionExpired):
        _validate(_assertion({"exp": NOW - 121}))


def test_assertion_not_yet_valid_is_refused() -> None:
    with pytest.raises(errors.AssertionNotYetValid):
        _validate(_assertion({"nbf": NOW + 600}))


def test_assertion_living_longer_than_an_hour_is_refused() -> None:
    with pytest.raises(errors.AssertionLifetimeTooLong):
        _validate(_assertion({"exp": NOW + 3600 + 121}))


def test_one_hour_assertion_from_a_client_whose_clock_runs_a_minute_ahead_is_accepted() -> None:
    assert _validate(_assertion({"iat": NOW + 60, "exp": NOW + 60 + 3600})).expires == NOW + 3660


def test_assertion_signed_by_an_unregistered_key_named_by_kid_is_refused() -> None:
    with pytest.raises(errors.AssertionUnknownKey):
        _validate(_assertion(signing=certificate("stranger")))


def test_assertion_without_kid_signed_by_an_unregistered_key_is_refused() -> None:
    with pytest.raises(errors.AssertionBadSignature):
        _validate(_assertion(signing=certificate("stranger"), header={"kid": None}))


def test_assertion_signed_by_a_key_outside_its_registered_dates_is_refused() -> None:
    ended = KeyDescriptor.from_certificate(_client().certificate, end=NOW_DT)
    with pytest.raises(errors.AssertionKeyOutsideValidity):
        _validate(_assertion(), [ended], now=NOW + 1)


def test_assertion_signed_with_rs512_is_refused() -> None:
    with pytest.raises(errors.AssertionAlgorithmNotAllowed):
        _validate(_assertion(alg="RS512"))


@pytest.mark.parametrize("assertion", ["", "one.two", "a.b.c", "x" * 20_000])
def test_malformed_assertion_is_refused(assertion: str) -> None:
    with pytest.raises(errors.MalformedAssertion):
        _validate(assertion)


# --- access tokens -------------------------------------------------------------------------------------------

def _ours() -> SigningCertificate:
    return certificate("ours")


def _access(signing: SigningCertificate | None = None, *, now: int = NOW, **kwargs: Any) -> str:
    return mint_access_token(signing or _ours(), issuer=kwargs.pop("issuer", ISSUER),
                             audience=kwargs.pop("audience", API), client_id=CLIENT_ID, now=now, **kwargs)


def _check(token: str, keys: list[KeyDescriptor] | None = None, *, now: int = NOW) -> Any:
    return validate_access_token(token, [_ours().descriptor] if keys is None else keys, issuer=ISSUER,
                                 audience=API, now=now)


def test_access_token_is_an_rfc_9068_jwt_named_by_our_x5t() -> None:
    token = _access(scope="archive.deposit", jti="t-1", lifetime=600)
    decoded = jwt.decode(token, _ours().descriptor.jwk, algorithms=["RS256"])
    assert decoded.header == {"typ": "at+jwt", "alg": "RS256", "kid": _ours().descriptor.x5t}
    assert decoded.claims == {"iss": ISSUER, "sub": CLIENT_ID, "aud": API, "client_id": CLIENT_ID, "iat": NOW,
                              "nbf": NOW, "exp": NOW + 600, "jti": "t-1", "scope": "archive.deposit"}
    result = _check(token)
    assert (result.client_id, result.scope, result.expires) == (CLIENT_ID, "archive.deposit", NOW + 600)


def test_expired_access_token_is_refused() -> None:
    with pytest.raises(errors.TokenExpired):
        _check(_access(lifetime=600), now=NOW + 600 + 121)


def test_access_token_from_another_issuer_is_refused() -> None:
    with pytest.raises(errors.IssuerMismatch):
        _check(_access(issuer="https://fabrikam.com"))


def test_access_token_for_another_audience_is_refused() -> None:
    with pytest.raises(errors.AudienceMismatch):
        _check(_access(audience="https://mail.contoso.com/other-api"))


def test_access_token_signed_by_a_key_we_do_not_hold_is_refused() -> None:
    with pytest.raises(errors.UnknownThumbprint):
        _check(_access(certificate("stranger")))


def test_actor_token_signed_by_our_key_is_not_taken_for_an_access_token() -> None:
    actor = mint_actor_token(_ours(), US, partner_app_id=PARTNER_APP_ID, now=NOW)
    with pytest.raises(errors.WrongTokenType):
        _check(actor)


def test_access_tokens_from_previous_and_current_keys_validate_during_the_overlap_only_current_after() -> None:
    previous, current = certificate("ours-old", -300, 10), certificate("ours-new", 5, 400)
    keys = [previous.descriptor, current.descriptor]
    overlap, after = NOW + 7 * DAY, NOW + 11 * DAY
    assert _check(_access(previous, now=overlap), keys, now=overlap).thumbprint == previous.descriptor.x5t
    assert _check(_access(current, now=overlap), keys, now=overlap).thumbprint == current.descriptor.x5t
    assert _check(_access(current, now=after), keys, now=after).thumbprint == current.descriptor.x5t
    with pytest.raises(errors.KeyOutsideValidity):
        _check(_access(previous, now=after), keys, now=after)
