"""Trust's logic: partner applications, the tenant's authorisation configuration with its signing certificates
and their rotation (publish next → switch → retire previous), the keys partners' service principals hold, and
the seed's last step (``check``): does each partner hold our current certificate, with the same dates?"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import FOR_WRITE, Database, add_named
from tenantry.core.errors import Conflict, Invalid, NotFound
from tenantry.core.secrets import SecretBox
from tenantry.directory.service import DirectoryService
from tenantry.trust import certificates
from tenantry.trust.models import AuthCertificate, AuthConfig, PartnerApplication, ServicePrincipalKey
from tenantry.trust.results import (
    KEY_TYPE,
    KEY_USAGE,
    AuthConfigInfo,
    CertificateInfo,
    CertificateRole,
    PartnerApp,
    PartnerCheck,
    ServicePrincipal,
    SpKey,
    TrustCheck,
)

# Exchange's own ApplicationIdentifier: partners of seed 002 name it in a token's audience.
SERVICE_NAME = "00000002-0000-0ff1-ce00-000000000000"
CERTIFICATE_DAYS = 730          # a generated certificate is valid two years, as Exchange's own
NEXT_NOTICE = timedelta(days=2)  # a next certificate published without a date becomes effective after this
MAX_VALUE_BYTES = 64 * 1024     # a certificate is a few KB; a larger value is no certificate


class TrustService:
    def __init__(self, db: Database, secrets: SecretBox, directory: DirectoryService) -> None:
        self.db = db
        self.secrets = secrets
        self.directory = directory

    # -- partner applications --------------------------------------------------------------------------------

    def create_partner(self, tenant: str, *, name: str, application_id: str, realm: str | None = None,
                       enabled: bool = True, linked_account: str | None = None) -> PartnerApp:
        """``New-PartnerApplication -Name -ApplicationIdentifier -Enabled -LinkedAccount``; the realm defaults to
        the tenant's (the auth configuration's)."""
        name = name.strip()
        if not name or len(name) > 256:
            raise Invalid("a partner application needs a name (at most 256 characters)")
        app_id = _guid(application_id)
        if linked_account is not None:
            self._check_user(tenant, linked_account)
        realm = (realm or "").strip() or self.auth_config(tenant).realm
        row = PartnerApplication(id=str(uuid.uuid4()), tenant_id=tenant, name=name, application_id=app_id,
                                 realm=realm, enabled=enabled, linked_account=linked_account, created_at=utcnow())
        with self.db.session() as session:
            taken = session.scalar(select(PartnerApplication.name).where(
                PartnerApplication.tenant_id == tenant, PartnerApplication.application_id == app_id))
            if taken is not None:
                raise Conflict(f"the partner application {taken!r} has the ApplicationIdentifier {app_id}")
            add_named(session, row, PartnerApplication.name, PartnerApplication.tenant_id, "partner application")
            return _partner(row)

    def find_partner(self, tenant: str, ref: str) -> str:
        """A partner's id from its id, its name or its ApplicationIdentifier, in this tenant."""
        with self.db.session() as session:
            found = session.scalar(select(PartnerApplication.id).where(
                PartnerApplication.tenant_id == tenant,
                (PartnerApplication.id == ref) | (PartnerApplication.name == ref)
                | (PartnerApplication.application_id == ref.strip().lower())))
        if found is None:
            raise NotFound(f"no partner application {ref!r}")
        return found

    def partners(self, tenant: str) -> list[PartnerApp]:
        with self.db.session() as session:
            rows = session.scalars(select(PartnerApplication).where(PartnerApplication.tenant_id == tenant)
                                   .order_by(PartnerApplication.name))
            return [_partner(r) for r in rows]

    def partner(self, tenant: str, partner_id: str) -> PartnerApp:
        with self.db.session() as session:
            return _partner(_own_partner(session, tenant, partner_id))

    def set_enabled(self, tenant: str, partner_id: str, enabled: bool) -> PartnerApp:
        with self.db.writing(), self.db.session() as session:
            row = _own_partner(session, tenant, partner_id, lock=True)
            row.enabled = enabled
            return _partner(row)

    def delete_partner(self, tenant: str, partner_id: str) -> None:
        with self.db.writing(), self.db.session() as session:
            session.delete(_own_partner(session, tenant, partner_id, lock=True))

    def _check_user(self, tenant: str, user_id: str) -> None:
        if not self.directory.users_by_id(tenant, [user_id]):
            raise NotFound(f"no user {user_id!r} in this tenant")

    # -- the authorisation configuration ---------------------------------------------------------------------

    def auth_config(self, tenant: str) -> AuthConfigInfo:
        """``Get-AuthConfig``; on first use the configuration is made with a new current certificate (2 years)."""
        with self.db.writing(), self.db.session() as session:
            config = session.get(AuthConfig, tenant)
            if config is None:
                config = AuthConfig(tenant_id=tenant, service_name=SERVICE_NAME, realm=str(uuid.uuid4()),
                                    created_at=utcnow())
                session.add(config)
                self._add_certificate(session, tenant, CertificateRole.CURRENT, certificates.generate(
                    f"Tenantry Auth Certificate {tenant}", utcnow(), CERTIFICATE_DAYS), None)
                session.flush()
            rows = {CertificateRole(r.role): r for r in session.scalars(
                select(AuthCertificate).where(AuthCertificate.tenant_id == tenant))}
            current, nxt, previous = (rows.get(role) for role in CertificateRole)
            if current is None:   # pragma: no cover - a switch always leaves one; a broken database does not
                raise Conflict("the authorisation configuration has no current certificate")
            return AuthConfigInfo(
                service_name=config.service_name, realm=config.realm,
                current_certificate_thumbprint=current.thumbprint,
                next_certificate_thumbprint=nxt.thumbprint if nxt else None,
                next_certificate_effective_date=as_utc(nxt.effective_at) if nxt and nxt.effective_at else None,
                previous_certificate_thumbprint=previous.thumbprint if previous else None,
                certificates=[_certificate(rows[role]) for role in CertificateRole if role in rows])

    def export_certificate(self, tenant: str, role: CertificateRole = CertificateRole.CURRENT) -> bytes:
        """The certificate as DER (the seed's ``$oAuthCert.Export(Cert)`` → ``OAuthCert.cer``)."""
        self.auth_config(tenant)
        with self.db.session() as session:
            row = _role(session, tenant, role)
            return certificates.der(certificates.load_pem(row.certificate_pem))

    def publish_next(self, tenant: str, *, effective_at: datetime | None = None, certificate_pem: str | None = None,
                     private_key_pem: str | None = None) -> AuthConfigInfo:
        """``Set-AuthConfig -NewCertificateThumbprint -NewCertificateEffectiveDate``: a next certificate, generated
        or imported (certificate and its private key, PEM), published ahead so partners can add it."""
        self.auth_config(tenant)
        now = utcnow()
        when = as_utc(effective_at) if effective_at else now + NEXT_NOTICE
        if when < now - timedelta(minutes=5):
            raise Invalid("the next certificate's effective date is in the past")
        made = _imported(certificate_pem, private_key_pem) if certificate_pem or private_key_pem else \
            certificates.generate(f"Tenantry Auth Certificate {tenant}", now, CERTIFICATE_DAYS)
        if certificates.not_after(made.certificate) <= when:
            raise Invalid("the next certificate expires before it would become effective")
        with self.db.writing(), self.db.session() as session:
            if session.scalar(_role_query(tenant, CertificateRole.NEXT)) is not None:
                raise Conflict("a next certificate is already published: switch to it first")
            current = _role(session, tenant, CertificateRole.CURRENT)
            if current.thumbprint == certificates.sha1_thumbprint(made.certificate):
                raise Conflict("that certificate is already the current one")
            self._add_certificate(session, tenant, CertificateRole.NEXT, made, when)
        return self.auth_config(tenant)

    def switch(self, tenant: str, *, force: bool = False) -> AuthConfigInfo:
        """The next certificate becomes current, the current previous (still accepted until retired)."""
        self.auth_config(tenant)
        with self.db.writing(), self.db.session() as session:
            nxt = session.scalar(_role_query(tenant, CertificateRole.NEXT).with_for_update(**FOR_WRITE))
            if nxt is None:
                raise Conflict("no next certificate is published: auth-cert rotate publish-next first")
            if nxt.effective_at and as_utc(nxt.effective_at) > utcnow() and not force:
                raise Conflict(f"the next certificate is effective from {as_utc(nxt.effective_at).isoformat()}; "
                               "switch then, or force it")
            if session.scalar(_role_query(tenant, CertificateRole.PREVIOUS)) is not None:
                raise Conflict("a previous certificate is still accepted: retire it before switching again")
            current = _role(session, tenant, CertificateRole.CURRENT)
            current.role = CertificateRole.PREVIOUS
            session.flush()   # the unique (tenant, role) holds at every statement
            nxt.role = CertificateRole.CURRENT
            nxt.effective_at = None
        return self.auth_config(tenant)

    def retire_previous(self, tenant: str) -> AuthConfigInfo:
        self.auth_config(tenant)
        with self.db.writing(), self.db.session() as session:
            previous = session.scalar(_role_query(tenant, CertificateRole.PREVIOUS))
            if previous is None:
                raise NotFound("no previous certificate to retire")
            session.delete(previous)
        return self.auth_config(tenant)

    def _add_certificate(self, session: Session, tenant: str, role: CertificateRole,
                         made: certificates.Generated, effective_at: datetime | None) -> None:
        cert = made.certificate
        session.add(AuthCertificate(
            id=str(uuid.uuid4()), tenant_id=tenant, role=role, certificate_pem=certificates.pem(cert),
            private_key=self.secrets.seal(made.private_key_pem), thumbprint=certificates.sha1_thumbprint(cert),
            thumbprint_sha256=certificates.sha256_thumbprint(cert), not_before=certificates.not_before(cert),
            not_after=certificates.not_after(cert), effective_at=effective_at, created_at=utcnow()))

    # -- service principals ----------------------------------------------------------------------------------

    def add_service_principal_key(self, tenant: str, partner_id: str, value: bytes, *,
                                  start: datetime | None = None, end: datetime | None = None) -> SpKey:
        """``Add-MgServicePrincipalKey -Type asymmetric -Usage Verify -Value $credValue``: ``value`` is the
        certificate (DER, PEM or base64 DER); the dates default to the certificate's own."""
        if len(value) > MAX_VALUE_BYTES:
            raise Invalid(f"the value is larger than {MAX_VALUE_BYTES} bytes: it is no certificate")
        cert = certificates.read(value)
        start_at = as_utc(start) if start else certificates.not_before(cert)
        end_at = as_utc(end) if end else certificates.not_after(cert)
        if end_at <= start_at:
            raise Invalid("the key's end date must be after its start date")
        der = certificates.der(cert)
        with self.db.writing(), self.db.session() as session:
            _own_partner(session, tenant, partner_id, lock=True)
            row = ServicePrincipalKey(
                id=str(uuid.uuid4()), tenant_id=tenant, partner_id=partner_id, usage=KEY_USAGE, type=KEY_TYPE,
                value=base64.b64encode(der).decode(), thumbprint=certificates.sha1_thumbprint(cert),
                thumbprint_sha256=certificates.sha256_thumbprint(cert), start_at=start_at, end_at=end_at,
                added_at=utcnow())
            session.add(row)
            return _key(row, _our_thumbprints(session, tenant))

    def remove_service_principal_key(self, tenant: str, partner_id: str, key_id: str) -> None:
        with self.db.writing(), self.db.session() as session:
            _own_partner(session, tenant, partner_id)
            row = session.get(ServicePrincipalKey, key_id)
            if row is None or row.partner_id != partner_id or row.tenant_id != tenant:
                raise NotFound(f"no key {key_id!r} on this service principal")
            session.delete(row)

    def service_principal(self, tenant: str, partner_id: str) -> ServicePrincipal:
        """``Get-MgServicePrincipal``: the partner and its keys, with their dates."""
        with self.db.session() as session:
            partner = _own_partner(session, tenant, partner_id)
            return ServicePrincipal(partner.name, partner.application_id, _keys(session, tenant, partner_id))

    # -- the seed's last step --------------------------------------------------------------------------------

    def check(self, tenant: str) -> TrustCheck:
        """For each partner: a key on its service principal with our current certificate's thumbprint, and
        with start/end dates equal to the certificate's (the seed's step 6 warns about exactly that)."""
        config = self.auth_config(tenant)
        with self.db.session() as session:
            current = _role(session, tenant, CertificateRole.CURRENT)
            nb, na = as_utc(current.not_before), as_utc(current.not_after)
            partners = list(session.scalars(select(PartnerApplication).where(PartnerApplication.tenant_id == tenant)
                                            .order_by(PartnerApplication.name)))
            results = [_check_one(p, _keys(session, tenant, p.id), current.thumbprint, nb, na) for p in partners]
        return TrustCheck(ok=all(r.ok for r in results), current_certificate_thumbprint=config.
                          current_certificate_thumbprint, not_before=nb, not_after=na, partners=results)


