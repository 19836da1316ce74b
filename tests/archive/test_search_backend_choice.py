"""Choosing the search backend: PostgreSQL full-text for deployments on several machines, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenantry.app import build_services
from tenantry.archive.search_postgres import PostgresSearchIndex
from tenantry.archive.service import WHATSAPP_FOLDER, Delivery
from tenantry.core.settings import Settings
from tests.conftest import _pg_database


@pytest.fixture()
def pg_url() -> Iterator[str]:
    gen = _pg_database()
    url = next(gen)
    yield url
    for _ in gen:
        pass


def test_postgres_backend_makes_a_delivery_searchable_from_another_process_view(pg_url: str, tmp_path: Path) -> None:
    one = build_services(Settings(data_dir=tmp_path / "a", database_url=pg_url, search_backend="postgres"))
    two = build_services(Settings(data_dir=tmp_path / "b", database_url=pg_url, search_backend="postgres"))
    assert isinstance(one.index, PostgresSearchIndex)
    one.directory.create_tenant("acme", "Acme")
    raw = b"Message-ID: <pg@t>\r\nSubject: quarterly numbers\r\n\r\nthe merger is off\r\n"
    one.archive.deliver("acme", [Delivery("u1", "u1@acme.example", WHATSAPP_FOLDER, raw, "pg@t", "chat", "test",
                                          datetime(2026, 11, 25, tzinfo=UTC))])
    # A second machine, with its own data folder, finds it: the index is in the shared database.
    result = two.ediscovery.content_search("acme", 'merger AND subject:"quarterly numbers"', "auditor")
    assert result.count == 1 and result.results[0].mailbox == "u1@acme.example"
    for services in (one, two):
        services.indexer.flush()
        services.db.dispose()


def test_unknown_or_impossible_search_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tantivy or postgres"):
        build_services(Settings(data_dir=tmp_path, search_backend="lucene"))
    with pytest.raises(ValueError, match="PostgreSQL"):
        build_services(Settings(data_dir=tmp_path, search_backend="postgres"))
