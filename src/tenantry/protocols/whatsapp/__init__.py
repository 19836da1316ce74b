"""WhatsApp "Export chat" files (Android and iOS, ``.txt`` or ``.zip`` with media) as typed messages.

Pure protocol code: bytes or text in, :class:`ParsedExport` out; no database, no web framework. The
header/continuation rule, the formats and the measured speed are in the docstring of ``export``.
"""

from tenantry.protocols.whatsapp.export import (
    BACKWARD_SLACK,
    MAX_DIP,
    NOT_AN_EXPORT,
    DateOrder,
    DateOrderSource,
    ExportIssue,
    ExportLimits,
    ExportMessage,
    ExportStream,
    IssueReason,
    LimitExceeded,
    MessageKind,
    ParsedExport,
    Platform,
    export_refusal,
    open_export,
    parse_text,
    read_export,
    zip_refusal,
)

__all__ = [
    "BACKWARD_SLACK",
    "MAX_DIP",
    "NOT_AN_EXPORT",
    "DateOrder",
    "DateOrderSource",
    "ExportIssue",
    "ExportLimits",
    "ExportMessage",
    "ExportStream",
    "IssueReason",
    "LimitExceeded",
    "MessageKind",
    "ParsedExport",
    "Platform",
    "export_refusal",
    "open_export",
    "parse_text",
    "read_export",
    "zip_refusal",
]