def _check_one(partner: PartnerApplication, keys: list[SpKey], thumbprint: str, nb: datetime,
               na: datetime) -> PartnerCheck:
    holding = [k for k in keys if k.thumbprint == thumbprint]
    exact = [k for k in holding if _same_second(k.start_date, nb) and _same_second(k.end_date, na)]
    todo: str | None = None
    if not holding:
        todo = (f"its service principal holds no key with our current certificate ({thumbprint}): run "
                f"`tenantry auth-cert export OAuthCert.cer`, then `tenantry service-principal credential add "
                f"{partner.name} --value-file OAuthCert.cer` (the dates default to the certificate's)")
    elif not exact:
        k = holding[0]
        todo = (f"the key {k.key_id} holds our certificate, but its dates {k.start_date.isoformat()} – "
                f"{k.end_date.isoformat()} are not the certificate's {nb.isoformat()} – {na.isoformat()}: add it "
                f"again without --start/--end (`tenantry service-principal credential add {partner.name} "
                f"--value-file OAuthCert.cer`) and remove the key {k.key_id}")
    chosen = (exact or holding)[0] if holding else None
    return PartnerCheck(partner=partner.name, application_id=partner.application_id, enabled=partner.enabled,
                        key_found=bool(holding), dates_match=bool(exact), key_id=chosen.key_id if chosen else None,
                        ok=bool(exact), what_to_do=todo)


