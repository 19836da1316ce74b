"""A connector's lifecycle (seed 000's wizard) and how it is shown.

Step by step: create (needs the "Mailbox Import Export" role and the terms accepted; the settings are checked by
the source and target kinds, and source credentials are tested before anything is saved), upload the
user-mapping CSV, record the organisation's admin consent, review, enable. Enabled, a connector runs once a day
(``connectors.schedule``); ``configure`` changes when, ``disable`` stops it. Runs are ``connectors.runner``'s.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import delete, insert, select

from tenantry.connectors.mapping import mapping_notes, parse_mapping_csv
from tenantry.connectors.models import BuiltinTarget, Connector, ConnectorStatus, ExportFile, MappingEntry, Run
from tenantry.connectors.records import get_connector, iso, run_summary
from tenantry.connectors.registry import Environment, Kinds
from tenantry.connectors.results import ConnectorInfo, ConnectorReview, MappingUpload
from tenantry.connectors.schedule import check_run_at, next_daily
from tenantry.connectors.sources import SourceUnavailable
from tenantry.core import access
from tenantry.core.clock import utcnow
from tenantry.core.db import Database, add_named
from tenantry.core.egress import redact_url
from tenantry.core.errors import Invalid, NotFound
from tenantry.core.principals import Principal
from tenantry.directory.service import DirectoryService

IMPORT_ROLE = access.IMPORT
CONSENT_ROLE = access.ORGANIZATION
# What the errors tell an administrator to do (seed 000: no role group has the import role by default).
CONSENT_HINT = ("record it with: tenantry connector consent <connector> [--as <admin>] "
                f"(a holder of {CONSENT_ROLE!r}; API: POST …/connectors/<connector>/consent)")
# Archiver feeds re-read this much behind the checkpoint; less is refused (issue #10, item 1: archivers sync
# once a day, so a message can reach the feed up to a day after its timestamp, and a run can be a day late).
DEFAULT_OVERLAP_HOURS = 48
MAX_OVERLAP_HOURS = 24 * 90


@dataclass
class ConnectorWizard:
    db: Database
    directory: DirectoryService
    kinds: Kinds
    env: Environment
    region: str | None = None     # the default phone region of mapping CSVs

    def create(self, tenant: str, *, name: str, kind: str, by: Principal, accept_terms: bool,
               source: dict[str, Any] | None = None, source_password: str | None = None,
               target: dict[str, Any] | None = None, target_secret: dict[str, Any] | None = None,
               use_directory_mobiles: bool = True, outsider_domain: str = "whatsapp.invalid",
               max_item_bytes: int = 10 * 1024 * 1024, run_at: str = "02:00", backfill_days: int = 30,
               overlap_hours: int = DEFAULT_OVERLAP_HOURS, test_source: bool = True) -> ConnectorInfo:
        source_kind = self.kinds.source(kind)
        access.require(by, [IMPORT_ROLE], "creating a connector")
        if not accept_terms:
            raise Invalid("the terms of service must be accepted to create a connector")
        check_run_at(run_at)
        if max_item_bytes <= 0:
            raise Invalid("max_item_bytes must be positive")
        check_overlap(overlap_hours)
        source = source_kind.check(dict(source or {}), source_password, self.env.egress)
        target = dict(target or {"kind": BuiltinTarget.STORE})
        target = self.kinds.target(target.get("kind")).check(target, self.env.egress)
        now = utcnow()
        connector = Connector(
            id=str(uuid.uuid4()), tenant_id=tenant, name=name, kind=kind, status=ConnectorStatus.DRAFT,
            created_by=by.id,
            created_at=now, terms_accepted_at=now, source_config=json.dumps(source),
            source_secret=self.env.secrets.seal(source_password) if source_password else None,
            target_config=json.dumps(target),
            target_secret=self.env.secrets.seal(json.dumps(target_secret)) if target_secret else None,
            use_directory_mobiles=use_directory_mobiles, outsider_domain=outsider_domain,
            max_item_bytes=max_item_bytes, run_at=run_at, overlap_hours=overlap_hours,
            backfill_days=backfill_days,
        )
        if test_source:
            self._test_source(connector)
        with self.db.session() as session:
            add_named(session, connector, Connector.name, Connector.tenant_id, "connector")
        return self.describe(tenant, connector.id)

    def test_source(self, kind: str, *, source: dict[str, Any] | None = None,
                    source_password: str | None = None) -> None:
        """The wizard's "test the connection" (the console's credentials step): the settings checked by the kind
        and the source tried, as ``create`` does, with nothing saved. Raises ``Invalid`` saying what failed."""
        settings = self.kinds.source(kind).check(dict(source or {}), source_password, self.env.egress)
        trial = Connector(id="", tenant_id="", name="", kind=kind, source_config=json.dumps(settings),
                          source_secret=self.env.secrets.seal(source_password) if source_password else None,
                          target_config=json.dumps({"kind": BuiltinTarget.STORE}), max_item_bytes=10 * 1024 * 1024)
        self._test_source(trial)

    def _test_source(self, connector: Connector) -> None:
        """The wizard tests the credentials before saving: a connector that cannot reach its source would fail
        every night without anyone noticing."""
        source = self.kinds.open_source(connector, self.env)
        try:
            source.test()
        except SourceUnavailable as exc:
            raise Invalid(f"the source did not accept the connection: {exc}") from exc
        finally:
            source.close()

    def upload_mapping(self, tenant: str, connector_id: str, csv_text: str) -> MappingUpload:
        rows = parse_mapping_csv(csv_text, self.region)
        with self.db.writing(), self.db.session() as session:
            # Under the connector's lock: two uploads at once leave one CSV's rows, never a mix of both.
            get_connector(session, tenant, connector_id, lock=True)
            session.execute(delete(MappingEntry).where(MappingEntry.connector_id == connector_id))
            if rows:
                session.execute(insert(MappingEntry), [
                    {"connector_id": connector_id, "e164": r.e164, "name_key": r.name_key, "email": r.email,
                     "line": r.line} for r in rows])
        return MappingUpload(len(rows), mapping_notes(rows))

    def consent(self, tenant: str, connector_id: str, by: Principal) -> ConnectorInfo:
        """Admin consent (seed 000), given by the principal asking: an administrator holding Organization
        Management, or the operator."""
        access.require(by, [CONSENT_ROLE], "admin consent for a connector")
        with self.db.writing(), self.db.session() as session:
            connector = get_connector(session, tenant, connector_id, lock=True)
            connector.consent_by = by.id
            connector.consent_at = utcnow()
        return self.describe(tenant, connector_id)

    def review(self, tenant: str, connector_id: str) -> ConnectorReview:
        """The wizard's review page: the settings and what still blocks enabling."""
        info = self.describe(tenant, connector_id)
        blockers = _blockers(info.terms_accepted, info.consent_by)
        return ConnectorReview(**{f.name: getattr(info, f.name) for f in fields(info)}, blockers=blockers,
                               ready=not blockers)

    def enable(self, tenant: str, connector_id: str) -> ConnectorInfo:
        with self.db.writing(), self.db.session() as session:
            # Checked under the connector's lock, which consent and mapping uploads take too: what is checked
            # is what is enabled.
            connector = get_connector(session, tenant, connector_id, lock=True)
            blockers = _blockers(connector.terms_accepted_at is not None, connector.consent_by)
            if blockers:
                raise Invalid("cannot enable: " + "; ".join(blockers))
            connector.status = ConnectorStatus.ENABLED
            connector.next_run_at = next_daily(utcnow(), connector.run_at)
        return self.describe(tenant, connector_id)

    def configure(self, tenant: str, connector_id: str, *, run_at: str | None = None,
                  overlap_hours: int | None = None) -> ConnectorInfo:
        """Change a connector's schedule settings: its daily run time, and (feeds) the overlap each run re-reads
        behind the checkpoint. Nothing else moves: the checkpoint and the runs stay as they are."""
        if run_at is not None:
            check_run_at(run_at)
        if overlap_hours is not None:
            check_overlap(overlap_hours)
        with self.db.writing(), self.db.session() as session:
            connector = get_connector(session, tenant, connector_id, lock=True)
            if run_at is not None:
                connector.run_at = run_at
                if connector.status == ConnectorStatus.ENABLED:
                    connector.next_run_at = next_daily(utcnow(), run_at)
            if overlap_hours is not None:
                connector.overlap_hours = overlap_hours
        return self.describe(tenant, connector_id)

    def disable(self, tenant: str, connector_id: str) -> ConnectorInfo:
        with self.db.writing(), self.db.session() as session:
            connector = get_connector(session, tenant, connector_id, lock=True)
            connector.status = ConnectorStatus.DISABLED
            connector.next_run_at = None
        return self.describe(tenant, connector_id)

    # -- reading ------------------------------------------------------------------------------

    def list_connectors(self, tenant: str) -> list[ConnectorInfo]:
        with self.db.session() as session:
            ids = list(session.scalars(select(Connector.id).where(Connector.tenant_id == tenant)
                                       .order_by(Connector.name)))
        return [self.describe(tenant, cid) for cid in ids]

    def find(self, tenant: str, name_or_id: str) -> str:
        with self.db.session() as session:
            found = session.scalar(select(Connector.id).where(
                Connector.tenant_id == tenant, (Connector.id == name_or_id) | (Connector.name == name_or_id)))
        if not found:
            raise NotFound(f"no connector {name_or_id!r}")
        return found

    def describe(self, tenant: str, connector_id: str) -> ConnectorInfo:
        with self.db.session() as session:
            c = get_connector(session, tenant, connector_id)
            mappings = len(session.scalars(
                select(MappingEntry.id).where(MappingEntry.connector_id == connector_id)).all())
            last = session.scalar(select(Run).where(Run.connector_id == connector_id)
                                  .order_by(Run.started_at.desc()).limit(1))
            pending = len(session.scalars(select(ExportFile.id).where(
                ExportFile.connector_id == connector_id, ExportFile.imported_by_run.is_(None))).all())
            target = json.loads(c.target_config)
            kind = self.kinds.find_source(c.kind)
            return ConnectorInfo(
                id=c.id, name=c.name, kind=c.kind, status=ConnectorStatus(c.status), created_by=c.created_by,
                terms_accepted=c.terms_accepted_at is not None, consent_by=c.consent_by,
                consent_at=iso(c.consent_at), source=_shown_source(json.loads(c.source_config)),
                target=target.get("kind"), mapping_entries=mappings,
                use_directory_mobiles=c.use_directory_mobiles, outsider_domain=c.outsider_domain,
                max_item_bytes=c.max_item_bytes, run_at=c.run_at, checkpoint=iso(c.checkpoint),
                overlap_hours=c.overlap_hours if kind is not None and kind.windowed else None,
                next_run_at=iso(c.next_run_at), pending_files=pending,
                last_run=run_summary(last) if last else None,
            )


