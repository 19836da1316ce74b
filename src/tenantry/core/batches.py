"""Lists cut into statement-sized batches: an ``IN (…)`` over every id a client sent would pass the database's
limit on bound parameters (65,535 on PostgreSQL, 32,766 on SQLite) and fail as a server error."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

CHUNK = 500


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
