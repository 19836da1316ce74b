"""Directory logic beyond SCIM: tenants, bearer tokens, verified domains, licences, admin role groups, and the
application accounts of server-to-server trust (mail users hidden from address lists, roles assigned directly)."""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from scim2_models import UniquenessException
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenantry.core.access import ADMIN_ROLES
from tenantry.core.batches import chunks
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import FOR_WRITE, Database
from tenantry.core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from tenantry.core.ids import new_id, new_secret, secret_hash
from tenantry.core.principals import Principal, PrincipalKind, operator
from tenantry.directory.catalogue import DEFAULT_ROLE_GROUPS, LICENCES, ROLES
from tenantry.directory.models import (
    ApiToken,
    Domain,
    Group,
    GroupMember,
    LicenceAssignment,
    ManagementRoleAssignment,
    RoleGroup,
    RoleGroupMember,
    RoleGroupRole,
    Tenant,
    User,
    UserValue,
)
from tenantry.directory.results import DomainInfo, MailUserInfo, RoleAssignmentInfo, RoleGroupInfo, TenantInfo
from tenantry.directory.scim_store import ScimStore
from tenantry.protocols.scim.resources import ENTERPRISE_USER

_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# The local part of a mail user's address: RFC 5322's dot-atom, printable ASCII without specials.
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
# The roles a user may hold directly (not through a role group): those of the catalogue no administrator
# needs — the partner roles of seed 002 (UserApplication, ArchiveApplication). An administrator role comes from a
# role group, so that who administers the tenant is always read from one place (``tenantry directory
# role-groups``) and an application account never administers anything.
DIRECT_ROLES = tuple(role for role in ROLES if role not in ADMIN_ROLES)


class TokenScope(StrEnum):
    """What a bearer token opens (docs/security.md, "Credentials and scopes")."""

    SCIM = "scim"            # one tenant's SCIM endpoint (what an identity provider holds)
    ADMIN = "admin"          # one tenant's admin API, as the administrator it is issued to
    OPERATOR = "operator"    # the installation (listing and creating tenants), bound to the default tenant's row


SCOPES = tuple(scope.value for scope in TokenScope)


@dataclass(frozen=True)
class IssuedToken:
    id: str
    tenant_id: str
    scope: str
    name: str
    secret: str  # shown once, never stored


@dataclass(frozen=True)
class Credential:
    """Who a valid bearer secret is: its token's id and name (never the secret), tenant and scope, and for an
    admin token the administrator it was issued to."""

    id: str
    name: str
    tenant_id: str
    scope: str
    user_id: str | None = None


@dataclass(frozen=True)
class TokenInfo:
    id: str
    tenant_id: str
    scope: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    user_id: str | None = None


# How long a verified token is trusted without asking the database again. A revocation in this process takes
# effect at once (the cache is cleared); in another process (a second server) within this many seconds.
TOKEN_CACHE_SECONDS = 5.0


