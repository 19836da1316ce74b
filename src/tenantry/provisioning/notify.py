"""E-mail to an app's notification address (quarantine, release, deletion threshold) over SMTP.

SMTP settings are ``TENANTRY_SMTP_*``. With no SMTP host configured, or when sending fails, the caller gets
the reason back and writes it to the provisioning log: a notification is never lost in silence.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from tenantry.core.settings import Settings


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, to: str, subject: str, body: str) -> str | None:
        """Send; ``None`` when the server accepted the message, else why it was not sent."""
        s = self.settings
        if not s.smtp_host:
            return "no SMTP server configured (TENANTRY_SMTP_HOST)"
        msg = EmailMessage()
        msg["From"] = s.smtp_from
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=s.smtp_from.rpartition("@")[2] or None)
        msg.set_content(body)
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30) as smtp:
                if s.smtp_starttls:
                    smtp.starttls()
                if s.smtp_user:
                    smtp.login(s.smtp_user, s.smtp_password or "")
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            return f"sending to {to} failed: {type(exc).__name__}: {exc}"
        return None
