"""The one error the search-language parser raises: what is wrong, where (1-based column), and a caret pointer.

It is an ``Invalid`` domain error, so the admin API answers 400 ``{"error": "query_syntax", "message": ...}``
without the route knowing about queries.
"""

from __future__ import annotations

from typing import Any

from tenantry.core.errors import Invalid


class QuerySyntaxError(Invalid):
    """A query that cannot be parsed.

    ``QuerySyntaxError("unknown property 'frm'", 1, hint="did you mean 'from'?")`` reads
    ``unknown property 'frm' at column 1 (did you mean 'from'?)``. ``reason`` is the bare message, ``message``
    (and ``str()``) the full sentence; ``column`` counts characters from 1, the end of the query being
    ``len(query) + 1``.
    """

    code = "query_syntax"

    def __init__(self, message: str, column: int, *, hint: str | None = None, query: str | None = None) -> None:
        self.reason = message
        self.column = column
        self.hint = hint
        self.query = query
        full = f"{message} at column {column}"
        if hint:
            full += f" ({hint})"
        super().__init__(full)

    @property
    def pointer(self) -> str:
        """The query on one line and a caret under the column, for a monospaced display::

            frm:alice
            ^
        """
        text = "" if self.query is None else "".join(" " if c in "\r\n\t\v\f" else c for c in self.query)
        return f"{text}\n{' ' * (self.column - 1)}^"

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "column": self.column}
