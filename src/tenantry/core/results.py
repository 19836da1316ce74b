"""Typed results: what a service hands across a package boundary is a frozen dataclass, not a ``dict``.

Inside, a result is a plain dataclass (STYLE habit 6); at the HTTP edge FastAPI takes the same class as the
route's ``response_model`` (the return annotation), so the OpenAPI document describes it and a response that
drifts from it fails the fuzz suite's schema check; the CLI prints it through ``plain``. A SCIM resource stays
a ``dict``: RFC 7643 resources are extensible JSON documents (any schema URN may add attributes), which is
what scim2-models' own ``model_dump`` returns too.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from datetime import date, datetime
from enum import Enum
from typing import Any


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses to dicts (recursively), enums to their values, dates to ISO 8601.

    The wire shape is the dataclass's fields in order, as FastAPI renders the same class: a field declared
    ``Annotated[str, Field(alias="from")]`` (a wire name that is a Python keyword) is named by its alias.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {wire: plain(getattr(value, name)) for name, wire in _wire_names(type(value))}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


@functools.cache
def _wire_names(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, name on the wire) of each field of the dataclass ``cls``, in order."""
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except (NameError, TypeError):  # an annotation that cannot be resolved here carries no alias we could read
        hints = {}
    names: list[tuple[str, str]] = []
    for f in dataclasses.fields(cls):
        aliases = [m.alias for m in getattr(hints.get(f.name), "__metadata__", ())
                   if isinstance(getattr(m, "alias", None), str)]
        names.append((f.name, aliases[-1] if aliases else f.name))
    return tuple(names)
