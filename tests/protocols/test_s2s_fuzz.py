"""Whatever arrives in an Authorization header, the validators answer with one of their own refusals — never
another exception, never an acceptance of a token changed by even one character."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantry.protocols.s2s import errors
from tenantry.protocols.s2s.actor import mint_actor_token, validate_actor_token, validate_app_user_token
from tenantry.protocols.s2s.assertion import validate_access_token, validate_client_assertion
from tenantry.protocols.s2s.certificates import KeyDescriptor
from tests.protocols.s2s_support import NOW, PARTNER_APP_ID, US, certificate

SEGMENT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.{}\"é", max_size=80)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _keys() -> list[KeyDescriptor]:
    return [certificate("partner").descriptor]


def _all_validators(token: str) -> None:
    for validate in (
        lambda: validate_actor_token(token, _keys(), US, partner_app_id=PARTNER_APP_ID, now=NOW),
        lambda: validate_app_user_token(token, _keys(), US, partner_app_id=PARTNER_APP_ID, now=NOW),
        lambda: validate_access_token(token, _keys(), issuer="https://x", audience="https://x/api", now=NOW),
        lambda: validate_client_assertion(token, _keys(), client_id=PARTNER_APP_ID, audiences={"https://x"},
                                          now=NOW, claim_jti=lambda *_: True),
    ):
        with pytest.raises(errors.S2SError):
            validate()


@FUZZ
@given(st.lists(SEGMENT, min_size=1, max_size=5).map(".".join))
def test_arbitrary_text_is_refused_with_a_protocol_error(token: str) -> None:
    _all_validators(token)


@FUZZ
@given(st.data())
def test_a_valid_actor_token_changed_in_one_character_is_refused(data: st.DataObject) -> None:
    token = mint_actor_token(certificate("partner"), US, partner_app_id=PARTNER_APP_ID, now=NOW)
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from("AQgw-_.xZ0=+/").filter(lambda c: c != token[index]))
    changed = token[:index] + replacement + token[index + 1:]
    with pytest.raises(errors.TokenRefused):
        validate_actor_token(changed, _keys(), US, partner_app_id=PARTNER_APP_ID, now=NOW)
