"""Trust's rules, on both backends: partner applications, the authorisation configuration and its rotation,
service-principal keys, and the seed's last step (``check``)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tenantry.app import Services
from tenantry.core.errors import Conflict, Invalid, NotFound
from tenantry.trust import certificates
from tenantry.trust.results import CertificateRole

SFB = "00000004-0000-0ff1-ce00-000000000000"


def test_a_partner_application_is_named_once_per_tenant_with_a_guid(backend: Services, tenant: str) -> None:
    trust = backend.trust
    made = trust.create_partner(tenant, name="SfBOnline", application_id=SFB.upper())
    assert made.application_id == SFB and made.enabled and made.linked_account is None
    assert made.realm == trust.auth_config(tenant).realm
    with pytest.raises(Conflict, match="named 'SfBOnline'"):
        trust.create_partner(tenant, name="SfBOnline", application_id="11111111-1111-1111-1111-111111111111")
    with pytest.raises(Conflict, match="ApplicationIdentifier"):
        trust.create_partner(tenant, name="Other", application_id=SFB)
    with pytest.raises(Invalid, match="GUID"):
        trust.create_partner(tenant, name="Bad", application_id="not-a-guid")
    with pytest.raises(NotFound, match="no user"):
        trust.create_partner(tenant, name="Linked", application_id="22222222-2222-2222-2222-222222222222",
                             linked_account="nobody")
    assert [p.name for p in trust.partners(tenant)] == ["SfBOnline"]
    assert trust.find_partner(tenant, SFB) == trust.find_partner(tenant, "SfBOnline") == made.id


def test_a_partner_is_enabled_and_disabled_and_another_tenant_cannot_find_it(backend: Services, tenant: str) -> None:
    trust = backend.trust
    made = trust.create_partner(tenant, name="Voice", application_id=SFB, enabled=False)
    assert not made.enabled
    assert trust.set_enabled(tenant, made.id, True).enabled
    assert not trust.set_enabled(tenant, made.id, False).enabled
    other = f"{tenant}-o"
    backend.directory.create_tenant(other, "Other")
    with pytest.raises(NotFound):
        trust.find_partner(other, "Voice")
    with pytest.raises(NotFound):
        trust.set_enabled(other, made.id, True)
    with pytest.raises(NotFound):
        trust.service_principal(other, made.id)


def test_the_auth_config_is_made_on_first_use_with_a_two_year_rsa_certificate(backend: Services, tenant: str) -> None:
    config = backend.trust.auth_config(tenant)
    assert config.next_certificate_thumbprint is None and config.previous_certificate_thumbprint is None
    der = backend.trust.export_certificate(tenant)
    cert = x509.load_der_x509_certificate(der)
    assert cert.fingerprint(hashes.SHA1()).hex().upper() == config.current_certificate_thumbprint  # noqa: S303
    assert cert.public_key().key_size == 2048  # type: ignore[union-attr]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=730)
    assert backend.trust.auth_config(tenant).current_certificate_thumbprint == config.current_certificate_thumbprint


def test_the_private_key_is_stored_sealed(backend: Services, tenant: str) -> None:
    from sqlalchemy import select

    from tenantry.trust.models import AuthCertificate

    backend.trust.auth_config(tenant)
    with backend.db.session() as session:
        sealed = session.scalar(select(AuthCertificate.private_key).where(AuthCertificate.tenant_id == tenant))
    assert sealed is not None and "PRIVATE KEY" not in sealed
    assert "BEGIN PRIVATE KEY" in backend.secrets.open(sealed)


def test_rotation_publishes_next_then_switches_then_retires_previous(backend: Services, tenant: str) -> None:
    trust = backend.trust
    first = trust.auth_config(tenant).current_certificate_thumbprint
    with pytest.raises(Conflict, match="publish-next"):
        trust.switch(tenant)
    with pytest.raises(NotFound, match="previous"):
        trust.retire_previous(tenant)
    effective = datetime.now(UTC) + timedelta(days=1)
    published = trust.publish_next(tenant, effective_at=effective)
    nxt = published.next_certificate_thumbprint
    assert nxt and nxt != first and published.current_certificate_thumbprint == first
    assert published.next_certificate_effective_date is not None
    assert abs(published.next_certificate_effective_date - effective) < timedelta(seconds=1)
    with pytest.raises(Conflict, match="already published"):
        trust.publish_next(tenant)
    with pytest.raises(Conflict, match="effective from"):
        trust.switch(tenant)
    switched = trust.switch(tenant, force=True)
    assert (switched.current_certificate_thumbprint, switched.previous_certificate_thumbprint,
            switched.next_certificate_thumbprint) == (nxt, first, None)
    trust.publish_next(tenant)
    with pytest.raises(Conflict, match="retire it"):
        trust.switch(tenant, force=True)
    retired = trust.retire_previous(tenant)
    assert retired.previous_certificate_thumbprint is None and retired.current_certificate_thumbprint == nxt
    assert [c.role for c in retired.certificates] == [CertificateRole.CURRENT, CertificateRole.NEXT]


def test_an_imported_next_certificate_needs_its_own_private_key(backend: Services, tenant: str) -> None:
    now = datetime.now(UTC)
    a = certificates.generate("imported", now, 365)
    b = certificates.generate("other", now, 365)
    with pytest.raises(Invalid, match="not the certificate's"):
        backend.trust.publish_next(tenant, certificate_pem=certificates.pem(a.certificate),
                                   private_key_pem=b.private_key_pem)
    with pytest.raises(Invalid, match="both"):
        backend.trust.publish_next(tenant, certificate_pem=certificates.pem(a.certificate))
    config = backend.trust.publish_next(tenant, certificate_pem=certificates.pem(a.certificate),
                                        private_key_pem=a.private_key_pem)
    assert config.next_certificate_thumbprint == certificates.sha1_thumbprint(a.certificate)


def test_a_service_principal_key_takes_the_certificates_dates_unless_given(backend: Services, tenant: str) -> None:
    trust = backend.trust
    partner = trust.create_partner(tenant, name="SfBOnline", application_id=SFB).id
    der = trust.export_certificate(tenant)
    cert = x509.load_der_x509_certificate(der)
    key = trust.add_service_principal_key(tenant, partner, base64.b64encode(der))
    assert (key.usage, key.type) == ("Verify", "AsymmetricX509Cert")
    assert (key.start_date, key.end_date) == (cert.not_valid_before_utc, cert.not_valid_after_utc)
    assert base64.b64decode(key.value) == der
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    dated = trust.add_service_principal_key(tenant, partner, der, start=start, end=end)
    assert (dated.start_date, dated.end_date) == (start, end)
    with pytest.raises(Invalid, match="end date"):
        trust.add_service_principal_key(tenant, partner, der, start=end, end=start)
    assert [k.key_id for k in trust.service_principal(tenant, partner).keys] == [key.key_id, dated.key_id]


@pytest.mark.parametrize("value", [b"hello, this is no certificate", b"", base64.b64encode(b"\x30\x03\x02\x01\x01"),
                                   b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_a_value_that_is_no_certificate_is_refused(backend: Services, tenant: str, value: bytes) -> None:
    partner = backend.trust.create_partner(tenant, name="P", application_id=SFB).id
    with pytest.raises(Invalid):
        backend.trust.add_service_principal_key(tenant, partner, value)
    assert backend.trust.service_principal(tenant, partner).keys == []


def test_a_private_key_is_refused_as_a_service_principal_key(backend: Services, tenant: str) -> None:
    partner = backend.trust.create_partner(tenant, name="P", application_id=SFB).id
    made = certificates.generate("x", datetime.now(UTC), 10)
    with pytest.raises(Invalid):
        backend.trust.add_service_principal_key(tenant, partner, made.private_key_pem.encode())


def test_check_says_per_partner_whether_our_current_certificate_is_held_with_its_dates(
        backend: Services, tenant: str) -> None:
    trust = backend.trust
    good = trust.create_partner(tenant, name="A-good", application_id=SFB).id
    dated = trust.create_partner(tenant, name="B-dates", application_id="11111111-1111-1111-1111-111111111111").id
    trust.create_partner(tenant, name="C-none", application_id="22222222-2222-2222-2222-222222222222")
    der = trust.export_certificate(tenant)
    trust.add_service_principal_key(tenant, good, der)
    trust.add_service_principal_key(tenant, dated, der, start=datetime(2026, 1, 1, tzinfo=UTC))
    result = trust.check(tenant)
    assert not result.ok
    by = {p.partner: p for p in result.partners}
    assert by["A-good"].ok and by["A-good"].what_to_do is None
    assert by["B-dates"].key_found and not by["B-dates"].dates_match and not by["B-dates"].ok
    assert "dates" in (by["B-dates"].what_to_do or "")
    assert not by["C-none"].key_found and "auth-cert export" in (by["C-none"].what_to_do or "")


def test_after_a_switch_check_asks_for_the_new_certificate(backend: Services, tenant: str) -> None:
    trust = backend.trust
    partner = trust.create_partner(tenant, name="SfBOnline", application_id=SFB).id
    trust.add_service_principal_key(tenant, partner, trust.export_certificate(tenant))
    assert trust.check(tenant).ok
    trust.publish_next(tenant)
    trust.add_service_principal_key(tenant, partner, trust.export_certificate(tenant, CertificateRole.NEXT))
    trust.switch(tenant, force=True)
    assert trust.check(tenant).ok      # the partner added the next one ahead: no gap
    trust.retire_previous(tenant)
    trust.publish_next(tenant)
    trust.switch(tenant, force=True)
    assert not trust.check(tenant).ok
