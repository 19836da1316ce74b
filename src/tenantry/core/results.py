"""Typed results: what a service hands across a package boundary is a frozen dataclass, not a ``dict``.

Inside, a result is a plain dataclass (STYLE habit 6); at the HTTP edge FastAPI takes the same class as the
route's ``response_model`` (the return annotation), so the OpenAPI document describes it and a response that
drifts from it fails the fuzz suite's schema check; the CLI prints it through ``plain``. A SCIM resource stays
a ``dict``: RFC 7643 resources are extensible JSON documents (any schema URN may add attributes), which is
what scim2-models' own ``model_dump`` returns too.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from enum import Enum
from typing import Any


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses to dicts (recursively), enums to their values, dates to ISO 8601.

    The wire shape is the dataclass's fields in order, as FastAPI renders the same class.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
