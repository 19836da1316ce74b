"""The ID token's validation (OpenID Connect Core §3.1.3.7), on tokens signed here with joserfc under a JWKS the
test controls: each rule refuses what breaks it, and nothing but RS/PS/ES signatures is accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from tenantry.protocols.oidc import idtoken
from tenantry.protocols.oidc.errors import IdTokenInvalid, UnknownKey

ISSUER = "https://login.example.com/tenant-1/v2.0"
CLIENT = "tenantry-console"
NONCE = "n-0S6_WzA2Mj"
NOW = int(time.time())
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})
EC = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})
OTHER_RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})   # same kid, another key: a forger's
JWKS = {"keys": [RSA.as_dict(private=False), EC.as_dict(private=False)]}


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "sub": "248289761001", "aud": CLIENT, "exp": NOW + 300, "iat": NOW, "nonce": NONCE,
            "preferred_username": "ada@contoso.com"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(payload: dict[str, Any], key: Any = RSA, alg: str = "RS256", kid: str | None = "rsa-1") -> str:
    header = {"alg": alg, **({"kid": kid} if kid else {})}
    return jwt.encode(header, payload, key, algorithms=[alg])


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def check(token: str, *, nonce: str = NONCE, client: str = CLIENT, now: int = NOW) -> idtoken.IdToken:
    return idtoken.validate(token, idtoken.key_set(JWKS), issuer=ISSUER, client_id=client, nonce=nonce, now=now)


def refused(token: str, **kwargs: Any) -> IdTokenInvalid:
    with pytest.raises(IdTokenInvalid) as caught:
        check(token, **kwargs)
    return caught.value


class TestAccepted:
    @pytest.mark.parametrize(("key", "alg", "kid"), [(RSA, "RS256", "rsa-1"), (RSA, "PS256", "rsa-1"),
                                                     (RSA, "RS512", "rsa-1"), (EC, "ES256", "ec-1")])
    def test_a_token_signed_by_the_providers_key_with_every_claim_right_is_accepted(
            self, key: Any, alg: str, kid: str) -> None:
        token = check(signed(claims(), key, alg, kid))
        assert token.subject == "248289761001" and token.claims["preferred_username"] == "ada@contoso.com"

    def test_several_audiences_with_azp_of_this_client_are_accepted(self) -> None:
        check(signed(claims(aud=[CLIENT, "api://other"], azp=CLIENT)))

    def test_an_expiry_within_the_leeway_of_a_minute_is_accepted(self) -> None:
        check(signed(claims(exp=NOW - 30)))

    def test_a_token_without_kid_is_verified_against_the_keys(self) -> None:
        single = {"keys": [RSA.as_dict(private=False)]}
        idtoken.validate(signed(claims(), kid=None), idtoken.key_set(single), issuer=ISSUER, client_id=CLIENT,
                         nonce=NONCE, now=NOW)


class TestRefused:
    def test_wrong_audience(self) -> None:
        assert refused(signed(claims(aud="someone-else"))).claim == "aud"
        assert refused(signed(claims()), client="another-client").claim == "aud"

    def test_several_audiences_without_azp(self) -> None:
        assert refused(signed(claims(aud=[CLIENT, "api://other"]))).claim == "azp"

    def test_azp_of_another_party(self) -> None:
        assert refused(signed(claims(azp="someone-else"))).claim == "azp"

    def test_bad_signature(self) -> None:
        assert "signature" in refused(signed(claims(), OTHER_RSA)).message
        head, payload, sig = signed(claims()).split(".")
        altered = _b64(claims(sub="admin"))
        assert "signature" in refused(f"{head}.{altered}.{sig}").message

    def test_expired(self) -> None:
        assert refused(signed(claims(exp=NOW - 120))).claim == "exp"
        assert refused(signed(claims()), now=NOW + 301 + 60).claim == "exp"

    def test_issued_in_the_future(self) -> None:
        assert refused(signed(claims(iat=NOW + 600, exp=NOW + 900))).claim == "iat"

    def test_nonce_mismatch_or_missing(self) -> None:
        assert refused(signed(claims()), nonce="the-nonce-this-sign-in-sent").claim == "nonce"
        assert refused(signed(claims(nonce=None))).claim == "nonce"

    def test_wrong_issuer(self) -> None:
        assert refused(signed(claims(iss="https://evil.example.com"))).claim == "iss"
        assert refused(signed(claims(iss=ISSUER + "/"))).claim == "iss"    # identical, not "the same URL"

    def test_alg_none(self) -> None:
        unsigned = f"{_b64({'alg': 'none', 'kid': 'rsa-1'})}.{_b64(claims())}."
        assert "signature" in refused(unsigned).message

    def test_hmac_algorithms_even_keyed_with_the_providers_public_key(self) -> None:
        # RFC 8725 §2.1: the RSA public key taken as an HMAC secret. Never accepted, nor any other HS* token.
        # joserfc will not even make such a key, so the forger's token is made by hand.
        signing_input = f"{_b64({'alg': 'HS256', 'kid': 'rsa-1'})}.{_b64(claims())}"
        mac = hmac.new(RSA.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
        confused = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        assert "signature" in refused(confused).message
        assert "signature" in refused(signed(claims(), OctKey.import_key(b"c" * 32), "HS512")).message

    def test_a_key_the_jwks_does_not_hold(self) -> None:
        stranger = RSAKey.generate_key(2048, parameters={"kid": "rotated-in"})
        with pytest.raises(UnknownKey):
            check(signed(claims(), stranger, kid="rotated-in"))

    def test_missing_subject(self) -> None:
        assert refused(signed(claims(sub=None))).claim == "sub"

    def test_not_a_jws(self) -> None:
        for junk in ("", "a.b", "x" * 20000 + ".a.b", "a.b.c.d.e"):
            refused(junk)


class TestKeySet:
    def test_encryption_and_symmetric_keys_of_a_jwks_are_left_out(self) -> None:
        enc = RSAKey.generate_key(2048, parameters={"kid": "enc-1", "use": "enc"}).as_dict(private=False)
        oct_key = OctKey.import_key(b"k" * 32, parameters={"kid": "oct-1"}).as_dict()
        keys = idtoken.key_set({"keys": [enc, oct_key, RSA.as_dict(private=False)]})
        assert [k.kid for k in keys] == ["rsa-1"]
        with pytest.raises(IdTokenInvalid):
            idtoken.validate(signed(claims(), OctKey.import_key(b"k" * 32), "HS256", "oct-1"), keys, issuer=ISSUER,
                             client_id=CLIENT, nonce=NONCE, now=NOW)

    def test_a_malformed_jwks_is_refused(self) -> None:
        for junk in (None, [], {"keys": "x"}, {"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}):
            with pytest.raises(IdTokenInvalid):
                idtoken.key_set(junk)

    def test_key_set_is_a_joserfc_key_set(self) -> None:
        assert isinstance(idtoken.key_set(JWKS), KeySet)
