"""Every change made through the admin API is an entry of the tenant's ledger, naming who made it (issue #12).

``AuditMiddleware`` wraps ``/api/v1``: a POST, PUT, PATCH or DELETE that succeeds (status below 400) is recorded
as ``admin.change`` — the authenticated principal as the actor (``core.principals.Principal.actor``: name, id,
credential), the route, its path parameters and the status — before the answer's first byte leaves, so a client
never holds a success whose record is missing: if the entry cannot be written, the answer becomes a 500 saying
the change was made and its record was not (and the server log has why). A refused or failed request changes
nothing, so it is not a change; the parts' own entries (``hold.place``, ``export``…) say what a change did.
A change outside any tenant (creating a tenant) is recorded in the default tenant's ledger.
The CLI records its changes the same way (``cli_kit.AuditedCommand``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool

from tenantry.archive.ledger import Ledger
from tenantry.archive.models import LedgerAction
from tenantry.core.principals import Principal

log = logging.getLogger(__name__)

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditMiddleware:
    def __init__(self, app: Any, ledger: Ledger, default_tenant: str) -> None:
        self.app, self.ledger, self.default_tenant = app, ledger, default_tenant

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (scope["type"] != "http" or scope.get("method") not in UNSAFE
                or not scope.get("path", "").startswith("/api/v1/")):
            await self.app(scope, receive, send)
            return

        replaced = False

        async def sending(message: Any) -> None:
            nonlocal replaced
            if replaced:
                return   # the body of the answer a 500 replaced
            if message["type"] == "http.response.start" and int(message["status"]) < 400:
                try:
                    await run_in_threadpool(self._record, scope, int(message["status"]))
                except Exception:  # noqa: BLE001 - said to the client and to the log, never swallowed
                    log.exception("audit: the change %s %s was made but its ledger entry was not written",
                                  scope.get("method"), scope.get("path"))
                    replaced = True
                    await _unrecorded(send)
                    return
            await send(message)

        await self.app(scope, receive, sending)

    def _record(self, scope: Any, status: int) -> None:
        principal = (scope.get("state") or {}).get("principal")
        if not isinstance(principal, Principal):
            return   # the guard answered before naming anyone: nothing was changed
        route = scope.get("route")
        template = "/api/v1" + str(getattr(route, "path", "")) if route is not None else scope.get("path", "")
        params = {k: str(v) for k, v in (scope.get("path_params") or {}).items()}
        tenant = params.get("tenant_id") or self.default_tenant
        target = next((params[k] for k in reversed(list(params)) if k != "tenant_id"), "")
        self.ledger.record(tenant, principal.actor, LedgerAction.ADMIN_CHANGE, target[:256], via="api",
                           operation=f"{scope.get('method')} {template}", params=params, status=status)


async def _unrecorded(send: Any) -> None:
    body = json.dumps({"error": "audit_failed", "message": "the change was made, but its audit entry could not "
                       "be written; the server log has why. Check the change before repeating it."}).encode()
    await send({"type": "http.response.start", "status": 500,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
