"""What the console brings to the application (``core.registry``): its browser pages (``/`` and ``/console/…``),
outside the admin API's guard, their credential the console session cookie. No commands and no admin routes:
the console reads and changes through the parts' services, under the signed-in administrator's roles."""

from __future__ import annotations

from fastapi import APIRouter

from tenantry.core.registry import Registry, RouteContext


def register(registry: Registry) -> None:
    registry.add_pages(_pages)


def _pages(ctx: RouteContext) -> APIRouter:
    from tenantry.console import pages

    return pages.build_pages(ctx.services, ctx.enqueue)