def _same_second(a: datetime, b: datetime) -> bool:
    return as_utc(a).replace(microsecond=0) == as_utc(b).replace(microsecond=0)


def _guid(value: str) -> str:
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError) as exc:
        raise Invalid(f"the ApplicationIdentifier must be a GUID (as 00000004-0000-0ff1-ce00-000000000000), "
                      f"not {value!r}") from exc


def _imported(certificate_pem: str | None, private_key_pem: str | None) -> certificates.Generated:
    if not certificate_pem or not private_key_pem:
        raise Invalid("importing a certificate needs both the certificate and its private key (PEM)")
    cert = certificates.read(certificate_pem.encode())
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise Invalid("the private key is not an unencrypted PEM private key") from exc
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise Invalid("the private key is not the certificate's")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return certificates.Generated(cert, pem)


def _own_partner(session: Session, tenant: str, partner_id: str, *, lock: bool = False) -> PartnerApplication:
    row = session.get(PartnerApplication, partner_id, with_for_update=FOR_WRITE if lock else None)
    if row is None or row.tenant_id != tenant:
        raise NotFound(f"no partner application {partner_id!r}")
    return row


def _role_query(tenant: str, role: CertificateRole) -> Select[AuthCertificate]:
    return select(AuthCertificate).where(AuthCertificate.tenant_id == tenant, AuthCertificate.role == role)


