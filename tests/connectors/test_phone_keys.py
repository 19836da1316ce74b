"""Issue #10, item 3: a number phonenumbers calls invalid, which the directory accepted, still maps — by its
digits, and said so — and a CSV row with it is not refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tenantry.archive.service import WHATSAPP_FOLDER
from tenantry.core.errors import Invalid
from tenantry.protocols.phones import digit_key, matched_by_digits, phone_key
from tests.conftest import migrate_to, user_payload
from tests.connectors.conftest import NOW, FeedServer, People, feed_item
from tests.factories.connectors import make_connector, make_feed_connector, make_run

ODD = "+1 123 456 789"          # nine digits after +1: phonenumbers calls it impossible


@pytest.mark.parametrize(("raw", "key", "by_digits"), [
    ("+49 170 1234567", "+491701234567", False),
    (ODD, "+1123456789", True),
    ("tel:+1-123-456-789;ext=2", "+1123456789", True),
    ("00 1 123 456 789", "+1123456789", True),
    ("010-1234-5678", "01012345678", True),          # national, no default region: digits, not guessed
    ("not a number", None, False),
    ("112", None, False),                            # too short to be anyone's number
])
def test_phone_key_is_e164_else_the_digits_of_a_number_shaped_value(raw: str, key: str | None,
                                                                    by_digits: bool) -> None:
    assert phone_key(raw) == key
    assert matched_by_digits(raw) is by_digits
    if by_digits:
        assert digit_key(raw) == key


def odd_user(backend, tenant: str) -> str:  # noqa: ANN001
    return str(backend.scim.create(tenant, "User", user_payload(
        "dana@contoso.com", emails=[{"type": "work", "value": "dana@contoso.com", "primary": True}],
        phoneNumbers=[{"type": "mobile", "value": ODD}]))["id"])


def test_scim_filter_on_the_digits_finds_a_user_whose_number_is_not_valid(backend, tenant) -> None:  # noqa: ANN001
    dana = odd_user(backend, tenant)
    for written in (ODD, "+1123456789", "001-123-456-789"):
        found = backend.scim.search(tenant, "User", filter_text=f'phoneNumbers.value eq "{written}"')
        assert [r["id"] for r in found.resources] == [dana], written


def test_a_participant_with_a_provisioned_invalid_number_maps_by_directory_mobile_and_is_noted(
        backend, tenant, people: People) -> None:  # noqa: ANN001
    dana = odd_user(backend, tenant)
    items = [feed_item(1, sender={"phone": "+11234 56789", "name": "Dana"},
                       participants=[{"phone": "+11234 56789"}, {"phone": "+491701111111"}])]
    with FeedServer(items, {}) as feed:
        cid = make_feed_connector(backend, tenant, people.admin, feed)
        report = backend.connectors.run(tenant, cid, now=NOW)
    assert report.status == "succeeded" and report.imported == 1 and report.copies == 2
    assert backend.archive.count(tenant, dana, WHATSAPP_FOLDER) == 1
    assert report.unmapped_participants == []
    notes = [i for i in report.issues if i.reason == "notice"]
    assert len(notes) == 1 and "by its digits" in notes[0].detail and "dana@contoso.com" in notes[0].detail
    assert report.skipped_by_reason == {}


def test_a_csv_row_with_a_number_the_directory_accepted_is_kept_with_a_note_and_maps(
        backend, tenant, people: People) -> None:  # noqa: ANN001
    items = [feed_item(1, sender={"phone": ODD, "name": "Carol's work phone"},
                       participants=[{"phone": ODD}, {"phone": "+491701111111"}])]
    with FeedServer(items, {}) as feed:
        cid = make_feed_connector(backend, tenant, people.admin, feed)
        saved = backend.connectors.upload_mapping(tenant, cid, f"mobile,email\n{ODD},carol@contoso.com\n")
        assert saved.entries == 1 and len(saved.notes) == 1
        assert "line 2" in saved.notes[0] and "+1123456789" in saved.notes[0]
        with pytest.raises(Invalid, match="line 2"):   # what is no number at all is still refused
            backend.connectors.upload_mapping(tenant, cid, "mobile,email\ncall me,carol@contoso.com\n")
        assert backend.connectors.describe(tenant, cid).mapping_entries == 1
        report = backend.connectors.run(tenant, cid, now=NOW)
    assert backend.archive.count(tenant, people.carol, WHATSAPP_FOLDER) == 1
    assert any(i.reason == "notice" and "(csv) by its digits" in i.detail for i in report.issues)


def test_an_export_author_written_as_an_invalid_number_is_a_phone_participant(
        backend, tenant, people: People) -> None:  # noqa: ANN001
    dana = odd_user(backend, tenant)
    cid = make_connector(backend, tenant, people.admin, source={"timezone": "UTC"})
    text = f"12/01/2024, 09:00 - {ODD}: hello from an odd number\n12/01/2024, 09:01 - Bob: hi\n"
    report = make_run(backend, tenant, cid, ("WhatsApp Chat with Dana.txt", text.encode()), owner=people.bob)
    assert report.imported == 2
    assert [u.participant for u in report.unmapped_participants] == ["Bob"]   # the owner's name only
    assert backend.archive.count(tenant, dana, WHATSAPP_FOLDER) == 2


def test_migration_gives_existing_invalid_numbers_their_digit_key_and_leaves_the_rest(
        blank_engine: sa.Engine) -> None:
    engine = blank_engine
    migrate_to(engine, "0008_feed_overlap")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('t1', 't1', :at)"), {"at": t0})
        conn.execute(sa.text(
            "INSERT INTO users (id, tenant_id, user_name, user_name_key, active, created, last_modified, version, "
            "resource) VALUES ('u1', 't1', 'dana', 'dana', TRUE, :at, :at, 1, '{}')"), {"at": t0})
        for value, e164 in ((ODD, None), ("+49 170 1234567", "+491701234567"), ("call me", None)):
            conn.execute(sa.text(
                "INSERT INTO user_values (user_id, tenant_id, attr, type_key, entry, value_key, e164) "
                "VALUES ('u1', 't1', 'phonenumbers.value', 'mobile', 0, :v, :e)"), {"v": value, "e": e164})
    migrate_to(engine, "0009_phone_keys")
    with engine.connect() as conn:
        keys = dict(conn.execute(sa.text("SELECT value_key, e164 FROM user_values")).all())
    assert keys == {ODD: "+1123456789", "+49 170 1234567": "+491701234567", "call me": None}
