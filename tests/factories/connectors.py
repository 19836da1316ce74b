"""Connectors as an administrator makes them: through the wizard (terms accepted, the organisation's consent
recorded), with a mapping CSV, and runs of them. ``admin`` is a user holding "Mailbox Import Export" and
"Organization Management" (``tests.conftest.importing_admin``, the connectors' ``people.admin``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from tenantry.app import Services
from tenantry.connectors.models import BuiltinSource
from tenantry.connectors.results import MappingUpload, RunReport
from tests.conftest import as_admin


class Feed(Protocol):
    """Where an archiver feed answers (tests.connectors.conftest.FeedServer)."""

    url: str
    username: str
    password: str


def make_connector(services: Services, tenant: str, admin: str, *, name: str = "Exports",
                   kind: str = BuiltinSource.WHATSAPP_EXPORT, consent: bool = True, **overrides: Any) -> str:
    """A draft connector made by ``admin`` (an export connector unless ``kind`` says otherwise), with the
    organisation's consent recorded by ``admin`` unless ``consent`` is false; its id. ``overrides`` go to the
    wizard's ``create`` (``source``, ``target``, ``use_directory_mobiles``, ``overlap_hours``…)."""
    info = services.connectors.create(tenant, name=name, kind=kind, by=as_admin(services, tenant, admin),
                                      **{"accept_terms": True, **overrides})
    if consent:
        services.connectors.consent(tenant, info.id, as_admin(services, tenant, admin))
    return info.id


def make_feed_connector(services: Services, tenant: str, admin: str, feed: Feed, *, name: str = "TeleMessage",
                        **overrides: Any) -> str:
    """An archiver-feed connector reading ``feed`` with its credentials (tested by the wizard), consented."""
    return make_connector(services, tenant, admin, name=name, kind=BuiltinSource.ARCHIVER_FEED,
                          source={"url": feed.url, "username": feed.username}, source_password=feed.password,
                          **overrides)


def mapping_csv(rows: Mapping[str, str], key: str = "name") -> str:
    """A mapping CSV of ``key`` (``name`` or ``mobile``) → e-mail rows, with its header line."""
    return f"{key},email\n" + "".join(f"{k},{email}\n" for k, email in rows.items())


def upload_mapping(services: Services, tenant: str, connector: str, rows: Mapping[str, str],
                   key: str = "name") -> MappingUpload:
    """The connector's mapping CSV replaced by ``rows`` (``mapping_csv``)."""
    return services.connectors.upload_mapping(tenant, connector, mapping_csv(rows, key))


def make_run(services: Services, tenant: str, connector: str, *exports: tuple[str, bytes | Path],
             owner: str = "bob@contoso.com", now: datetime | None = None, **hand_in: Any) -> RunReport:
    """A manual run of the connector, after handing it ``exports`` ((file name, bytes or path) pairs) from
    ``owner``'s phone; ``hand_in`` goes to ``add_export`` (``chat_name``). The run's report."""
    for filename, data in exports:
        services.connectors.add_export(tenant, connector, data, filename, owner, **hand_in)
    return services.connectors.run(tenant, connector, now=now)
