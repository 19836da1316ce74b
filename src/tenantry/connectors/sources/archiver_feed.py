"""An archiver's JSON feed (the TeleMessage role): pulled over HTTPS with a user name and password.

The feed protocol (ours, documented in docs/connectors.md and served by ``connectors.feed_server`` for tests
and demos): ``GET <url>/items?since=<ISO>&until=<ISO>[&cursor=<c>]`` with HTTP Basic auth answers
``{"items": [...], "next": <cursor or null>}``. Attachments come inline (``data_base64``) or by ``url``
(fetched with the same credentials, so only from the feed's own origin: an attachment URL on another host is
reported, never fetched). A malformed item is reported with its id, never dropped.

Connections go through the operator's egress policy (core/egress.py); every failure to connect is one message
(no port scanning through run reports), with the cause in the server log.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

import httpx

from tenantry.connectors.items import (
    Attachment,
    CallDirection,
    CallInfo,
    ItemKind,
    Participant,
    SkipReason,
    SourceIssue,
    SourceItem,
)
from tenantry.connectors.models import BuiltinSource
from tenantry.connectors.sources import SourceSpec, SourceUnavailable
from tenantry.core.clock import as_utc
from tenantry.core.egress import UNREACHABLE, EgressPolicy, EgressRefused, check_url, origin, redact_url
from tenantry.core.errors import Invalid

log = logging.getLogger(__name__)
SOURCE = BuiltinSource.ARCHIVER_FEED
_KINDS = {k.value: k for k in ItemKind}
_DIRECTIONS = {d.value: d for d in CallDirection}


class ArchiverFeedSource:
    kind: str = SOURCE

    def __init__(self, url: str, username: str, password: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0, page_size: int = 500, egress: EgressPolicy | None = None) -> None:
        self.url = url.rstrip("/") + "/"
        self.shown = redact_url(self.url)
        self.client = httpx.Client(auth=(username, password), timeout=timeout,
                                   transport=transport or (egress or EgressPolicy()).transport(),
                                   follow_redirects=False)
        self.page_size = page_size

    def close(self) -> None:
        self.client.close()

    def same_origin(self, path: str) -> str:
        """The absolute URL of ``path``; ``ValueError`` if it leaves the feed's origin (the credentials go
        with every request, and they belong to the feed's host)."""
        try:
            url = urljoin(self.url, path)
            httpx.URL(url)   # what httpx could not send (a control character, a bad host) is the item's fault
        except (ValueError, httpx.InvalidURL) as exc:
            raise ValueError(f"{path!r} is not a usable URL") from exc
        if origin(url) != origin(self.url):
            raise ValueError(f"{redact_url(url)} is not on the feed's host: not fetched with the feed's credentials")
        return url

    def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            url = self.same_origin(path)
        except ValueError as exc:
            raise SourceUnavailable(str(exc)) from exc
        try:
            response = self.client.get(url, params=params)
        except EgressRefused as exc:
            raise SourceUnavailable(exc.message) from exc
        except httpx.HTTPError as exc:
            log.warning("archiver feed %s not reached: %s: %s", self.shown, type(exc).__name__, exc)
            raise SourceUnavailable(f"{UNREACHABLE} at {self.shown} (the archiver feed): no connection or no HTTP "
                                    "answer (the server log has the cause)") from exc
        if response.status_code in (401, 403):
            raise SourceUnavailable(f"the archiver feed refused the user name and password ({response.status_code})")
        if response.status_code >= 400:
            # The status only: the body of whatever answers at a URL a tenant admin chose is not repeated.
            raise SourceUnavailable(f"the archiver feed answered HTTP {response.status_code}")
        return response

    def test(self) -> None:
        now = datetime.now().astimezone()
        self._get("items", {"since": now.isoformat(), "until": now.isoformat(), "limit": 1})

    def items(self, since: datetime | None, until: datetime) -> Iterator[SourceItem | SourceIssue]:
        cursor: str | None = None
        page = 0
        while True:
            params: dict[str, Any] = {"until": as_utc(until).isoformat(), "limit": self.page_size}
            if since is not None:
                params["since"] = as_utc(since).isoformat()
            if cursor:
                params["cursor"] = cursor
            response = self._get("items", params)
            page += 1
            try:
                body = response.json()
                entries = body["items"]
                cursor = body.get("next")
                if not isinstance(entries, list):
                    raise TypeError("items is not a list")
            except (ValueError, KeyError, TypeError) as exc:
                raise SourceUnavailable(f"the archiver feed's page {page} is not a feed page: {exc}") from exc
            for index, raw in enumerate(entries):
                yield self._item(raw, f"feed page {page} item {index + 1}")
            if not cursor:
                return

    def _item(self, raw: Any, location: str) -> SourceItem | SourceIssue:
        item_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            if not isinstance(raw, dict) or not isinstance(item_id, str) or not item_id:
                raise ValueError("an item needs a string 'id'")
            kind = _KINDS.get(str(raw.get("type", "")))
            if kind is None:
                raise ValueError(f"unknown type {raw.get('type')!r}")
            chat = raw.get("chat") or {}
            chat_id = str(chat.get("id") or "")
            if not chat_id:
                raise ValueError("an item needs chat.id")
            sent_at = as_utc(datetime.fromisoformat(str(raw["timestamp"]).replace("Z", "+00:00")))
            if sent_at.tzinfo is None:
                raise ValueError("timestamp needs a zone")
            sender = _participant(raw.get("from")) if raw.get("from") else None
            participants = tuple(_participant(p) for p in raw.get("participants") or [])
            if sender and sender not in participants:
                participants = (sender, *participants)
            call = None
            if kind is ItemKind.CALL:
                c = raw.get("call") or {}
                direction = _DIRECTIONS.get(str(c.get("direction", CallDirection.INCOMING)))
                if direction is None:   # like an unknown type: reported with the item, not guessed
                    raise ValueError(f"unknown call direction {c.get('direction')!r}")
                call = CallInfo(direction, int(c.get("duration", 0)), bool(c.get("missed", False)),
                                bool(c.get("video", False)))
            deleted = raw.get("deleted") or {}
            attachments = tuple(self._attachment(a) for a in raw.get("attachments") or [])
            return SourceItem(
                source=SOURCE, source_id=item_id, chat_id=chat_id, chat_name=chat.get("name"), kind=kind,
                sent_at=sent_at, sender=sender, participants=participants, text=str(raw.get("text") or ""),
                attachments=attachments, call=call, edited=bool(raw.get("edited", False)),
                original_text=deleted.get("original_text") if isinstance(deleted, dict) else None,
                location=location,
            )
        except SourceUnavailable:
            raise
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            return SourceIssue(SkipReason.UNPARSEABLE, f"malformed feed item: {exc}",
                               source_id=item_id if isinstance(item_id, str) else None, location=location)

    def _attachment(self, raw: Any) -> Attachment:
        if not isinstance(raw, dict) or not raw.get("filename"):
            raise ValueError("an attachment needs a filename")
        ctype = str(raw.get("content_type") or "application/octet-stream")
        if raw.get("data_base64") is not None:
            data = base64.b64decode(raw["data_base64"], validate=True)
        elif raw.get("url"):
            data = self._get(self.same_origin(str(raw["url"]))).content
        else:
            data = None
        size = len(data) if data is not None else int(raw.get("size") or 0)
        return Attachment(str(raw["filename"]), ctype, data, size)


def _participant(raw: Any) -> Participant:
    if not isinstance(raw, dict):
        raise ValueError("a participant must be an object")
    return Participant(phone=raw.get("phone"), name=raw.get("name"), email=raw.get("email"))


class ArchiverFeedKind:
    """The ``archiver-feed`` kind: a URL, a user name and a password (sealed apart), read by time window."""

    name: str = SOURCE
    takes_files = False
    windowed = True

    # dict: the kind's settings (url, username), saved as JSON with the connector
    def check(self, settings: dict[str, Any], password: str | None, egress: EgressPolicy) -> dict[str, Any]:
        if not settings.get("url") or not settings.get("username") or not password:
            raise Invalid("an archiver feed needs url, username and password")
        if any(k in settings for k in ("password", "source_password")):
            raise Invalid("the feed password goes in source_password (stored sealed), not in the source settings")
        return {**settings, "url": check_url(str(settings["url"]), "archiver feed URL", egress,
                                             secret_field="the user name and password (username, source_password)")}

    def build(self, spec: SourceSpec) -> ArchiverFeedSource:
        return ArchiverFeedSource(str(spec.settings["url"]), str(spec.settings["username"]), spec.password,
                                  egress=spec.egress)


KIND = ArchiverFeedKind()