class DirectoryService:
    def __init__(self, db: Database, scim: ScimStore | None = None) -> None:
        self.db = db
        # Mail users are created through the SCIM store, so that they are the same well-formed resources an
        # identity provider's users are.
        self.scim = scim or ScimStore(db)
        self._token_cache: dict[str, tuple[Credential, float]] = {}
        self._principal_cache: dict[str, tuple[Principal, float]] = {}

    # -- tenants -------------------------------------------------------------------

    def ensure_tenant(self, tenant_id: str, name: str | None = None) -> bool:
        """Create the tenant (with its built-in role groups) unless it exists; True when created."""
        with self.db.session() as session:
            if session.get(Tenant, tenant_id) is not None:
                return False
        try:
            self.create_tenant(tenant_id, name or tenant_id)
        except Conflict:   # another process's first start (several servers started at once) made it just now
            return False
        return True

    def create_tenant(self, tenant_id: str, name: str) -> TenantInfo:
        if not _TENANT_ID.match(tenant_id):
            raise Invalid(f"tenant id {tenant_id!r}: use 1-63 lower-case letters, digits and '-'")
        now = utcnow()
        try:
            with self.db.session() as session:
                session.add(Tenant(id=tenant_id, name=name, created_at=now))
                session.flush()
                self._add_builtin_role_groups(session, tenant_id, DEFAULT_ROLE_GROUPS)
        except IntegrityError as exc:
            raise Conflict(f"tenant {tenant_id!r} already exists") from exc
        return TenantInfo(tenant_id, name, now.isoformat())

    def ensure_builtin_role_groups(self, tenant_id: str) -> list[str]:
        """Add the built-in role groups a tenant created by an older version lacks (eDiscovery Management came
        with issue #12); the names added. Idempotent; a group an administrator already named so is left alone."""
        with self.db.writing(), self.db.session() as session:
            self.require_tenant(session, tenant_id, lock=True)
            have = set(session.scalars(select(RoleGroup.name).where(RoleGroup.tenant_id == tenant_id)))
            missing = {name: roles for name, roles in DEFAULT_ROLE_GROUPS.items() if name not in have}
            self._add_builtin_role_groups(session, tenant_id, missing)
            return list(missing)

    @staticmethod
    def _add_builtin_role_groups(session: Session, tenant_id: str, groups: dict[str, list[str]]) -> None:
        for group_name, roles in groups.items():
            group_id = new_id()
            session.add(RoleGroup(id=group_id, tenant_id=tenant_id, name=group_name, description="built-in",
                                  created_at=utcnow()))
            session.flush()
            for role in roles:
                session.add(RoleGroupRole(role_group_id=group_id, role=role))

    def list_tenants(self) -> list[TenantInfo]:
        with self.db.session() as session:
            return [TenantInfo(t.id, t.name, t.created_at.isoformat())
                    for t in session.scalars(select(Tenant).order_by(Tenant.id))]

    def require_tenant(self, session: Session, tenant_id: str, *, lock: bool = False) -> Tenant:
        tenant = session.get(Tenant, tenant_id, with_for_update=FOR_WRITE if lock else None)
        if tenant is None:
            raise NotFound(f"no tenant {tenant_id!r}")
        return tenant

    # -- tokens ----------------------------------------------------------------------

    def issue_token(self, tenant_id: str, scope: str, name: str = "default", secret: str | None = None, *,
                    user_id: str | None = None) -> IssuedToken:
        """A new bearer token; an admin token is issued to ``user_id``, an active directory user of the tenant
        (it carries that administrator's roles); SCIM and operator tokens to nobody."""
        if scope not in SCOPES:
            raise Invalid(f"scope must be one of {', '.join(SCOPES)}")
        if (scope == TokenScope.ADMIN) != (user_id is not None):
            raise Invalid("an admin token is issued to an administrator (--for <user>), and only an admin token is")
        secret = secret or new_secret(f"tnt_{scope}")
        if len(secret) < 16:
            raise Invalid("a token must be at least 16 characters long")
        with self.db.session() as session:
            self.require_tenant(session, tenant_id)
            if user_id is not None:
                user = self._require_user(session, tenant_id, user_id)
                if not user.active:
                    raise Invalid(f"user {user.user_name!r} is deactivated; an admin token needs an active user")
            token = ApiToken(id=new_id(), tenant_id=tenant_id, scope=scope, name=name,
                             token_hash=secret_hash(secret), created_at=utcnow(), user_id=user_id)
            session.add(token)
            try:
                session.flush()
            except IntegrityError as exc:
                raise Conflict("that token already exists") from exc
            return IssuedToken(token.id, tenant_id, scope, name, secret)

    def ensure_token(self, tenant_id: str, scope: str, secret: str, name: str = "bootstrap", *,
                     user_id: str | None = None) -> None:
        """Make ``secret`` a valid token (idempotent): for automation that sets it from the environment."""
        with self.db.session() as session:
            found = session.scalar(select(ApiToken).where(ApiToken.token_hash == secret_hash(secret)))
            if found is not None:
                if found.tenant_id != tenant_id or found.scope != scope or found.revoked_at is not None:
                    raise Conflict("the bootstrap token is already used for another tenant or scope, or revoked")
                return
        self.issue_token(tenant_id, scope, name, secret, user_id=user_id)

    def token_known(self, secret: str) -> bool:
        """Whether a token with this secret exists (active or revoked)."""
        with self.db.session() as session:
            return session.scalar(select(ApiToken.id).where(ApiToken.token_hash == secret_hash(secret))) is not None

    def has_unowned_admin_tokens(self, tenant_id: str) -> bool:
        """Whether the tenant has admin tokens issued before administrators had identities (issue #12)."""
        with self.db.session() as session:
            unowned = select(ApiToken.id).where(ApiToken.tenant_id == tenant_id, ApiToken.scope == TokenScope.ADMIN,
                                                ApiToken.user_id.is_(None))
            return session.scalar(unowned.limit(1)) is not None

    def adopt_admin_tokens(self, tenant_id: str, user_id: str) -> int:
        """Give the tenant's admin tokens issued before administrators had identities (no user) to ``user_id``
        (the first administrator); how many. Idempotent."""
        with self.db.session() as session:
            tokens = list(session.scalars(select(ApiToken).where(
                ApiToken.tenant_id == tenant_id, ApiToken.scope == TokenScope.ADMIN, ApiToken.user_id.is_(None))))
            for token in tokens:
                token.user_id = user_id
        self._forget_credentials()
        return len(tokens)

    def rotate_token(self, token_id: str) -> IssuedToken:
        """Revoke a token and issue its successor with the same tenant, scope and name."""
        with self.db.writing(), self.db.session() as session:
            # Locked: of two rotations at once one revokes and issues a successor; the other finds it revoked.
            token = session.get(ApiToken, token_id, with_for_update=FOR_WRITE)
            if token is None or token.revoked_at is not None:
                raise NotFound(f"no active token {token_id!r}")
            token.revoked_at = utcnow()
            tenant_id, scope, name, user_id = token.tenant_id, token.scope, token.name, token.user_id
        self._forget_credentials()
        return self.issue_token(tenant_id, scope, name, user_id=user_id)

    def revoke_token(self, token_id: str) -> None:
        with self.db.session() as session:
            token = session.get(ApiToken, token_id)
            if token is None:
                raise NotFound(f"no token {token_id!r}")
            if token.revoked_at is None:
                token.revoked_at = utcnow()
        self._forget_credentials()

    def list_tokens(self, tenant_id: str | None = None) -> list[TokenInfo]:
        with self.db.session() as session:
            stmt = select(ApiToken).order_by(ApiToken.created_at)
            if tenant_id:
                stmt = stmt.where(ApiToken.tenant_id == tenant_id)
            return [TokenInfo(t.id, t.tenant_id, t.scope, t.name, t.created_at, t.revoked_at, t.user_id)
                    for t in session.scalars(stmt)]

    def identify(self, secret: str | None) -> tuple[str, str]:
        """(tenant, scope) of an active bearer secret; Unauthorized when there is none, or it is unknown or
        revoked."""
        credential = self.credential(secret)
        return credential.tenant_id, credential.scope

    def credential(self, secret: str | None) -> Credential:
        """The token an active bearer secret is; Unauthorized when there is none, or it is unknown or revoked."""
        if not secret:
            raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        digest = secret_hash(secret)
        cached = self._token_cache.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        with self.db.session() as session:
            token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        # The lookup is by hash; compare again in constant time so no timing tells how close a guess was.
        if token is None or not hmac.compare_digest(token.token_hash, digest) or token.revoked_at is not None:
            raise Unauthorized("the bearer token is not valid (unknown or revoked)")
        if len(self._token_cache) > 10_000:
            self._token_cache.clear()
        credential = Credential(token.id, token.name, token.tenant_id, token.scope, token.user_id)
        self._token_cache[digest] = (credential, time.monotonic() + TOKEN_CACHE_SECONDS)
        return credential

    def authenticate(self, secret: str | None, scope: str, tenant_id: str | None) -> str:
        """The tenant a bearer secret belongs to, when it is active, of exactly ``scope`` and for ``tenant_id``.

        Unauthorized (401) when there is no valid token; Forbidden (403) when it is valid but of another scope
        or tenant. Each scope opens one door: an admin token does not open SCIM, an operator token is no
        tenant's admin (docs/security.md).
        """
        return self.authenticate_token(secret, scope, tenant_id).tenant_id

    def authenticate_token(self, secret: str | None, scope: str, tenant_id: str | None) -> Credential:
        """As ``authenticate``, but the whole credential: the token's id and name say who made a request."""
        credential = self.credential(secret)
        if credential.scope != scope:
            raise Forbidden(f"this is {_article(credential.scope)} {credential.scope} token; this endpoint needs "
                            f"{_article(scope)} {scope} token")
        if tenant_id is not None and credential.tenant_id != tenant_id:
            raise Forbidden(f"this {scope} token is not for tenant {tenant_id!r}")
        return credential

    def _forget_credentials(self) -> None:
        """Drop what this process trusts without asking the database (tokens, and the roles they carry)."""
        self._token_cache.clear()
        self._principal_cache.clear()

    def principal(self, credential: Credential) -> Principal:
        """Who an admin or operator credential is (issue #12): the administrator an admin token was issued to,
        with the roles their role groups give now, or the operator. Unauthorized when the administrator is gone
        or deactivated (a deactivated user's tokens stop working), or the token predates identities.

        Cached with the token (``TOKEN_CACHE_SECONDS``): a role change made in this process applies at once, in
        another within that many seconds.
        """
        if credential.scope == TokenScope.OPERATOR:
            return operator("operator", f"token {credential.id}")
        if credential.scope != TokenScope.ADMIN:
            raise Forbidden(f"this is {_article(credential.scope)} {credential.scope} token; the admin API needs "
                            "an admin or the operator token")
        cached = self._principal_cache.get(credential.id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        if credential.user_id is None:
            raise Unauthorized("this admin token was issued before administrators had identities: the server gives "
                               "it to the tenant's first administrator when it starts, or issue a new one with "
                               "`tenantry token create --scope admin --for <user>`")
        with self.db.session() as session:
            user = session.get(User, credential.user_id)
            if user is None or user.tenant_id != credential.tenant_id or not user.active:
                raise Unauthorized("the administrator this token was issued to is deleted or deactivated")
            found = Principal(PrincipalKind.ADMIN, user.id, user.user_name, user.tenant_id,
                              frozenset(self._roles(session, user.tenant_id, user.id)), f"token {credential.id}")
        if len(self._principal_cache) > 10_000:
            self._principal_cache.clear()
        self._principal_cache[credential.id] = (found, time.monotonic() + TOKEN_CACHE_SECONDS)
        return found

    def administrator(self, tenant_id: str, user_id: str, credential: str) -> Principal:
        """A directory user of the tenant as an administrator principal (``--as`` on the CLI, a console session):
        NotFound for no such user, Forbidden when deactivated."""
        with self.db.session() as session:
            user = self._require_user(session, tenant_id, user_id)
            if not user.active:
                raise Forbidden(f"user {user.user_name!r} is deactivated")
            return Principal(PrincipalKind.ADMIN, user.id, user.user_name, tenant_id,
                             frozenset(self._roles(session, tenant_id, user.id)), credential)

    # -- domains ------------------------------------------------------------------------

    def add_domain(self, tenant_id: str, name: str, *, verified: bool = False) -> DomainInfo:
        name = name.strip().lower().rstrip(".")
        if not _DOMAIN.match(name):
            raise Invalid(f"{name!r} is not a domain name")
        with self.db.writing(), self.db.session() as session:
            # Under the tenant's lock: of two first domains added at once, exactly one becomes the default.
            self.require_tenant(session, tenant_id, lock=True)
            has_default = session.scalar(
                select(Domain.id).where(Domain.tenant_id == tenant_id, Domain.is_default.is_(True))
            )
            domain = Domain(id=new_id(), tenant_id=tenant_id, name=name, verified=verified,
                            is_default=has_default is None,
                            verification_code=f"tenantry-verify={secrets.token_hex(16)}", created_at=utcnow())
            session.add(domain)
            try:
                session.flush()
            except IntegrityError as exc:
                raise Conflict(f"domain {name!r} already exists in tenant {tenant_id!r}") from exc
            return _domain_info(domain)

    def verify_domain(self, tenant_id: str, name: str, txt_records: list[str]) -> DomainInfo:
        """Mark a domain verified when one of its TXT records carries the verification code."""
        with self.db.session() as session:
            domain = session.scalar(select(Domain).where(Domain.tenant_id == tenant_id, Domain.name == name.lower()))
            if domain is None:
                raise NotFound(f"no domain {name!r}")
            if domain.verification_code not in [t.strip('"') for t in txt_records]:
                raise Invalid(f"no TXT record of {name} holds {domain.verification_code}")
            domain.verified = True
            return _domain_info(domain)

    def list_domains(self, tenant_id: str) -> list[DomainInfo]:
        with self.db.session() as session:
            return [_domain_info(d) for d in session.scalars(
                select(Domain).where(Domain.tenant_id == tenant_id).order_by(Domain.name))]

    def remove_domain(self, tenant_id: str, name: str) -> None:
        with self.db.session() as session:
            result = session.execute(delete(Domain).where(Domain.tenant_id == tenant_id, Domain.name == name.lower()))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"no domain {name!r}")

    # -- licences -----------------------------------------------------------------------

    def assign_licence(self, tenant_id: str, user_id: str, sku: str) -> None:
        sku = sku.upper()
        if sku not in LICENCES:
            raise Invalid(f"unknown licence {sku!r}; known: {', '.join(LICENCES)}")
        with self.db.writing(), self.db.session() as session:
            # Locked: the same licence assigned twice at once is assigned once (not a unique-key error).
            self._require_user(session, tenant_id, user_id, lock=True)
            if session.get(LicenceAssignment, (user_id, sku)) is None:
                session.add(LicenceAssignment(user_id=user_id, sku=sku, tenant_id=tenant_id, assigned_at=utcnow()))

    def remove_licence(self, tenant_id: str, user_id: str, sku: str) -> None:
        with self.db.session() as session:
            self._require_user(session, tenant_id, user_id)
            row = session.get(LicenceAssignment, (user_id, sku.upper()))
            if row is None:
                raise NotFound(f"user {user_id} has no licence {sku}")
            session.delete(row)

    def licences_of(self, tenant_id: str, user_id: str) -> list[str]:
        with self.db.session() as session:
            self._require_user(session, tenant_id, user_id)
            return sorted(session.scalars(select(LicenceAssignment.sku).where(LicenceAssignment.user_id == user_id)))

    # -- roles --------------------------------------------------------------------------

    def create_role_group(self, tenant_id: str, name: str, roles: list[str], description: str = "") -> RoleGroupInfo:
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise Invalid(f"unknown role {unknown[0]!r}; known: {', '.join(ROLES)}")
        with self.db.session() as session:
            self.require_tenant(session, tenant_id)
            group = RoleGroup(id=new_id(), tenant_id=tenant_id, name=name, description=description,
                              created_at=utcnow())
            session.add(group)
            try:
                session.flush()
            except IntegrityError as exc:
                raise Conflict(f"role group {name!r} already exists") from exc
            for role in dict.fromkeys(roles):
                session.add(RoleGroupRole(role_group_id=group.id, role=role))
            session.flush()
            return self._role_group_info(session, group)

    def add_role_group_member(self, tenant_id: str, group_name: str, user_id: str) -> None:
        with self.db.writing(), self.db.session() as session:
            # Locked: the same member added twice at once is added once (not a unique-key error).
            group = self._require_role_group(session, tenant_id, group_name, lock=True)
            self._require_user(session, tenant_id, user_id)
            if session.get(RoleGroupMember, (group.id, user_id)) is None:
                session.add(RoleGroupMember(role_group_id=group.id, user_id=user_id))
        self._forget_credentials()   # the roles an administrator's credentials carry changed

    def remove_role_group_member(self, tenant_id: str, group_name: str, user_id: str) -> None:
        with self.db.session() as session:
            group = self._require_role_group(session, tenant_id, group_name)
            row = session.get(RoleGroupMember, (group.id, user_id))
            if row is None:
                raise NotFound(f"user {user_id} is not in role group {group_name!r}")
            session.delete(row)
        self._forget_credentials()   # the roles an administrator's credentials carry changed

    def list_role_groups(self, tenant_id: str) -> list[RoleGroupInfo]:
        with self.db.session() as session:
            groups = session.scalars(select(RoleGroup).where(RoleGroup.tenant_id == tenant_id).order_by(RoleGroup.name))
            return [self._role_group_info(session, g) for g in groups]

    def roles_of(self, tenant_id: str, user_id: str) -> set[str]:
        """Every management role a user holds through its role groups."""
        with self.db.session() as session:
            return self._roles(session, tenant_id, user_id)

    @staticmethod
    def _roles(session: Session, tenant_id: str, user_id: str) -> set[str]:
        stmt = (
            select(RoleGroupRole.role)
            .join(RoleGroupMember, RoleGroupMember.role_group_id == RoleGroupRole.role_group_id)
            .join(RoleGroup, RoleGroup.id == RoleGroupRole.role_group_id)
            .where(RoleGroupMember.user_id == user_id, RoleGroup.tenant_id == tenant_id)
        )
        return set(session.scalars(stmt))

    def has_role(self, tenant_id: str, user_id: str, role: str) -> bool:
        return role in self.roles_of(tenant_id, user_id)

    # -- application accounts (seed 002 step 2) -------------------------------------------

    def create_mail_user(self, tenant_id: str, name: str, address: str, *, hidden: bool = True,
                         department: str | None = None) -> MailUserInfo:
        """``New-MailUser -Name NAME -ExternalEmailAddress ADDRESS``: a user whose userName and primary e-mail is
        ``address`` and whose displayName is ``name``, made through the SCIM store; hidden from address lists
        unless ``hidden`` is False (an application account is); ``department`` is the enterprise extension's (a
        hybrid mediation server's account is "HybridMediationServer"). The address's domain must be a verified domain of
        the tenant (Invalid, naming the commands that verify it); Conflict when a user already has the address
        as userName or e-mail."""
        name = name.strip()
        if not name:
            raise Invalid("a mail user needs a name")
        address = address.strip()
        local, at, domain = address.rpartition("@")
        domain = domain.lower().rstrip(".")
        if not at or not _LOCAL_PART.match(local) or not _DOMAIN.match(domain):
            raise Invalid(f"{address!r} is not an e-mail address")
        address = f"{local}@{domain}"
        with self.db.session() as session:
            self.require_tenant(session, tenant_id)
            verified = session.scalar(select(Domain.verified).where(Domain.tenant_id == tenant_id,
                                                                    Domain.name == domain))
        if not verified:
            state = "is not verified" if verified is not None else "is not a domain of the tenant"
            raise Invalid(f"domain {domain!r} {state}: a mail user's address must be on a verified domain "
                          f"(`tenantry directory domain-add {domain}`, then `tenantry directory domain-verify "
                          f"{domain}`)")
        if self.find_users_by_email(tenant_id, [address]):
            raise Conflict(f"a user with the address {address!r} already exists")
        payload: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": address,
            "displayName": name, "emails": [{"type": "work", "value": address, "primary": True}]}
        if department:
            payload["schemas"].append(ENTERPRISE_USER)
            payload[ENTERPRISE_USER] = {"department": department}
        try:
            doc = self.scim.create(tenant_id, "User", payload, hidden=hidden)
        except UniquenessException as exc:   # taken between the check and the write
            raise Conflict(f"a user with the address {address!r} already exists") from exc
        return MailUserInfo(doc["id"], name, address, hidden)

    def set_hidden(self, tenant_id: str, user_id: str, hidden: bool) -> MailUserInfo:
        """``Set-MailUser -HiddenFromAddressListsEnabled``: leave the user out of listings and searches (or put it
        back). Not a change of the SCIM resource: its ETag and lastModified stay, and an identity provider's PUT
        does not undo it."""
        with self.db.writing(), self.db.session() as session:
            user = self._require_user(session, tenant_id, user_id, lock=True)
            user.hidden_from_address_lists = hidden
            found = _directory_user(user)
            return MailUserInfo(user.id, user.display_name or user.user_name, found.email, hidden)

    def assign_role(self, tenant_id: str, user_id: str, role: str) -> RoleAssignmentInfo:
        """``New-ManagementRoleAssignment -Role ROLE -User USER``: the user holds ``role`` directly. Only the
        partner roles (``DIRECT_ROLES``) may be held so; an administrator role is refused (it comes from a role
        group). Idempotent: assigning a role the user holds returns the assignment there is."""
        if role not in ROLES:
            raise Invalid(f"unknown role {role!r}; roles assigned directly: {', '.join(DIRECT_ROLES)}")
        if role not in DIRECT_ROLES:
            raise Invalid(f"{role!r} is an administrator role: administrator roles come from role groups "
                          f"(`tenantry directory role-group-member`); only {', '.join(DIRECT_ROLES)} are "
                          "assigned directly")
        with self.db.writing(), self.db.session() as session:
            # Locked: the same role assigned twice at once is assigned once (not a unique-key error).
            user = self._require_user(session, tenant_id, user_id, lock=True)
            row = session.scalar(select(ManagementRoleAssignment).where(
                ManagementRoleAssignment.tenant_id == tenant_id, ManagementRoleAssignment.user_id == user_id,
                ManagementRoleAssignment.role == role))
            if row is None:
                row = ManagementRoleAssignment(id=new_id(), tenant_id=tenant_id, user_id=user_id, role=role,
                                               created_at=utcnow())
                session.add(row)
                session.flush()
            return _assignment_info(row, user.user_name)

    def remove_role_assignment(self, tenant_id: str, user_id: str, role: str) -> None:
        """``Remove-ManagementRoleAssignment``: NotFound when the user does not hold ``role`` directly."""
        with self.db.session() as session:
            self._require_user(session, tenant_id, user_id)
            result = session.execute(delete(ManagementRoleAssignment).where(
                ManagementRoleAssignment.tenant_id == tenant_id, ManagementRoleAssignment.user_id == user_id,
                ManagementRoleAssignment.role == role))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"user {user_id} holds no role {role!r} directly")

    def remove_role_assignment_by_id(self, tenant_id: str, assignment_id: str) -> None:
        with self.db.session() as session:
            result = session.execute(delete(ManagementRoleAssignment).where(
                ManagementRoleAssignment.tenant_id == tenant_id, ManagementRoleAssignment.id == assignment_id))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"no role assignment {assignment_id!r}")

    def role_assignments(self, tenant_id: str, user_id: str | None = None) -> list[RoleAssignmentInfo]:
        """The tenant's direct role assignments (of one user), by userName then role."""
        with self.db.session() as session:
            if user_id is not None:
                self._require_user(session, tenant_id, user_id)
            stmt = (select(ManagementRoleAssignment, User.user_name)
                    .join(User, User.id == ManagementRoleAssignment.user_id)
                    .where(ManagementRoleAssignment.tenant_id == tenant_id, User.tenant_id == tenant_id)
                    .order_by(User.user_name_key, ManagementRoleAssignment.role))
            if user_id is not None:
                stmt = stmt.where(ManagementRoleAssignment.user_id == user_id)
            return [_assignment_info(row, user_name) for row, user_name in session.execute(stmt)]

    def direct_roles(self, tenant_id: str, user_id: str) -> frozenset[str]:
        """The roles a user holds directly: what a partner application whose linked account this user is may do
        (trust). Empty for an unknown user, or one of another tenant."""
        with self.db.session() as session:
            return frozenset(session.scalars(select(ManagementRoleAssignment.role).where(
                ManagementRoleAssignment.tenant_id == tenant_id, ManagementRoleAssignment.user_id == user_id)))

    # -- look-ups for other parts -------------------------------------------------------

    def find_users_by_email(self, tenant_id: str, emails: list[str]) -> dict[str, list[DirectoryUser]]:
        """Users whose userName or any e-mail address is one of ``emails`` (case-insensitive)."""
        keys = list({e.strip().lower() for e in emails if e and e.strip()})
        found: dict[str, list[DirectoryUser]] = {}
        if not keys:
            return found
        with self.db.session() as session:
            for chunk in chunks(keys):
                by_value = select(UserValue.value_key, User).join(User, User.id == UserValue.user_id).where(
                    UserValue.tenant_id == tenant_id, UserValue.attr == "emails.value", UserValue.value_key.in_(chunk))
                by_name = select(User.user_name_key, User).where(
                    User.tenant_id == tenant_id, User.user_name_key.in_(chunk))
                for key, user in [*session.execute(by_value), *session.execute(by_name)]:
                    _add_unique(found.setdefault(key, []), _directory_user(user))
        return found

    def find_users_by_mobile(self, tenant_id: str, phone_keys: list[str]) -> dict[str, list[DirectoryUser]]:
        """Users with a phone number whose key (``protocols.phones.phone_key``: E.164, else its digits) is one of
        ``phone_keys``; mobile numbers first."""
        keys = list(set(phone_keys))
        found: dict[str, list[DirectoryUser]] = {}
        with self.db.session() as session:
            for chunk in chunks(keys):
                stmt = (select(UserValue.e164, UserValue.type_key, User).join(User, User.id == UserValue.user_id)
                        .where(UserValue.tenant_id == tenant_id, UserValue.attr == "phonenumbers.value",
                               UserValue.e164.in_(chunk)))   # implies e164 IS NOT NULL: the partial index
                rows = sorted(session.execute(stmt), key=lambda r: r[1] != "mobile")
                for e164, _type, user in rows:
                    _add_unique(found.setdefault(e164 or "", []), _directory_user(user))
        return found

    def user_ids(self, tenant_id: str) -> list[str]:
        with self.db.session() as session:
            return sorted(session.scalars(select(User.id).where(User.tenant_id == tenant_id)))

    def direct_user_members(self, tenant_id: str, group_id: str) -> list[str]:
        """Users who are members of the group themselves (not through a nested group)."""
        with self.db.session() as session:
            return sorted(session.scalars(select(GroupMember.member_id).where(
                GroupMember.tenant_id == tenant_id, GroupMember.group_id == group_id,
                GroupMember.member_type == "User")))

    def principals_exist(self, tenant_id: str, principal_type: str, ids: list[str]) -> bool:
        """True when every id is a user (``principal_type`` "User") or group ("Group") of this tenant."""
        table: Any = User if principal_type == "User" else Group
        wanted = set(ids)
        with self.db.session() as session:
            found = set(session.scalars(select(table.id).where(table.tenant_id == tenant_id,
                                                               table.id.in_(list(wanted)))))
        return found == wanted

    def users_by_id(self, tenant_id: str, user_ids: list[str]) -> list[DirectoryUser]:
        if not user_ids:
            return []
        found: list[DirectoryUser] = []
        user_ids = list(dict.fromkeys(user_ids))   # one row per user, as the single IN (…) gave
        with self.db.session() as session:
            # In chunks: a list past PostgreSQL's 65,535 bind parameters was a 500 (a client's input, issue #9).
            # By primary key alone, the tenant checked on the rows: with ``tenant_id = ?`` in the WHERE, SQLite
            # (no ANALYZE statistics) walked the tenant's index over all its users — 66 ms for 50 ids of 100,000.
            for batch in chunks(user_ids):
                rows = session.scalars(select(User).where(User.id.in_(batch)))
                found.extend(_directory_user(u) for u in rows if u.tenant_id == tenant_id)
        return found

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _require_user(session: Session, tenant_id: str, user_id: str, *, lock: bool = False) -> User:
        user = session.get(User, user_id, with_for_update=FOR_WRITE if lock else None)
        if user is None or user.tenant_id != tenant_id:
            raise NotFound(f"no user {user_id!r} in tenant {tenant_id!r}")
        return user

    @staticmethod
    def _require_role_group(session: Session, tenant_id: str, name: str, *, lock: bool = False) -> RoleGroup:
        stmt = select(RoleGroup).where(RoleGroup.tenant_id == tenant_id, RoleGroup.name == name)
        group = session.scalar(stmt.with_for_update(**FOR_WRITE) if lock else stmt)
        if group is None:
            raise NotFound(f"no role group {name!r}")
        return group

    @staticmethod
    def _role_group_info(session: Session, group: RoleGroup) -> RoleGroupInfo:
        roles = sorted(session.scalars(select(RoleGroupRole.role).where(RoleGroupRole.role_group_id == group.id)))
        members = sorted(session.scalars(
            select(RoleGroupMember.user_id).where(RoleGroupMember.role_group_id == group.id)))
        return RoleGroupInfo(group.id, group.name, group.description, roles, members)


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    user_name: str
    email: str          # the address mail is delivered to: the primary (else work, else first) e-mail, or userName
    active: bool
    display_name: str | None
    hidden: bool = False   # from address lists (an application account)


def _directory_user(user: User) -> DirectoryUser:
    resource = json.loads(user.resource)
    emails = [e for e in resource.get("emails") or [] if isinstance(e, dict) and e.get("value")]
    emails.sort(key=lambda e: (not e.get("primary"), e.get("type") != "work"))
    address = emails[0]["value"] if emails else user.user_name
    return DirectoryUser(user.id, user.user_name, address, user.active, user.display_name,
                         bool(user.hidden_from_address_lists))


def _assignment_info(row: ManagementRoleAssignment, user_name: str) -> RoleAssignmentInfo:
    # as_utc: SQLite hands the time back without its zone.
    return RoleAssignmentInfo(row.id, row.user_id, user_name, row.role, as_utc(row.created_at).isoformat())


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _add_unique(users: list[DirectoryUser], user: DirectoryUser) -> None:
    if all(u.id != user.id for u in users):
        users.append(user)


def _domain_info(domain: Domain) -> DomainInfo:
    return DomainInfo(domain.name, domain.verified, domain.is_default, domain.verification_code)
