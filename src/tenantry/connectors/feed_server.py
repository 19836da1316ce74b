"""A small reference archiver feed (the TeleMessage role), for tests, demos and trying a connector.

``tenantry feed-server --items items.json --username U --password P`` serves the items of a JSON file (a list
of feed items, see docs/connectors.md) with HTTP Basic auth, paged by a cursor and selected by time.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def create_feed_app(items: list[dict[str, Any]], username: str, password: str,
                    attachments: dict[str, bytes] | None = None, page_delay: float = 0.0) -> FastAPI:
    """The feed app; ``page_delay`` slows every page down (to test interrupted runs)."""
    app = FastAPI(title="Reference archiver feed")
    # The list is read at each request, so a test (or a demo) can append a message that reaches the archiver
    # late: with a timestamp before a run that has already happened.
    def ordered() -> list[dict[str, Any]]:  # dict: feed items, the feed protocol's JSON (docs/connectors.md)
        return sorted(items, key=lambda i: (str(i.get("timestamp")), str(i.get("id"))))

    files = attachments or {}

    def check(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            user, secret = "", ""
        if scheme.lower() != "basic" or not (
            hmac.compare_digest(user, username) and hmac.compare_digest(secret, password)
        ):
            raise HTTPException(401, "bad credentials", headers={"WWW-Authenticate": 'Basic realm="feed"'})

    @app.get("/items")
    def list_items(request: Request, until: str, since: str | None = None, cursor: str | None = None,
                   limit: int = 500) -> dict[str, Any]:  # dict: a feed page, the protocol's JSON
        check(request)
        if page_delay:
            time.sleep(page_delay)
        start = int(cursor or 0)
        upper = _when(until)
        lower = _when(since) if since else None
        selected = [
            i for i in ordered()
            if _when(str(i["timestamp"])) < upper and (lower is None or _when(str(i["timestamp"])) >= lower)
        ]
        page = selected[start : start + max(1, min(limit, 1000))]
        more = start + len(page) < len(selected)
        return {"items": page, "next": str(start + len(page)) if more else None}

    @app.get("/attachments/{name}")
    def attachment(name: str, request: Request) -> Response:
        check(request)
        if name not in files:
            raise HTTPException(404, "no such attachment")
        return Response(files[name], media_type="application/octet-stream")

    return app


def load_items(path: Path) -> list[dict[str, Any]]:  # dict: feed items, the feed protocol's JSON
    data = json.loads(path.read_text())
    if not isinstance(data, list):
        raise ValueError(f"{path}: a feed file holds a JSON list of items")
    return data
