"""OpenID Connect for a relying party (the console's single sign-on), on Authlib and joserfc: no SQL, no HTTP.

- ``discovery``: the provider's configuration document (OpenID Connect Discovery 1.0) and the issuer's URL;
- ``flow``: the authorization code flow with PKCE — the authorization request, the callback, the token request
  and its answer (RFC 6749 §4.1, RFC 7636, RFC 9207, OpenID Connect Core 1.0 §3.1);
- ``idtoken``: the ID token's validation (Core §3.1.3.7): signature by the provider's JWKS, issuer, audience,
  authorized party, expiry, nonce;
- ``errors``: what each step refuses, as ``OidcError`` subclasses.

The HTTP calls to the provider are the caller's (``tenantry.auth.oidc_http``): these modules take and return data.
"""
