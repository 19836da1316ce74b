"""The relying party's protocol rules, without network: the discovery document (Discovery 1.0 §3, §4.3), the
authorization request with PKCE (Core §3.1.2.1, RFC 7636), the callback (RFC 6749 §4.1.2, RFC 9207), the token
request (RFC 6749 §4.1.3, §2.3.1) and its answer."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tenantry.protocols.oidc import discovery, flow
from tenantry.protocols.oidc.errors import CallbackError, DiscoveryError, TokenError

ISSUER = "https://server.example.com"


def document(**changes: Any) -> dict[str, Any]:
    """Discovery 1.0 §4.2's example response (the fields a relying party reads), changed as asked."""
    base: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": "https://server.example.com/connect/authorize",
        "token_endpoint": "https://server.example.com/connect/token",
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "userinfo_endpoint": "https://server.example.com/connect/userinfo",
        "jwks_uri": "https://server.example.com/jwks.json",
        "scopes_supported": ["openid", "profile", "email", "address", "phone", "offline_access"],
        "response_types_supported": ["code", "code id_token", "id_token", "id_token token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
        "claims_supported": ["sub", "iss", "auth_time", "acr", "name", "email", "email_verified"],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def metadata(**changes: Any) -> discovery.ProviderMetadata:
    return discovery.parse_metadata(document(**changes), ISSUER)


class TestDiscovery:
    def test_the_specifications_example_document_is_read(self) -> None:
        meta = metadata()
        assert (meta.authorization_endpoint, meta.token_endpoint, meta.jwks_uri) == (
            "https://server.example.com/connect/authorize", "https://server.example.com/connect/token",
            "https://server.example.com/jwks.json")
        assert discovery.well_known_url("https://login.example.com/tenant/v2.0/") == \
            "https://login.example.com/tenant/v2.0/.well-known/openid-configuration"

    def test_an_issuer_that_is_not_identical_is_refused(self) -> None:
        for other in (ISSUER + "/", "https://SERVER.example.com", "https://evil.example.com", None):
            with pytest.raises(DiscoveryError, match="identical"):
                discovery.parse_metadata(document(issuer=other), ISSUER)

    @pytest.mark.parametrize("missing", ["authorization_endpoint", "token_endpoint", "jwks_uri",
                                         "response_types_supported", "subject_types_supported",
                                         "id_token_signing_alg_values_supported"])
    def test_a_required_field_missing_is_refused(self, missing: str) -> None:
        with pytest.raises(DiscoveryError):
            metadata(**{missing: None})

    def test_a_provider_without_the_code_flow_or_pkce_s256_is_refused(self) -> None:
        with pytest.raises(DiscoveryError, match="authorization code"):
            metadata(response_types_supported=["id_token"])
        with pytest.raises(DiscoveryError, match="S256"):
            metadata(code_challenge_methods_supported=["plain"])

    def test_endpoints_must_be_https(self) -> None:
        with pytest.raises(DiscoveryError, match="https"):
            metadata(token_endpoint="http://server.example.com/connect/token")

    def test_http_is_accepted_on_loopback_only_and_only_when_allowed(self) -> None:
        assert discovery.check_issuer("http://127.0.0.1:8080", allow_http_loopback=True)
        assert discovery.check_issuer("http://localhost:8080", allow_http_loopback=True)
        with pytest.raises(DiscoveryError, match="ALLOW_LOOPBACK"):
            discovery.check_issuer("http://127.0.0.1:8080")
        with pytest.raises(DiscoveryError, match="https"):
            discovery.check_issuer("http://idp.example.com", allow_http_loopback=True)

    def test_an_issuer_with_a_query_fragment_or_credentials_is_refused(self) -> None:
        for bad in ("https://idp.example.com?x=1", "https://idp.example.com#f", "https://u:p@idp.example.com",
                    "https://", "idp.example.com", "https://idp.example.com/a b"):
            with pytest.raises(DiscoveryError):
                discovery.check_issuer(bad)


class TestAuthorizationRequest:
    def test_the_request_asks_for_a_code_with_state_nonce_and_a_pkce_s256_challenge(self) -> None:
        request = flow.authorization_request(metadata(), client_id="c1", redirect_uri="https://t.example/cb",
                                             scopes=["profile", "email"])
        url = urlsplit(request.url)
        assert f"{url.scheme}://{url.netloc}{url.path}" == "https://server.example.com/connect/authorize"
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert query["response_type"] == "code" and query["client_id"] == "c1"
        assert query["redirect_uri"] == "https://t.example/cb" and query["scope"] == "openid profile email"
        assert query["state"] == request.state and query["nonce"] == request.nonce
        assert query["code_challenge_method"] == "S256"
        digest = hashlib.sha256(request.code_verifier.encode()).digest()
        assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert 43 <= len(request.code_verifier) <= 128
        assert request.code_verifier not in request.url

    def test_every_request_has_its_own_secrets(self) -> None:
        one, two = (flow.authorization_request(metadata(), client_id="c", redirect_uri="https://t/cb", scopes=[])
                    for _ in range(2))
        assert len({one.state, two.state, one.nonce, two.nonce, one.code_verifier, two.code_verifier}) == 6
        assert len(one.state) >= 43


class TestCallback:
    def test_the_code_is_taken_from_a_response_of_the_right_issuer(self) -> None:
        assert flow.authorization_code({"code": "SplxlOBeZQQYbYS6WxSbIA", "state": "s", "iss": ISSUER},
                                       metadata()) == "SplxlOBeZQQYbYS6WxSbIA"

    def test_a_response_naming_another_issuer_is_refused(self) -> None:
        with pytest.raises(CallbackError, match="RFC 9207"):
            flow.authorization_code({"code": "c", "iss": "https://evil.example.com"}, metadata())

    def test_a_response_without_iss_from_a_provider_that_sends_it_is_refused(self) -> None:
        meta = metadata(authorization_response_iss_parameter_supported=True)
        with pytest.raises(CallbackError, match="RFC 9207"):
            flow.authorization_code({"code": "c"}, meta)

    def test_an_error_response_is_refused_with_the_providers_error(self) -> None:
        with pytest.raises(CallbackError) as caught:
            flow.authorization_code({"error": "access_denied", "error_description": "User cancelled"}, metadata())
        assert caught.value.error == "access_denied" and "User cancelled" in caught.value.message

    def test_a_response_without_a_code_is_refused(self) -> None:
        with pytest.raises(CallbackError, match="no authorization code"):
            flow.authorization_code({"state": "s"}, metadata())


class TestTokenRequest:
    def test_the_code_is_exchanged_with_the_verifier_and_basic_client_authentication(self) -> None:
        request = flow.token_request(metadata(), client_id="c1", client_secret="s3cret", code="abc",
                                     redirect_uri="https://t.example/cb", code_verifier="v" * 64)
        assert request.url == "https://server.example.com/connect/token"
        assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"c1:s3cret").decode()
        body = {k: v[0] for k, v in parse_qs(request.body).items()}
        assert body == {"grant_type": "authorization_code", "code": "abc", "redirect_uri": "https://t.example/cb",
                        "code_verifier": "v" * 64}

    def test_client_secret_post_when_the_provider_offers_only_that(self) -> None:
        meta = metadata(token_endpoint_auth_methods_supported=["client_secret_post"])
        request = flow.token_request(meta, client_id="c1", client_secret="s3cret", code="abc",
                                     redirect_uri="https://t/cb", code_verifier="v" * 64)
        body = {k: v[0] for k, v in parse_qs(request.body).items()}
        assert "Authorization" not in request.headers
        assert (body["client_id"], body["client_secret"]) == ("c1", "s3cret")

    def test_the_answer_gives_its_id_token_or_is_refused(self) -> None:
        assert flow.id_token_of(200, {"access_token": "a", "token_type": "Bearer", "id_token": "x.y.z"}) == "x.y.z"
        with pytest.raises(TokenError, match="invalid_grant"):
            flow.id_token_of(400, {"error": "invalid_grant", "error_description": "code used"})
        with pytest.raises(TokenError, match="no id_token"):
            flow.id_token_of(200, {"access_token": "a", "token_type": "Bearer"})
        with pytest.raises(TokenError):
            flow.id_token_of(200, ["not", "an", "object"])
