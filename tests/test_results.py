"""core.results.plain: the one conversion from typed results to JSON-ready data (CLI output)."""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field

from tenantry.core.results import plain


class Colour(enum.StrEnum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Inner:
    when: datetime
    colour: Colour


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner
    many: tuple[Inner, ...]
    extra: dict[str, Inner]


def test_plain_turns_nested_dataclasses_enums_and_datetimes_into_json_ready_data() -> None:
    inner = Inner(datetime(2026, 11, 30, 3, 30, tzinfo=UTC), Colour.RED)
    out = plain(Outer("x", inner, (inner,), {"k": inner}))
    expected_inner = {"when": "2026-11-30T03:30:00+00:00", "colour": "red"}
    assert out == {"name": "x", "inner": expected_inner, "many": [expected_inner], "extra": {"k": expected_inner}}
    assert type(out["inner"]["colour"]) is str


def test_plain_leaves_plain_data_alone_and_keeps_field_order() -> None:
    assert plain({"a": [1, "b", None]}) == {"a": [1, "b", None]}
    assert list(plain(Inner(datetime(2026, 1, 1, tzinfo=UTC), Colour.RED))) == ["when", "colour"]


@dataclasses.dataclass(frozen=True)
class Aliased:
    id: int
    sender: Annotated[str, Field(alias="from")]


def test_plain_names_a_field_by_its_alias_as_fastapi_renders_it() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()

    @app.get("/row")
    def row() -> Aliased:
        return Aliased(1, "bob@contoso.com")

    assert plain(Aliased(1, "bob@contoso.com")) == {"id": 1, "from": "bob@contoso.com"}
    assert TestClient(app).get("/row").json() == plain(Aliased(1, "bob@contoso.com"))