def _blockers(terms_accepted: bool, consent_by: str | None) -> list[str]:
    """What still keeps a connector from being enabled (the wizard's review page)."""
    blockers = []
    if not terms_accepted:
        blockers.append("terms not accepted")
    if not consent_by:
        blockers.append(f"the organisation's admin consent is not recorded; {CONSENT_HINT}")
    # No blocker for the user mapping: the item's own e-mail address (seed 000's second rule) is always
    # consulted, so a connector without a CSV and without directory mobiles still maps by e-mail.
    return blockers


def check_overlap(hours: int) -> None:
    if not DEFAULT_OVERLAP_HOURS <= hours <= MAX_OVERLAP_HOURS:
        raise Invalid(f"overlap_hours must be between {DEFAULT_OVERLAP_HOURS} and {MAX_OVERLAP_HOURS} (a shorter "
                      f"overlap would miss messages that reach the archiver late), not {hours}")


def _shown_source(source: dict[str, Any]) -> dict[str, Any]:  # dict: a source kind's own settings
    """A connector's source settings as shown: the feed URL without credentials or query values (rows saved
    before URLs were checked may hold them); secrets are never among them (they are sealed apart)."""
    if isinstance(source.get("url"), str):
        source["url"] = redact_url(source["url"])
    return {k: v for k, v in source.items() if k not in ("password", "source_password")}
