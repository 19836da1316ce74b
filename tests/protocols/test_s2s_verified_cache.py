"""The verified-signature cache of ``_jws.verify``: a token whose signature verified is not verified again while
the same key applies and before its ``exp`` — and every other check still runs on every call."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tenantry.protocols.s2s import _jws, errors
from tenantry.protocols.s2s.actor import mint_actor_token, validate_actor_token
from tenantry.protocols.s2s.certificates import KeyDescriptor
from tests.protocols.s2s_support import NOW, NOW_DT, PARTNER_APP_ID, US, certificate


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    _jws.clear_verified_cache()
    yield
    _jws.clear_verified_cache()


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the RSA signature checks (``_jws._signature_verifies``), still doing them."""
    calls: list[str] = []
    real = _jws._signature_verifies

    def counting(alg: str, key: KeyDescriptor, signing_input: bytes, signature: bytes) -> bool:
        calls.append(alg)
        return real(alg, key, signing_input, signature)

    monkeypatch.setattr(_jws, "_signature_verifies", counting)
    return calls


def _partner_key() -> KeyDescriptor:
    return certificate("partner").descriptor


def _mint(*, now: int = NOW, lifetime: int = 3600) -> str:
    return mint_actor_token(certificate("partner"), US, partner_app_id=PARTNER_APP_ID, now=now, lifetime=lifetime)


def _validate(token: str, keys: list[KeyDescriptor], *, now: int = NOW) -> Any:
    return validate_actor_token(token, keys, US, partner_app_id=PARTNER_APP_ID, now=now)


def test_second_validation_of_the_same_token_does_not_check_the_signature_again(signature_checks: list[str]) -> None:
    token = _mint()
    first, second = _validate(token, [_partner_key()]), _validate(token, [_partner_key()])
    assert signature_checks == ["RS256"]
    assert first == second and second.thumbprint == _partner_key().x5t


def test_claims_of_a_cache_hit_are_a_fresh_dict_each_time() -> None:
    token = _mint()
    first = _validate(token, [_partner_key()])
    first.claims["iss"] = "tampered@elsewhere"
    assert _validate(token, [_partner_key()]).claims["iss"] == f"{PARTNER_APP_ID}@{US.realm}"


def test_token_is_refused_once_its_key_is_no_longer_registered() -> None:
    token = _mint()
    _validate(token, [_partner_key()])
    with pytest.raises(errors.UnknownThumbprint):
        _validate(token, [certificate("other").descriptor])


def test_token_is_refused_once_its_key_registration_has_ended() -> None:
    token = _mint()
    _validate(token, [_partner_key()])
    ended = KeyDescriptor.from_certificate(certificate("partner").certificate, end=NOW_DT - timedelta(seconds=1))
    with pytest.raises(errors.KeyOutsideValidity):
        _validate(token, [ended])


def test_descriptor_under_the_same_thumbprints_with_another_public_key_gets_no_hit(
        signature_checks: list[str]) -> None:
    token = _mint()
    _validate(token, [_partner_key()])
    stranger = certificate("stranger").descriptor
    impostor = dataclasses.replace(_partner_key(), public_key=stranger.public_key, jwk=stranger.jwk)
    with pytest.raises(errors.BadSignature):
        _validate(token, [impostor])
    assert signature_checks == ["RS256", "RS256"]


def test_an_equal_descriptor_rebuilt_from_the_same_certificate_gets_a_hit(signature_checks: list[str]) -> None:
    token = _mint()
    _validate(token, [_partner_key()])
    rebuilt = KeyDescriptor.from_certificate(certificate("partner").certificate)
    assert rebuilt is not _partner_key()
    assert _validate(token, [rebuilt]).thumbprint == rebuilt.x5t
    assert signature_checks == ["RS256"]


def test_times_are_checked_on_a_hit_and_the_entry_is_dropped_after_exp(signature_checks: list[str]) -> None:
    token = _mint(lifetime=60)
    _validate(token, [_partner_key()])
    with pytest.raises(errors.TokenNotYetValid):
        _validate(token, [_partner_key()], now=NOW - 3600)
    with pytest.raises(errors.TokenExpired):
        _validate(token, [_partner_key()], now=NOW + 60 + _jws.LEEWAY_SECONDS)
    assert token not in _jws._verified
    assert signature_checks == ["RS256", "RS256"]  # after exp the signature is checked again, then times refuse


def test_algorithm_allow_list_applies_to_a_cached_token() -> None:
    token = _mint()
    _validate(token, [_partner_key()])
    with pytest.raises(errors.AlgorithmNotAllowed):
        _jws.verify(token, [_partner_key()], now=NOW, algorithms=("PS256",))


def test_a_token_whose_signature_fails_is_not_remembered() -> None:
    header, payload, _ = _mint().split(".")
    forged = f"{header}.{payload}.{_mint(now=NOW + 1).split('.')[2]}"
    for _ in range(2):
        with pytest.raises(errors.BadSignature):
            _validate(forged, [_partner_key()])
    assert not _jws._verified


def test_an_expired_token_is_not_remembered() -> None:
    token = _mint(lifetime=60)
    _validate(token, [_partner_key()], now=NOW + 60 + 1)  # within the leeway: accepted
    assert token not in _jws._verified


def test_cache_is_bounded_and_forgets_the_least_recently_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_jws, "VERIFIED_CACHE_SIZE", 2)
    first, second, third = (_mint(now=NOW + i) for i in range(3))
    for token in (first, second, first, third):  # first used again: second is the least recently used
        _validate(token, [_partner_key()], now=NOW + 10)
    assert list(_jws._verified) == [first, third]


def test_threads_validating_more_tokens_than_the_cache_holds_all_succeed_and_the_bound_holds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache has no lock (each OrderedDict call is atomic under the GIL): eight threads inserting, hitting and
    evicting at once over a cache of 8 still validate every token, and the cache stays within its bound."""
    import sys
    import threading

    monkeypatch.setattr(_jws, "VERIFIED_CACHE_SIZE", 8)
    tokens = [_mint(now=NOW - i) for i in range(24)]
    keys = [_partner_key()]
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def work(offset: int) -> None:
        start.wait()
        try:
            for n in range(300):
                token = tokens[(offset * 5 + n) % len(tokens)]
                assert _validate(token, keys).thumbprint == keys[0].x5t
        except BaseException as exc:  # noqa: BLE001 - any failure in a thread fails the test
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)   # threads switch between almost any two bytecodes
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(switch)
    assert failures == []
    assert len(_jws._verified) <= 8 + 8   # at most one pending eviction per thread beyond the bound
