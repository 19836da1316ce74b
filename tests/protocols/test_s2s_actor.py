"""The seed's actor tokens and app+user tokens ([MS-SPS2SAUTH]): what we mint, what we accept, and a named
refusal for every rule — algorithm, thumbprint, key dates, signature, issuer, audience, realm, times, shape."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jws, jwt
from joserfc.jwk import RSAKey

from tenantry.protocols.s2s import errors
from tenantry.protocols.s2s.actor import (
    Recipient,
    mint_actor_token,
    mint_app_user_token,
    validate_actor_token,
    validate_app_user_token,
)
from tenantry.protocols.s2s.certificates import KeyDescriptor, SigningCertificate
from tests.protocols.s2s_support import DAY, HOST, NOW, NOW_DT, OUR_APP_ID, PARTNER_APP_ID, REALM, US, certificate


def _partner() -> SigningCertificate:
    return certificate("partner")


def _keys() -> list[KeyDescriptor]:
    return [_partner().descriptor]


def _mint(signing: SigningCertificate | None = None, recipient: Recipient = US, *, now: int = NOW,
          **kwargs: Any) -> str:
    return mint_actor_token(signing or _partner(), recipient, partner_app_id=kwargs.pop("partner_app_id",
                                                                                         PARTNER_APP_ID),
                            now=now, **kwargs)


def _validate(token: str, keys: list[KeyDescriptor] | None = None, *, now: int = NOW, **kwargs: Any) -> Any:
    return validate_actor_token(token, _keys() if keys is None else keys, kwargs.pop("recipient", US),
                                partner_app_id=kwargs.pop("partner_app_id", PARTNER_APP_ID), now=now, **kwargs)


def _part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def _b64url_json(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _seed_claims(**overrides: Any) -> dict[str, Any]:
    claims = {"aud": f"{OUR_APP_ID}/{HOST}@{REALM}", "iss": f"{PARTNER_APP_ID}@{REALM}", "nbf": NOW,
              "exp": NOW + 3600, "nameid": f"{PARTNER_APP_ID}@{REALM}"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _joserfc_token(claims: dict[str, Any], *, signing: SigningCertificate | None = None, alg: str = "RS256",
                   header: dict[str, Any] | None = None) -> str:
    """A token minted by joserfc directly — not by our mint — as a partner would."""
    signing = signing or _partner()
    hdr = {"typ": "JWT", "alg": alg, "x5t": signing.descriptor.x5t}
    hdr.update(header or {})
    hdr = {k: v for k, v in hdr.items() if v is not None}
    return jwt.encode(hdr, claims, RSAKey.import_key(signing.private_key), algorithms=[alg])


# --- what we mint and accept ---------------------------------------------------------------------------------

def test_actor_token_header_and_claims_follow_the_seed() -> None:
    token = _mint(trusted_for_delegation=True, lifetime=3600)
    header, claims = _part(token, 0), _part(token, 1)
    descriptor = _partner().descriptor
    assert header == {"typ": "JWT", "alg": "RS256", "x5t": descriptor.x5t, "x5t#S256": descriptor.x5t_s256}
    assert claims == {"aud": f"{OUR_APP_ID}/{HOST}@{REALM}", "iss": f"{PARTNER_APP_ID}@{REALM}",
                      "nameid": f"{PARTNER_APP_ID}@{REALM}", "nbf": NOW, "exp": NOW + 3600,
                      "trustedfordelegation": "true"}


def test_valid_actor_token_is_accepted_with_its_partner_key_and_claims() -> None:
    actor = _validate(_mint())
    assert actor.partner_app_id == PARTNER_APP_ID and actor.realm == REALM
    assert actor.thumbprint == _partner().descriptor.x5t
    assert actor.trusted_for_delegation is False
    assert actor.not_before == NOW


def test_key_is_chosen_by_thumbprint_among_several_candidates() -> None:
    keys = [certificate("other").descriptor, certificate("third").descriptor, _partner().descriptor]
    assert _validate(_mint(), keys).thumbprint == _partner().descriptor.x5t


def test_ps256_actor_token_is_accepted() -> None:
    assert _validate(_mint(alg="PS256")).partner_app_id == PARTNER_APP_ID


def test_realm_host_and_app_ids_compare_without_regard_to_case() -> None:
    upper = Recipient(app_id=OUR_APP_ID.upper(), host=HOST.upper(), realm=REALM.upper())
    assert _validate(_mint(recipient=upper, partner_app_id=PARTNER_APP_ID.upper())).realm == REALM


def test_interop_token_minted_by_joserfc_from_the_partner_key_is_accepted() -> None:
    actor = _validate(_joserfc_token(_seed_claims(trustedfordelegation="true")))
    assert actor.trusted_for_delegation is True
    assert actor.nameid == f"{PARTNER_APP_ID}@{REALM}"


def test_app_user_token_carries_the_user_and_a_delegating_actor() -> None:
    actor = _mint(trusted_for_delegation=True)
    outer = mint_app_user_token(actor, US, partner_app_id=PARTNER_APP_ID, nameid="adele@contoso.com",
                                nii="urn:federation:microsoftonline", now=NOW)
    assert outer.endswith(".") and _part(outer, 0)["alg"] == "none"
    token = validate_app_user_token(outer, _keys(), US, partner_app_id=PARTNER_APP_ID, now=NOW)
    assert (token.nameid, token.nii) == ("adele@contoso.com", "urn:federation:microsoftonline")
    assert token.actor.trusted_for_delegation and token.actor.thumbprint == _partner().descriptor.x5t


def test_every_refusal_is_an_invalid_token_with_status_401_and_a_description() -> None:
    with pytest.raises(errors.TokenRefused) as info:
        _validate(_mint(), [certificate("other").descriptor])
    assert info.value.as_dict() == {"error": "invalid_token", "error_description": info.value.description}
    assert info.value.status_code == 401 and info.value.description


# --- algorithm -----------------------------------------------------------------------------------------------

def test_alg_none_is_refused() -> None:
    header = {"typ": "JWT", "alg": "none", "x5t": _partner().descriptor.x5t}
    token = f"{_b64url_json(header)}.{_b64url_json(_seed_claims())}."
    with pytest.raises(errors.AlgorithmNotAllowed):
        _validate(token)


def test_hs256_signed_with_the_partner_public_key_as_secret_is_refused() -> None:
    # The classic key confusion (RFC 8725 §2.1): the public key, known to all, used as an HMAC secret.
    pem = _partner().descriptor.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = {"typ": "JWT", "alg": "HS256", "x5t": _partner().descriptor.x5t}
    # joserfc itself will not make such a key, so the attacker's token is built with hmac.
    signing_input = f"{_b64url_json(header)}.{_b64url_json(_seed_claims())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(errors.AlgorithmNotAllowed):
        _validate(token)


def test_rs512_is_refused_although_rsa() -> None:
    with pytest.raises(errors.AlgorithmNotAllowed):
        _validate(_joserfc_token(_seed_claims(), alg="RS512"))


def test_minting_with_an_algorithm_outside_the_list_is_refused() -> None:
    with pytest.raises(errors.AlgorithmNotAllowed):
        _mint(alg="HS256")


# --- key selection and dates ---------------------------------------------------------------------------------

def test_unknown_thumbprint_is_refused() -> None:
    with pytest.raises(errors.UnknownThumbprint):
        _validate(_mint(certificate("stranger")))


def test_token_naming_no_key_is_refused() -> None:
    with pytest.raises(errors.UnknownThumbprint):
        _validate(_joserfc_token(_seed_claims(), header={"x5t": None}))


def test_x5t_s256_that_does_not_match_is_refused_even_if_x5t_does() -> None:
    wrong = certificate("other").descriptor.x5t_s256
    with pytest.raises(errors.UnknownThumbprint):
        _validate(_joserfc_token(_seed_claims(), header={"x5t#S256": wrong}))


def test_key_whose_registered_dates_have_not_started_is_refused() -> None:
    later = KeyDescriptor.from_certificate(_partner().certificate, start=NOW_DT + timedelta(days=1))
    with pytest.raises(errors.KeyOutsideValidity):
        _validate(_mint(), [later])


def test_key_whose_registered_dates_have_ended_is_refused() -> None:
    ended = KeyDescriptor.from_certificate(_partner().certificate, end=NOW_DT - timedelta(seconds=1))
    with pytest.raises(errors.KeyOutsideValidity):
        _validate(_mint(), [ended])


def test_key_past_its_certificate_end_date_is_refused() -> None:
    short = certificate("short-lived", -10, 1)
    token = _mint(short, now=NOW + 2 * DAY)
    with pytest.raises(errors.KeyOutsideValidity):
        _validate(token, [short.descriptor], now=NOW + 2 * DAY)


# --- signature -----------------------------------------------------------------------------------------------

def test_signature_by_another_key_under_the_partner_thumbprint_is_refused() -> None:
    forged = _joserfc_token(_seed_claims(), signing=certificate("stranger"),
                            header={"x5t": _partner().descriptor.x5t})
    with pytest.raises(errors.BadSignature):
        _validate(forged)


def test_tampered_claims_are_refused() -> None:
    header, _, signature = _mint().split(".")
    tampered = f"{header}.{_b64url_json(_seed_claims(nameid='someone-else@' + REALM))}.{signature}"
    with pytest.raises(errors.BadSignature):
        _validate(tampered)


# --- shape ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!!.???.###", "eyJhbGciOiJSUzI1NiJ9.e30.x" * 800])
def test_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(errors.MalformedToken):
        _validate(token)


def test_claims_that_are_not_a_json_object_are_refused() -> None:
    signing = _partner()
    token = jws.serialize_compact({"alg": "RS256", "x5t": signing.descriptor.x5t}, "[1, 2]",
                                  RSAKey.import_key(signing.private_key), algorithms=["RS256"])
    with pytest.raises(errors.MalformedToken):
        _validate(token)


def test_signature_with_base64_padding_or_standard_alphabet_is_refused() -> None:
    token = _mint()
    with pytest.raises(errors.MalformedToken):
        _validate(token + "==")
    header, payload, signature = token.split(".")
    with pytest.raises(errors.MalformedToken):
        _validate(f"{header}.{payload}.{signature.replace('-', '+').replace('_', '/')}x+")


@pytest.mark.parametrize(("url_safe", "standard"), [("-", "+"), ("_", "/")])
def test_signature_with_one_standard_alphabet_character_is_refused(url_safe: str, standard: str) -> None:
    """The same bytes spelled with one ``+`` (or ``/``) for ``-`` (``_``): the decoder would read it alike (with
    only a warning), so one signature would have two spellings. Refused before decoding."""
    token = next(t for t in (_mint(now=NOW + i) for i in range(64)) if url_safe in t.rsplit(".", 1)[1])
    head, signature = token.rsplit(".", 1)
    with pytest.raises(errors.MalformedToken, match="signature is not base64url"):
        _validate(f"{head}.{signature.replace(url_safe, standard, 1)}")


def test_token_with_a_character_outside_ascii_is_refused() -> None:
    header, payload, signature = _mint().split(".")
    with pytest.raises(errors.MalformedToken, match="not ASCII"):
        _validate(f"{header}.{payload}.{signature[:-2]}é{signature[-1]}")


def test_padding_inside_a_segment_is_refused() -> None:
    header, payload, signature = _mint().split(".")
    with pytest.raises(errors.MalformedToken):
        _validate(f"{header}.{payload}.{signature[:100]}={signature[101:]}")
    with pytest.raises(errors.MalformedToken):
        _validate(f"{header}=.{payload}.{signature}")


def test_signature_spelled_with_stray_bits_in_its_last_character_is_refused() -> None:
    # 256 signature bytes take 342 base64url characters; the last holds 2 data bits and 4 that must be zero.
    token = _mint()
    stray = {"A": "B", "Q": "R", "g": "h", "w": "x"}[token[-1]]
    with pytest.raises(errors.MalformedToken):
        _validate(token[:-1] + stray)


def test_header_with_critical_extensions_is_refused() -> None:
    # RFC 7515 §4.1.11: a recipient that does not understand a listed extension MUST reject the JWS.
    # joserfc will not make one, so it is signed here with cryptography directly.
    header = {"typ": "JWT", "alg": "RS256", "x5t": _partner().descriptor.x5t, "crit": ["urn:x-ext"], "urn:x-ext": 1}
    signing_input = f"{_b64url_json(header)}.{_b64url_json(_seed_claims())}"
    private_key = _partner().private_key
    assert private_key is not None
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(errors.MalformedToken, match="critical"):
        _validate(f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}")


def test_second_token_with_an_already_seen_header_still_has_its_signature_checked() -> None:
    good = _mint()
    assert _validate(good).partner_app_id == PARTNER_APP_ID
    header, payload, _ = good.split(".")
    other_signature = _mint(now=NOW + 1).split(".")[2]
    with pytest.raises(errors.BadSignature):
        _validate(f"{header}.{payload}.{other_signature}")


@pytest.mark.parametrize("claim", ["iss", "aud", "nameid", "exp", "nbf"])
def test_missing_claim_is_refused(claim: str) -> None:
    with pytest.raises(errors.MissingClaim, match=claim):
        _validate(_joserfc_token(_seed_claims(**{claim: None})))


def test_exp_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(errors.MissingClaim):
        _validate(_joserfc_token(_seed_claims(exp="tomorrow")))


# --- issuer, audience, realm ---------------------------------------------------------------------------------

def test_token_from_another_partner_application_is_refused() -> None:
    with pytest.raises(errors.IssuerMismatch):
        _validate(_mint(partner_app_id="00000003-0000-0ff1-ce00-000000000000"))


def test_issuer_without_a_realm_is_refused() -> None:
    with pytest.raises(errors.IssuerMismatch):
        _validate(_joserfc_token(_seed_claims(iss=PARTNER_APP_ID)))


def test_token_for_another_host_is_refused() -> None:
    with pytest.raises(errors.AudienceMismatch):
        _validate(_mint(recipient=Recipient(OUR_APP_ID, "mail.fabrikam.com", REALM)))


def test_token_for_another_application_is_refused() -> None:
    with pytest.raises(errors.AudienceMismatch):
        _validate(_mint(recipient=Recipient("00000003-0000-0ff1-ce00-000000000000", HOST, REALM)))


def test_audience_without_a_host_is_refused() -> None:
    with pytest.raises(errors.AudienceMismatch):
        _validate(_joserfc_token(_seed_claims(aud=f"{OUR_APP_ID}@{REALM}")))


def test_issuer_in_another_realm_is_refused() -> None:
    with pytest.raises(errors.RealmMismatch):
        _validate(_joserfc_token(_seed_claims(iss=f"{PARTNER_APP_ID}@other-realm")))


def test_audience_in_another_realm_is_refused() -> None:
    with pytest.raises(errors.RealmMismatch):
        _validate(_joserfc_token(_seed_claims(aud=f"{OUR_APP_ID}/{HOST}@other-realm")))


def test_nameid_in_another_realm_is_refused() -> None:
    with pytest.raises(errors.RealmMismatch):
        _validate(_joserfc_token(_seed_claims(nameid=f"{PARTNER_APP_ID}@other-realm")))


# --- times ---------------------------------------------------------------------------------------------------

def test_token_not_yet_valid_beyond_the_leeway_is_refused() -> None:
    with pytest.raises(errors.TokenNotYetValid):
        _validate(_mint(now=NOW + 121), now=NOW, leeway=120)


def test_token_not_yet_valid_within_the_leeway_is_accepted() -> None:
    assert _validate(_mint(now=NOW + 119), now=NOW, leeway=120).not_before == NOW + 119


def test_expired_token_beyond_the_leeway_is_refused() -> None:
    with pytest.raises(errors.TokenExpired):
        _validate(_mint(lifetime=60), now=NOW + 60 + 120, leeway=120)


def test_expired_token_within_the_leeway_is_accepted() -> None:
    assert _validate(_mint(lifetime=60), now=NOW + 60 + 119, leeway=120).expires == NOW + 60


# --- app+user tokens -----------------------------------------------------------------------------------------

def _app_user(actor: str, recipient: Recipient = US, *, now: int = NOW) -> str:
    return mint_app_user_token(actor, recipient, partner_app_id=PARTNER_APP_ID, nameid="adele@contoso.com",
                               nii="urn:federation:microsoftonline", now=now)


def _validate_app_user(token: str) -> Any:
    return validate_app_user_token(token, _keys(), US, partner_app_id=PARTNER_APP_ID, now=NOW)


def test_app_user_token_whose_actor_is_not_trusted_for_delegation_is_refused() -> None:
    with pytest.raises(errors.NotTrustedForDelegation):
        _validate_app_user(_app_user(_mint()))


def test_app_user_token_whose_actor_is_forged_is_refused() -> None:
    forged = _joserfc_token(_seed_claims(trustedfordelegation="true"), signing=certificate("stranger"),
                            header={"x5t": _partner().descriptor.x5t})
    with pytest.raises(errors.BadSignature):
        _validate_app_user(_app_user(forged))


def test_app_user_token_without_an_actor_token_is_refused() -> None:
    outer = f"{_b64url_json({'typ': 'JWT', 'alg': 'none'})}.{_b64url_json(_seed_claims(nii='x'))}."
    with pytest.raises(errors.MissingClaim, match="actortoken"):
        _validate_app_user(outer)


def test_app_user_token_whose_outer_layer_claims_a_signature_is_refused() -> None:
    outer = _app_user(_mint(trusted_for_delegation=True))
    with pytest.raises(errors.AlgorithmNotAllowed):
        _validate_app_user(outer + "c2lnbmF0dXJl")


def test_app_user_token_for_another_host_is_refused() -> None:
    outer = _app_user(_mint(trusted_for_delegation=True), Recipient(OUR_APP_ID, "mail.fabrikam.com", REALM))
    with pytest.raises(errors.AudienceMismatch):
        _validate_app_user(outer)


def test_expired_app_user_token_with_a_valid_actor_is_refused() -> None:
    outer = _app_user(_mint(trusted_for_delegation=True), now=NOW - 2 * 3600)
    with pytest.raises(errors.TokenExpired):
        _validate_app_user(outer)


# --- rotation ------------------------------------------------------------------------------------------------

def test_rotation_tokens_from_old_and_new_keys_validate_during_the_overlap_and_only_the_new_after() -> None:
    old = certificate("rotation-old", -300, 10)  # ends NOW + 10 days
    new = certificate("rotation-new", 5, 400)  # published 5 days ahead, overlapping the old for 5 days
    keys = [old.descriptor, new.descriptor]
    before, overlap, after = NOW + 2 * DAY, NOW + 7 * DAY, NOW + 11 * DAY

    assert _validate(_mint(old, now=before), keys, now=before).thumbprint == old.descriptor.x5t
    with pytest.raises(errors.KeyOutsideValidity):
        _validate(_mint(new, now=before), keys, now=before)

    assert _validate(_mint(old, now=overlap), keys, now=overlap).thumbprint == old.descriptor.x5t
    assert _validate(_mint(new, now=overlap), keys, now=overlap).thumbprint == new.descriptor.x5t

    assert _validate(_mint(new, now=after), keys, now=after).thumbprint == new.descriptor.x5t
    with pytest.raises(errors.KeyOutsideValidity):
        _validate(_mint(old, now=after), keys, now=after)
