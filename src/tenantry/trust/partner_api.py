"""The routes partners call (``/trust/{realm}/…``), outside the admin API: they answer to a partner's token, not
to an administrator's, so they are included without the ``/api/v1`` guard (``core.registry.add_pages``).

Without a token (what a partner fetches before it can sign anything; docs/security.md "answers without a token"):
``GET …/metadata/json/1`` (auth metadata), ``GET …/.well-known/oauth-authorization-server`` (RFC 8414),
``GET …/jwks`` (RFC 7517), and ``POST …/token`` (RFC 7523: the client authenticates in the body).

With a partner's bearer token (``trust.gate``): ``POST …/mailboxes/{user}/purges``,
``POST …/mailboxes/{user}/conversation-history`` (both ``message/rfc822``), ``PUT|GET …/mailboxes/{user}/
voicemail-greeting`` (audio). Refusals of a token are RFC 6750 §3 answers (401, ``WWW-Authenticate: Bearer``),
of a token request RFC 6749 §5.2 answers; bodies are bounded before they are read whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tenantry.core.errors import Invalid
from tenantry.protocols.s2s import errors
from tenantry.trust.gate import MAX_FORM_BYTES, IssuedToken, PartnerCall, PartnerGate, Realm
from tenantry.trust.unlocks import MAX_GREETING_BYTES, MAX_MESSAGE_BYTES, Deposited, Greeting, PartnerActions

RealmPath = Annotated[str, Path(max_length=256)]
UserPath = Annotated[str, Path(max_length=512)]
T = TypeVar("T")


class TooLarge(Invalid):
    status_code = 413
    code = "too_large"


def oauth_error(exc: errors.S2SError, realm: str | None = None) -> JSONResponse:
    """RFC 6749 §5.2 / RFC 6750 §3: the error body, and a ``WWW-Authenticate`` challenge on a 401."""
    headers = {"Cache-Control": "no-store"}
    if exc.status_code == 401:
        challenge = f'Bearer realm="{realm}", ' if realm else "Bearer "
        # The description is ours and plain text; a quote would end the header's quoted-string, and a header
        # carries ASCII only (RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E).
        description = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in exc.description)
        headers["WWW-Authenticate"] = f'{challenge}error="{exc.error}", error_description="{description}"'
    return JSONResponse(exc.as_dict(), exc.status_code, headers=headers)


async def read_bounded(request: Request, limit: int) -> bytes:
    """The body, refused with 413 by its Content-Length before reading or as soon as it passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body ({int(declared)} bytes) is over the {limit}-byte limit")
    chunks: list[bytes] = []
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise TooLarge(f"the body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def build_router(gate: PartnerGate, actions: PartnerActions) -> APIRouter:
    router = APIRouter(prefix="/trust/{realm}", tags=["partners"])

    def realm_of(realm: str, request: Request) -> Realm:
        return gate.realm(realm, str(request.base_url))

    async def as_partner(realm: Realm, authorization: str | None, then: Callable[[PartnerCall], T]) -> T | Response:
        try:
            call = await run_in_threadpool(gate.authenticate, realm, authorization)
        except errors.S2SError as exc:
            return oauth_error(exc, realm.realm)
        return await run_in_threadpool(then, call)

    @router.get("/metadata/json/1")
    def metadata(realm: RealmPath, request: Request) -> dict[str, Any]:  # dict: the auth metadata document
        return gate.metadata(realm_of(realm, request))

    @router.get("/.well-known/oauth-authorization-server")
    def authorization_server(realm: RealmPath, request: Request) -> dict[str, Any]:  # dict: RFC 8414's document
        return gate.authorization_server(realm_of(realm, request))

    @router.get("/jwks")
    def jwks(realm: RealmPath, request: Request) -> dict[str, Any]:  # dict: RFC 7517's JWK Set
        return gate.jwks(realm_of(realm, request))

    @router.post("/token", response_model=None)
    async def token(realm: RealmPath, request: Request) -> IssuedToken | Response:
        """RFC 6749 §4.4 client credentials with RFC 7523 ``private_key_jwt`` client authentication."""
        where = await run_in_threadpool(realm_of, realm, request)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return oauth_error(errors.S2SError("the token request is a form (application/x-www-form-urlencoded)"))
        try:
            raw = await read_bounded(request, MAX_FORM_BYTES)
            form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=32, strict_parsing=False))
            issued = await run_in_threadpool(gate.issue, where, form)
        except errors.S2SError as exc:
            return oauth_error(exc)
        except (UnicodeDecodeError, ValueError):
            return oauth_error(errors.S2SError("the token request is not a form in UTF-8 of at most 32 fields"))
        # RFC 6749 §5.1: the response carries Cache-Control: no-store.
        return JSONResponse({k: v for k, v in {"access_token": issued.access_token, "token_type": issued.token_type,
                                               "expires_in": issued.expires_in, "scope": issued.scope}.items()
                             if v is not None}, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def message(realm: str, user: str, request: Request, authorization: str | None,
                      write: Callable[[PartnerCall, str, bytes], Deposited]) -> Deposited | Response:
        where = await run_in_threadpool(realm_of, realm, request)
        raw = await read_bounded(request, MAX_MESSAGE_BYTES)
        return await as_partner(where, authorization, lambda call: write(call, user, raw))

    @router.post("/mailboxes/{user}/purges", status_code=201, response_model=None)
    async def deposit(realm: RealmPath, user: UserPath, request: Request,
                      authorization: Annotated[str | None, Header()] = None) -> Deposited | Response:
        """ArchiveApplication: an archived conversation (``message/rfc822``) into Recoverable Items/Purges."""
        return await message(realm, user, request, authorization, actions.deposit)

    @router.post("/mailboxes/{user}/conversation-history", status_code=201, response_model=None)
    async def conversation_history(realm: RealmPath, user: UserPath, request: Request,
                                   authorization: Annotated[str | None, Header()] = None) -> Deposited | Response:
        """UserApplication: a conversation (``message/rfc822``) into the user's Conversation History."""
        return await message(realm, user, request, authorization, actions.conversation_history)

    @router.put("/mailboxes/{user}/voicemail-greeting", response_model=None)
    async def set_greeting(realm: RealmPath, user: UserPath, request: Request,
                           authorization: Annotated[str | None, Header()] = None) -> Greeting | Response:
        """UserApplication: the user's voicemail greeting (an audio body)."""
        where = await run_in_threadpool(realm_of, realm, request)
        data = await read_bounded(request, MAX_GREETING_BYTES)
        kind = request.headers.get("content-type", "")
        return await as_partner(where, authorization, lambda call: actions.set_greeting(call, user, data, kind))

    @router.get("/mailboxes/{user}/voicemail-greeting", response_model=None)
    async def get_greeting(realm: RealmPath, user: UserPath, request: Request,
                           authorization: Annotated[str | None, Header()] = None) -> Response:
        """UserApplication: the greeting's audio, with its SHA-256 in ``ETag``."""
        where = await run_in_threadpool(realm_of, realm, request)
        found = await as_partner(where, authorization, lambda call: actions.greeting(call, user))
        if isinstance(found, Response):
            return found
        info, data = found
        return Response(data, media_type=info.content_type, headers={"ETag": f'"{info.sha256}"'})

    return router
