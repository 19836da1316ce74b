"""The connector kinds: every source kind and target kind is one module with a ``KIND``, registered here.

``builtin()`` is the list Tenantry ships (sources ``whatsapp-export`` and ``archiver-feed``, targets ``store``
and ``imap``); a new source is a module of ``connectors/sources/`` and one line in it (the same for a target).
A kind checks the settings a connector is created with and builds its source or target for a run; what it
is built with comes from the connector's row (settings, sealed secret) and the operator (``Environment``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tenantry.archive.service import ArchiveService
from tenantry.connectors.models import BuiltinTarget, Connector
from tenantry.connectors.sources import (
    ExportUpload,
    PersonKeys,
    Source,
    SourceKind,
    SourceSpec,
    archiver_feed,
    whatsapp_export,
)
from tenantry.connectors.sources.chat_slots import ChatHistory
from tenantry.connectors.targets import Target, TargetKind, TargetSpec, imap, store
from tenantry.core.egress import EgressPolicy
from tenantry.core.errors import Invalid
from tenantry.core.secrets import SecretBox
from tenantry.protocols.whatsapp import ExportLimits


@dataclass
class Environment:
    """What sources and targets are built with, besides a connector's row. One object shared by the wizard,
    the runner and the uploads, so a policy set on the service (settings, a test) reaches all of them."""

    secrets: SecretBox
    archive: ArchiveService
    egress: EgressPolicy
    export_limits: ExportLimits


class Kinds:
    """Source and target kinds by name."""

    def __init__(self, sources: Iterable[SourceKind] = (), targets: Iterable[TargetKind] = ()) -> None:
        self._sources: dict[str, SourceKind] = {}
        self._targets: dict[str, TargetKind] = {}
        for source in sources:
            self.add_source(source)
        for target in targets:
            self.add_target(target)

    def add_source(self, kind: SourceKind) -> None:
        if kind.name in self._sources:
            raise ValueError(f"a source kind {kind.name!r} is registered already")
        self._sources[kind.name] = kind

    def add_target(self, kind: TargetKind) -> None:
        if kind.name in self._targets:
            raise ValueError(f"a target kind {kind.name!r} is registered already")
        self._targets[kind.name] = kind

    def find_source(self, name: str) -> SourceKind | None:
        return self._sources.get(name)

    def source(self, name: str) -> SourceKind:
        found = self._sources.get(name)
        if found is None:
            raise Invalid(f"kind must be one of {', '.join(self._sources)}")
        return found

    def target(self, name: object) -> TargetKind:
        found = self._targets.get(name) if isinstance(name, str) else None
        if found is None:
            raise Invalid(f"target kind must be {' or '.join(self._targets)}")
        return found

    def open_source(self, connector: Connector, env: Environment, uploads: Sequence[ExportUpload] = (),
                    person_keys: PersonKeys | None = None, history: ChatHistory | None = None) -> Source:
        """The connector's source; the caller closes it."""
        password = env.secrets.open(connector.source_secret) if connector.source_secret else ""
        return self.source(connector.kind).build(SourceSpec(
            json.loads(connector.source_config), password, connector.max_item_bytes, env.egress, env.export_limits,
            tuple(uploads), person_keys, history))

    def open_target(self, connector: Connector, env: Environment) -> Target:
        """The connector's target; the caller closes it. Settings saved without a kind are the store's."""
        settings = json.loads(connector.target_config)
        secret = json.loads(env.secrets.open(connector.target_secret)) if connector.target_secret else None
        kind = self.target(settings.get("kind", BuiltinTarget.STORE))
        return kind.build(TargetSpec(settings, secret, env.egress, env.archive))


def builtin() -> Kinds:
    """The kinds Tenantry ships."""
    return Kinds(sources=(whatsapp_export.KIND, archiver_feed.KIND), targets=(store.KIND, imap.KIND))
