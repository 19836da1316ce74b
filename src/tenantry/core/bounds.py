"""Bounds on the integers the admin API takes (query, path and body), declared at the edge.

Every integer a route takes reaches SQL (an OFFSET, a LIMIT, an ``Integer`` column) or date arithmetic.
Our integer columns are 32-bit on PostgreSQL, and SQLite refuses ints past 64 bits, so a value outside
these bounds could only ever fail inside the database: FastAPI refuses it first (422 with the admin API's
error body). The ranges are stated in docs/security.md.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

INT32_MAX = 2**31 - 1
# Durations in days (holds, retention, backfill): 1,000 years is past any retention law and keeps
# ``now + timedelta(days=…)`` inside datetime's range.
MAX_DAYS = 365_000

Offset = Annotated[int, Query(ge=0, le=INT32_MAX, description="0-based offset")]
StartIndex = Annotated[int, Query(ge=1, le=INT32_MAX, description="1-based index of the first result")]
Count = Annotated[int, Query(ge=0, le=INT32_MAX, description="page size (capped by the route)")]
ItemId = Annotated[int, Path(ge=1, le=INT32_MAX, description="an archive item's id")]
