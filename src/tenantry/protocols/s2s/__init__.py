"""Server-to-server OAuth as pure protocol code: no SQL, no HTTP (the trust part stores and serves what these
modules compute).

- ``certificates``: self-signed RSA signing certificates (RFC 5280 profile, X.509 v3), DER export and import,
  SHA-1 / SHA-256 thumbprints and their ``x5t`` / ``x5t#S256`` forms (RFC 7515 §4.1.7–4.1.8);
- ``actor``: the seed's self-signed actor tokens and app+user tokens ([MS-SPS2SAUTH], the Exchange ↔ Skype for
  Business OAuth), minted and validated with the key chosen by thumbprint;
- ``assertion``: RFC 7523 §3 client assertions (``private_key_jwt``, RFC 7521 §4.2) and the short-lived access
  tokens our token endpoint issues (RFC 9068 shape, ``kid`` = ``x5t``);
- ``errors``: every refusal, one class each, carrying its OAuth wire code (RFC 6750 §3.1, RFC 6749 §5.2).

JWS signatures are joserfc's throughout: nothing here signs or verifies by hand.
"""
