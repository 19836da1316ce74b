"""The data folder is 0700 and every file Tenantry keeps in it 0600: no other account reads the archive."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantry.app import build_services
from tenantry.core.settings import Settings
from tests.conftest import SAMPLES, as_admin, importing_admin


@pytest.fixture()
def loose_umask() -> Iterator[None]:
    """Files created here get 0644/0755, as under a default login shell."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def readable_by_others(data: Path) -> list[str]:
    """Every path under ``data`` (itself included) with any group or other permission bit."""
    found = []
    for path in [data, *data.rglob("*")]:
        mode = os.lstat(path).st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(f"{path.relative_to(data.parent)} {stat.filemode(mode)}")
    return found


def test_after_a_real_import_through_the_cli_nothing_in_the_data_folder_is_readable_by_others(
    tmp_path: Path, loose_umask: None
) -> None:
    data = tmp_path / "data"
    # Set up as an embedding application would (under umask 022): tenant, users, role, connector.
    services = build_services(Settings(data_dir=data, database_url=None))
    services.directory.create_tenant("default", "Default")
    admin_id = importing_admin(services)
    exports = services.connectors.create("default", name="Exports", kind="whatsapp-export",
                                         by=as_admin(services, "default", admin_id),
                                         accept_terms=True, source={"timezone": "Europe/Berlin"})
    services.connectors.consent("default", exports.id, as_admin(services, "default", admin_id))
    services.indexer.flush()
    services.db.dispose()
    services.index.close()

    # The operator's command, a real process: an export chat delivered into the archive and indexed.
    env = {**os.environ, "TENANTRY_DATA_DIR": str(data)}
    env.pop("TENANTRY_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "tenantry", "connector", "upload", "Exports",
         str(SAMPLES / "whatsapp" / "zip-android-media.zip"), "--owner", "bob@contoso.com"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imported 7" in done.stdout

    assert (data / "tenantry.db").exists() and any((data / "index").iterdir()) and (data / "secret.key").exists()
    assert readable_by_others(data) == []


def test_an_existing_0755_data_folder_and_its_0644_files_are_tightened_on_start(
    tmp_path: Path, loose_umask: None
) -> None:
    data = tmp_path / "data"
    services = build_services(Settings(data_dir=data, database_url=None))
    services.directory.create_tenant("default", "Default")
    services.db.dispose()
    services.index.close()
    # An installation from before the rule: everything group/other readable.
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    notes = data / "operator-notes.txt"  # not Tenantry's: left as its owner set it
    notes.write_text("x")
    notes.chmod(0o644)

    services = build_services(Settings(data_dir=data, database_url=None))
    services.db.dispose()
    services.index.close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "tenantry.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "index").stat().st_mode) == 0o700
    assert readable_by_others(data) == [f"data/operator-notes.txt {stat.filemode(notes.stat().st_mode)}"]


def test_a_new_data_folder_is_created_0700_for_an_embedding_application(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "nested" / "data"
    services = build_services(Settings(data_dir=data, database_url=None))
    services.db.dispose()
    services.index.close()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    # What SQLite and tantivy created before build_services returned is owner-only too.
    assert readable_by_others(data) == []
