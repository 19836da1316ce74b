"""The routing rules (issue #14 item 3), each on a hand-made snapshot."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tenantry.voice.routing import Outcome, caller_key, route
from tests.voice.sip_support import snapshot

GW1 = "sip:+12065550123@gw1.contoso.com:5068;transport=tls;user=phone"
GW2 = "sip:+12065550123@gw2.contoso.com:5068;transport=tls;user=phone"
GW3 = "sip:+12065550123@10.0.0.3:5060;transport=tcp;user=phone"


class Down:
    """A health view where the named gateways have not answered OPTIONS."""

    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def healthy(self, gateway_name: str) -> bool:
        return gateway_name not in self.names


@pytest.mark.parametrize(
    "caller",
    [
        "sip:alice@contoso.com",
        "alice@contoso.com",
        "<sip:Alice@Contoso.com>",
        "sips:alice@contoso.com:5061;transport=tls",
        "tel:+14255550100",
        "tel:+1-425-555-0100;phone-context=+1",
        "sip:+14255550100@gw1.contoso.com;user=phone",
        "+14255550100",
    ],
)
def test_caller_is_found_by_sip_address_or_line_number_in_every_from_form(caller: str) -> None:
    decision = route(snapshot(), caller, "+12065550123")
    assert decision.outcome is Outcome.REDIRECT
    assert set(decision.contacts) == {GW1, GW2, GW3}


def test_caller_key_of_garbage_is_none() -> None:
    assert caller_key("sip:@") is None
    assert caller_key("tel:abc") is None
    assert caller_key("") is None


@pytest.mark.parametrize("dialled", ["2065550123", "(206) 555-0123", "+1 206 555 0123", "tel:+12065550123",
                                     "sip:+12065550123@us.contoso.com;user=phone", "1-206-555-0123"])
def test_dialled_number_is_normalised_to_e164_with_the_callers_region(dialled: str) -> None:
    decision = route(snapshot(), "alice@contoso.com", dialled)
    assert decision.outcome is Outcome.REDIRECT
    assert decision.number == "+12065550123"
    assert all(c.startswith("sip:+12065550123@") for c in decision.contacts)


def test_national_number_is_read_in_the_callers_own_region() -> None:
    decision = route(snapshot(), "erik@contoso.com", "020 123 4567")
    assert decision.outcome is Outcome.REDIRECT
    assert decision.number == "+31201234567"
    assert decision.contacts == ("sip:+31201234567@gw.ams.contoso.com:5061;transport=tls;user=phone",)


@pytest.mark.parametrize("dialled", ["123", "+1 206 555 01", "not a number", "+999123456789", "", "9" * 60])
def test_invalid_number_is_invalid(dialled: str) -> None:
    decision = route(snapshot(), "alice@contoso.com", dialled)
    assert decision.outcome is Outcome.INVALID
    assert decision.contacts == ()


def test_international_number_is_forbidden_under_international_calls_disallowed() -> None:
    decision = route(snapshot(), "bob@contoso.com", "+442079460958")
    assert decision.outcome is Outcome.FORBIDDEN
    assert "international" in decision.reason
    assert decision.number == "+442079460958"


def test_international_dialled_with_the_idd_prefix_is_still_international() -> None:
    assert route(snapshot(), "bob@contoso.com", "011 44 20 7946 0958").outcome is Outcome.FORBIDDEN


def test_domestic_number_is_allowed_under_international_calls_disallowed() -> None:
    assert route(snapshot(), "bob@contoso.com", "2065550123").outcome is Outcome.REDIRECT


def test_nanp_neighbour_is_domestic_for_a_us_caller() -> None:
    # Canada shares +1 with the US: the same country calling code is not "international".
    assert route(snapshot(), "bob@contoso.com", "+14165550123").outcome is Outcome.REDIRECT


def test_us_number_is_international_for_a_dutch_caller() -> None:
    assert route(snapshot(), "erik@contoso.com", "+12065550123").outcome is Outcome.FORBIDDEN


def test_international_number_is_routed_under_the_default_policy() -> None:
    decision = route(snapshot(), "alice@contoso.com", "+442079460958")
    assert decision.outcome is Outcome.REDIRECT
    assert decision.number == "+442079460958"


def test_site_gateways_order_is_spread_at_random_among_equal_priority_gateways() -> None:
    rng = random.Random(7)
    firsts = Counter(route(snapshot(), "alice@contoso.com", "+12065550123", rng=rng).contacts[0]
                     for _ in range(600))
    assert set(firsts) == {GW1, GW2, GW3}
    assert min(firsts.values()) > 120          # about 200 each


def test_seeded_rng_gives_a_reproducible_order() -> None:
    first = route(snapshot(), "alice@contoso.com", "+12065550123", rng=random.Random(1)).contacts
    again = route(snapshot(), "alice@contoso.com", "+12065550123", rng=random.Random(1)).contacts
    assert first == again


def test_unhealthy_gateways_are_demoted_to_the_end_not_excluded() -> None:
    rng = random.Random(3)
    for _ in range(50):
        decision = route(snapshot(), "alice@contoso.com", "+12065550123", health=Down("gw1.contoso.com"), rng=rng)
        assert decision.contacts[-1] == GW1
        assert set(decision.contacts[:2]) == {GW2, GW3}


def test_all_gateways_unhealthy_still_redirects_to_all_of_them() -> None:
    down = Down("gw1.contoso.com", "gw2.contoso.com", "10.0.0.3")
    decision = route(snapshot(), "alice@contoso.com", "+12065550123", health=down)
    assert decision.outcome is Outcome.REDIRECT
    assert set(decision.contacts) == {GW1, GW2, GW3}


def test_caller_with_no_site_goes_to_the_peer_destination() -> None:
    decision = route(snapshot(), "carol@contoso.com", "+12065550123")
    assert decision.outcome is Outcome.REDIRECT
    assert decision.contacts == ("sip:+12065550123@peer.contoso.com;user=phone",)


def test_caller_with_no_site_and_no_peer_destination_has_no_route() -> None:
    decision = route(snapshot(peer=None), "carol@contoso.com", "+12065550123")
    assert decision.outcome is Outcome.NO_ROUTE


def test_conference_goes_to_the_sites_mediation_servers_in_order() -> None:
    decision = route(snapshot(), "alice@contoso.com", "+12065550123", conference=True)
    assert decision.outcome is Outcome.REDIRECT
    assert decision.contacts == (
        "sip:+12065550123@ms1.contoso.com;user=phone",
        "sip:+12065550123@ms2.contoso.com;user=phone",
    )


def test_unknown_caller_is_not_found() -> None:
    for caller in ("zed@contoso.com", "alice@fabrikam.com", "tel:+19995550100", "sip:@"):
        assert route(snapshot(), caller, "+12065550123").outcome is Outcome.NOT_FOUND


def test_voice_disabled_caller_is_forbidden_before_the_number_is_read() -> None:
    decision = route(snapshot(), "dave@contoso.com", "garbage")
    assert decision.outcome is Outcome.FORBIDDEN
    assert "enterprise voice" in decision.reason


def test_site_missing_from_the_snapshot_or_without_gateways_has_no_route() -> None:
    assert route(snapshot(), "fay@contoso.com", "+12065550123").outcome is Outcome.NO_ROUTE
    assert route(snapshot(), "gus@contoso.com", "+12065550123").outcome is Outcome.NO_ROUTE
    assert route(snapshot(), "gus@contoso.com", "+12065550123", conference=True).outcome is Outcome.NO_ROUTE
