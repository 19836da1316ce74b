"""ETags and conditional requests (protocols.scim.conditions), RFC 7644 §3.14 and the RFC 7232 comparison."""

from __future__ import annotations

import pytest
from scim2_models import PreconditionFailedException

from tenantry.protocols.scim.conditions import check_if_match, check_if_none_match, etag, matches
from tenantry.protocols.scim.errors import NotModified

# RFC 7644 §3.14's example entity-tag: 'ETag: W/"e180ee84f0671b1"'.
RFC_TAG = 'W/"e180ee84f0671b1"'


def test_a_version_is_a_weak_entity_tag() -> None:
    assert etag(3) == 'W/"3"'


@pytest.mark.parametrize("header", [RFC_TAG, '"e180ee84f0671b1"', "*", f'W/"other", {RFC_TAG}', f" {RFC_TAG} "])
def test_the_rfc_tag_is_matched_weakly_in_a_list_or_by_star(header: str) -> None:
    assert matches(header, RFC_TAG)


@pytest.mark.parametrize("header", ['W/"e180ee84f0671b2"', 'W/"E180EE84F0671B1"', "", 'w/"x"'])
def test_other_tags_do_not_match(header: str) -> None:
    assert not matches(header, RFC_TAG)


def test_if_none_match_on_the_current_version_is_304() -> None:
    # RFC 7644 §3.14: "If-None-Match: W/"e180ee84f0671b1"" on a GET of an unchanged resource → 304.
    with pytest.raises(NotModified):
        check_if_none_match(RFC_TAG, RFC_TAG)
    check_if_none_match('W/"e180ee84f0671b2"', RFC_TAG)
    check_if_none_match(None, RFC_TAG)


@pytest.mark.parametrize("header", [None, 'W/"3"', '"3"', "*", 'W/"2", W/"3"'])
def test_if_match_on_the_current_version_or_none_lets_the_write_go_on(header: str | None) -> None:
    check_if_match(header, 3)


@pytest.mark.parametrize("header", ['W/"2"', 'W/"4"', '"03"', ""])
def test_if_match_on_another_version_is_412(header: str) -> None:
    with pytest.raises(PreconditionFailedException) as exc:
        check_if_match(header, 3)
    assert exc.value.status == 412 and 'W/"3"' in (exc.value.detail or "")
