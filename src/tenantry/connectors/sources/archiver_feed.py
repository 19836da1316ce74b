"""An archiver's JSON feed (the TeleMessage role): pulled over HTTPS with a user name and password.

The feed protocol (ours, documented in docs/connectors.md and served by ``connectors.feed_server`` for tests
and demos): ``GET <url>/items?since=<ISO>&until=<ISO>[&cursor=<c>]`` with HTTP Basic auth answers
``{"items": [...], "next": <cursor or null>}``. Attachments come inline (``data_base64``) or by ``url``
(fetched with the same credentials). A malformed item is reported with its id, never dropped.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

import httpx

from tenantry.connectors.items import (
    Attachment,
    CallInfo,
    ItemKind,
    Participant,
    SkipReason,
    SourceIssue,
    SourceItem,
)
from tenantry.connectors.sources import SourceUnavailable
from tenantry.core.clock import as_utc

SOURCE = "archiver-feed"
_KINDS = {k.value: k for k in ItemKind}


class ArchiverFeedSource:
    kind = SOURCE

    def __init__(self, url: str, username: str, password: str, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0, page_size: int = 500) -> None:
        self.url = url.rstrip("/") + "/"
        self.client = httpx.Client(auth=(username, password), timeout=timeout, transport=transport,
                                   follow_redirects=False)
        self.page_size = page_size

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = self.client.get(urljoin(self.url, path), params=params)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"the archiver feed at {self.url} did not answer: {exc}") from exc
        if response.status_code in (401, 403):
            raise SourceUnavailable(f"the archiver feed refused the user name and password ({response.status_code})")
        if response.status_code >= 400:
            raise SourceUnavailable(f"the archiver feed answered {response.status_code}: {response.text[:200]}")
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
                call = CallInfo(str(c.get("direction", "incoming")), int(c.get("duration", 0)),
                                bool(c.get("missed", False)), bool(c.get("video", False)))
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
            data = self._get(str(raw["url"])).content
        else:
            data = None
        size = len(data) if data is not None else int(raw.get("size") or 0)
        return Attachment(str(raw["filename"]), ctype, data, size)


def _participant(raw: Any) -> Participant:
    if not isinstance(raw, dict):
        raise ValueError("a participant must be an object")
    return Participant(phone=raw.get("phone"), name=raw.get("name"), email=raw.get("email"))
