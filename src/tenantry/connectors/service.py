"""The connectors' service, as the app, the CLI and the jobs see it: one object over the parts.

``wizard`` (a connector's lifecycle, ``connectors.wizard``), ``runner`` (runs and their reports,
``connectors.runner``), ``files`` (export files handed in, ``connectors.uploads``), built over one ``Kinds``
registry of source and target kinds (``connectors.registry``) and one ``Environment`` of operator policies. The
service also claims the due connectors for the one scheduler (``connectors.register``, ``core.schedule``).
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Generic, TypeVar, cast

from sqlalchemy import select

from tenantry.archive.service import ArchiveService
from tenantry.connectors.models import Connector, ConnectorStatus
from tenantry.connectors.registry import Environment, Kinds, builtin
from tenantry.connectors.runner import ConnectorRunner
from tenantry.connectors.uploads import ExportFiles
from tenantry.connectors.wizard import ConnectorWizard
from tenantry.core.clock import utcnow
from tenantry.core.db import Database
from tenantry.core.egress import EgressPolicy
from tenantry.core.schedule import claim_due
from tenantry.core.secrets import SecretBox
from tenantry.directory.service import DirectoryService
from tenantry.protocols.whatsapp import ExportLimits

T = TypeVar("T")


class _OfPart(Generic[T]):
    """An attribute of the service that lives on one of its parts, read and set there, so that a policy set on
    the service (by the settings, or a test) is the one every part uses."""

    def __init__(self, part: str, name: str) -> None:
        self.part = part
        self.name = name

    def __get__(self, service: object, owner: type | None = None) -> T:
        return cast(T, getattr(getattr(service, self.part), self.name))

    def __set__(self, service: object, value: T) -> None:
        setattr(getattr(service, self.part), self.name, value)


class ConnectorService:
    egress: _OfPart[EgressPolicy] = _OfPart("env", "egress")
    export_limits: _OfPart[ExportLimits] = _OfPart("env", "export_limits")
    upload_max_bytes: _OfPart[int] = _OfPart("files", "max_bytes")
    upload_dir: _OfPart[Path] = _OfPart("files", "upload_dir")

    def __init__(self, db: Database, directory: DirectoryService, archive: ArchiveService, secrets: SecretBox,
                 *, default_region: str | None = None, kinds: Kinds | None = None,
                 egress: EgressPolicy | None = None,
                 upload_dir: Path | None = None, upload_max_bytes: int = 2 * 1024**3,
                 export_limits: ExportLimits | None = None) -> None:
        self.db = db
        self.kinds = kinds or builtin()
        self.env = Environment(secrets, archive, egress or EgressPolicy(), export_limits or ExportLimits())
        # Export files are kept here under their SHA-256 (never a name the client chose), streamed in.
        self.files = ExportFiles(db, directory, self.kinds, self.env, max_bytes=upload_max_bytes,
                                 upload_dir=upload_dir or Path(tempfile.gettempdir()) / "tenantry-uploads")
        self.wizard = ConnectorWizard(db, directory, self.kinds, self.env, region=default_region)
        self.runner = ConnectorRunner(db, directory, self.kinds, self.env, self.files, region=default_region)
        # The parts' methods under the names the API, the CLI and the jobs call.
        self.create = self.wizard.create
        self.upload_mapping = self.wizard.upload_mapping
        self.consent = self.wizard.consent
        self.review = self.wizard.review
        self.enable = self.wizard.enable
        self.configure = self.wizard.configure
        self.disable = self.wizard.disable
        self.list_connectors = self.wizard.list_connectors
        self.find = self.wizard.find
        self.describe = self.wizard.describe
        self.add_export = self.files.add
        self.incoming_file = self.files.incoming_file
        self.export_path = self.files.path
        self.run = self.runner.run
        self.recover_interrupted = self.runner.recover_interrupted
        self.report = self.runner.report
        self.runs = self.runner.runs
        self.imported_per_day = self.runner.imported_per_day
        self.test_source = self.wizard.test_source

    # -- the schedule ----------------------------------------------------------------------------

    def due(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """(tenant, connector id) of every enabled connector whose next run time has come."""
        now = now or utcnow()
        with self.db.session() as session:
            rows = session.execute(select(Connector.tenant_id, Connector.id).where(
                Connector.status == ConnectorStatus.ENABLED, Connector.next_run_at.is_not(None),
                Connector.next_run_at <= now))
            return [(t, c) for t, c in rows]

    def claim_due(self, now: datetime, lease: timedelta) -> list[tuple[str, str]]:
        """Take the due connectors: their next run moves ``lease`` ahead, so a second scheduler tick (or a
        second scheduler process) does not hand the same run out twice. The run itself sets the real next time.
        """
        return claim_due(self.db, Connector, Connector.id, Connector.next_run_at, tenant=Connector.tenant_id,
                         where=(Connector.status == ConnectorStatus.ENABLED,), now=now, lease=lease)