def _role(session: Session, tenant: str, role: CertificateRole) -> AuthCertificate:
    row = session.scalar(_role_query(tenant, role))
    if row is None:
        raise NotFound(f"no {role.value} certificate")
    return row


def _keys(session: Session, tenant: str, partner_id: str) -> list[SpKey]:
    ours = _our_thumbprints(session, tenant)
    rows = session.scalars(select(ServicePrincipalKey).where(
        ServicePrincipalKey.tenant_id == tenant, ServicePrincipalKey.partner_id == partner_id)
        .order_by(ServicePrincipalKey.added_at, ServicePrincipalKey.id))
    return [_key(r, ours) for r in rows]


def _our_thumbprints(session: Session, tenant: str) -> set[str]:
    return set(session.scalars(select(AuthCertificate.thumbprint).where(AuthCertificate.tenant_id == tenant)))


def _partner(row: PartnerApplication) -> PartnerApp:
    return PartnerApp(row.id, row.name, row.application_id, row.realm, row.enabled, row.linked_account,
                      as_utc(row.created_at))


def _certificate(row: AuthCertificate) -> CertificateInfo:
    cert = certificates.load_pem(row.certificate_pem)
    return CertificateInfo(CertificateRole(row.role), row.thumbprint, row.thumbprint_sha256,
                           cert.subject.rfc4514_string(), as_utc(row.not_before), as_utc(row.not_after),
                           as_utc(row.effective_at) if row.effective_at else None)


def _key(row: ServicePrincipalKey, ours: set[str]) -> SpKey:
    return SpKey(row.id, row.usage, row.type, row.thumbprint, row.thumbprint_sha256, as_utc(row.start_at),
                 as_utc(row.end_at), as_utc(row.added_at), row.value,
                 "ours" if row.thumbprint in ours else "partner")
