"""Owner-only storage: the data folder is 0700 and what Tenantry keeps in it is 0600 (folders 0700).

The archive, its index and the credential key are as sensitive as anything a regulated customer has; on a
shared machine another account must read none of it. Two layers, because a library (SQLite, tantivy) creates
files with whatever mode the process umask gives:

- ``restrict_process_umask``: the ``tenantry`` command (serve, worker, every CLI command) sets umask 077 once,
  before anything is created, so every file it or a library makes is 0600 and every folder 0700.
- ``secure_data_dir``, called by ``build_services`` (so also for an application embedding ``create_app``):
  creates the data folder 0700 and takes group and other permissions off the folder and off the entries
  Tenantry keeps in it (an installation from before this rule is tightened on its next start). With the
  folder 0700, nothing inside can be reached by another account whatever mode a later file gets.

Only Tenantry's own entries (``OWN_ENTRIES``) are walked: a data folder pointed at a shared place (a home
folder) gets its own mode tightened, never the modes of other people's files in it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
# What Tenantry creates in the data folder: the SQLite database and its WAL/shared-memory/journal files, the
# credential key, the tantivy index, eDiscovery exports and uploaded files waiting for a run.
OWN_ENTRIES = (
    "tenantry.db", "tenantry.db-wal", "tenantry.db-shm", "tenantry.db-journal",
    "secret.key", "index", "exports", "uploads",
)


def restrict_process_umask() -> int:
    """Make every file this process creates from now on owner-only; returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def secure_data_dir(path: Path) -> None:
    """Create ``path`` as 0700, or tighten it and Tenantry's entries in it to owner-only.

    A folder among the entries is walked only when it was itself open to others (an installation from before
    the umask): everything made since is owner-only already, and exports and uploads can hold hundreds of
    thousands of files that every command's start would otherwise stat again.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _owner_only(path)
    for name in OWN_ENTRIES:
        entry = path / name
        if entry.is_symlink() or not entry.exists():
            continue
        if _owner_only(entry) and entry.is_dir():
            for root, dirs, files in os.walk(entry):
                for child in (*dirs, *files):
                    _owner_only(Path(root) / child)


def _owner_only(path: Path) -> bool:
    """Take group and other access away; True when there was some to take."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode) or not mode & 0o077:
            return False
        os.chmod(path, stat.S_IMODE(mode) & ~0o077)
    except FileNotFoundError:
        return False  # gone meanwhile (a WAL checkpointed away, an index segment merged)
    except OSError as exc:
        # Not ours to change (another owner): say so and keep starting, rather than refuse to serve.
        log.warning("cannot make %s owner-only: %s", path, exc)
    return True


__all__ = ["OWN_ENTRIES", "PRIVATE_UMASK", "restrict_process_umask", "secure_data_dir"]
