"""A console form with a file (``multipart/form-data``) read as it arrives: its text fields kept (few and short),
its one file streamed to where the caller says, both bounded, and a check run before the first byte of the file
is written (the CSRF token, sent before the file).

Starlette's own ``request.form()`` would take the whole body first, spooling files to the system's temporary
folder: outside the data folder, and before the session's token was even looked at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from tenantry.core.errors import Invalid, PayloadTooLarge
from tenantry.core.streaming import bounded_chunks

FIELD_MAX = 4096        # bytes of one text field
FIELDS_MAX = 16
OVERHEAD = 64 * 1024    # the body beyond the file: part headers, boundaries, the text fields


@dataclass
class FormWithFile:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None    # the file part's name as the browser sent it (a label only); None: no file
    size: int = 0


async def read_form(request: Request, *, file_field: str, file_max: int, sink: IO[bytes],
                    before_file: Callable[[dict[str, str]], None], what: str = "the file") -> FormWithFile:
    """Read the form: text fields into ``fields``; the part named ``file_field`` written to ``sink``, once
    ``before_file(fields so far)`` has passed. A file over ``file_max`` bytes is ``PayloadTooLarge`` as soon as it
    passes the limit; a second file, another file field, too many or too long fields are ``Invalid``. The caller
    discards what ``sink`` holds when this raises."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Invalid("this form is sent as multipart/form-data")
    form = FormWithFile()
    part: dict[str, object] = {}
    header: list[bytearray] = [bytearray(), bytearray()]

    def on_part_begin() -> None:
        part.clear()
        part["headers"], part["value"] = {}, bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        headers = part["headers"]
        assert isinstance(headers, dict)
        headers[bytes(header[0]).lower()] = bytes(header[1])
        header[0], header[1] = bytearray(), bytearray()

    def on_headers_finished() -> None:
        headers = part["headers"]
        assert isinstance(headers, dict)
        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        part["name"] = name
        filename = options.get(b"filename")
        if filename is None:
            if len(form.fields) >= FIELDS_MAX:
                raise Invalid("the form has too many fields")
            return
        if name != file_field or form.filename is not None:
            raise Invalid(f"the form takes one file, as {file_field!r}")
        form.filename = filename.decode("utf-8", "replace") or None
        if form.filename is None:       # a browser sends an empty part when no file was chosen
            part["skip"] = True
            return
        before_file(form.fields)
        part["file"] = True

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.get("file"):
            form.size += end - start
            if form.size > file_max:
                raise PayloadTooLarge(f"{what} is over the {file_max}-byte limit")
            sink.write(data[start:end])
            return
        if part.get("skip"):
            return
        value = part["value"]
        assert isinstance(value, bytearray)
        value += data[start:end]
        if len(value) > FIELD_MAX:
            raise Invalid(f"the form field {part.get('name')!r} is over {FIELD_MAX} bytes")

    def on_part_end() -> None:
        name = str(part.get("name", ""))
        if part.get("file") or part.get("skip"):
            return
        value = part["value"]
        assert isinstance(value, bytearray)
        try:
            form.fields[name] = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Invalid(f"the form field {name!r} is not UTF-8") from exc

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end})

    def too_large(message: str) -> Exception:
        return PayloadTooLarge(message)

    async for chunk in bounded_chunks(request, file_max + OVERHEAD, too_large, "the form"):
        parser.write(chunk)
    parser.finalize()
    sink.flush()
    return form
