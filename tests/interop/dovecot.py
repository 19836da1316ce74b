"""A private Dovecot IMAP server on 127.0.0.1 for the IMAP delivery target (Debian's dovecot-imapd).

Users come from a passwd-file; a master user ("archiver") may log in as any of them as
``<user>*archiver``, which is how Tenantry delivers into every participant's mailbox with one credential.
"""

from __future__ import annotations

import imaplib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

MASTER_USER = "archiver"
MASTER_PASSWORD = "master-secret-pw"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = *
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/masters
  master = yes
  pass = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
"""


@dataclass
class Dovecot:
    root: Path
    port: int
    passwords: dict[str, str]

    def login(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port)
        conn.login(user, self.passwords[user])
        return conn

    def messages(self, user: str, folder: str) -> list[bytes]:
        conn = self.login(user)
        try:
            status, _ = conn.select(f'"{folder}"', readonly=True)
            if status != "OK":
                return []
            _, data = conn.search(None, "ALL")
            out = []
            for num in data[0].split():
                _, fetched = conn.fetch(num, "(BODY.PEEK[])")
                out.append(bytes(fetched[0][1]))  # type: ignore[index]
            return out
        finally:
            conn.logout()


def available() -> str | None:
    """None when Dovecot can run here, else why not."""
    if shutil.which("dovecot") is None:
        return "Dovecot is not installed (Debian package dovecot-imapd; scripts/test installs it)"
    if os.geteuid() != 0:
        return "Dovecot needs root here to switch to its dovecot/dovenull users"
    return None


def start(root: Path, port: int, users: dict[str, str]) -> tuple[Dovecot, subprocess.Popen[bytes]]:
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.chown(root / "mail", "dovecot", "dovecot")
    (root / "users").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in users.items()))
    (root / "masters").write_text(f"{MASTER_USER}:{{PLAIN}}{MASTER_PASSWORD}\n")
    conf = root / "dovecot.conf"
    conf.write_text(CONFIG.format(root=root, port=port))
    process = subprocess.Popen(["dovecot", "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            imaplib.IMAP4("127.0.0.1", port).logout()
            return Dovecot(root, port, dict(users)), process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
    raise RuntimeError(f"Dovecot did not start: {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
