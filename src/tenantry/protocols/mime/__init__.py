"""RFC 5322 / MIME (RFC 2045-2047, 2183, 2231) rendering of archived chat items as e-mail messages.

Pure code: no database, no web framework. ``render`` builds the bytes directly; see ``chatmail``.
"""

from tenantry.protocols.mime.chatmail import Address, ChatMail, Part, message_id_for, render

__all__ = ["Address", "ChatMail", "Part", "message_id_for", "render"]
