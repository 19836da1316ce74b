"""What the console's pages show, read through the parts' own services: who is looking (``Viewer``), each part's
state at a glance (``home``), and the directory's listings with the console's search.

Every read here is of one tenant, the viewer's; the pages decide from the viewer's roles what may be read at all
(``console.pages``), and the summaries of ``home`` leave out the parts the viewer's roles may not read, as the
admin API would refuse them (the same roles its routes name).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, union

from tenantry.archive.models import Case
from tenantry.auth.sessions import SessionUser
from tenantry.connectors.models import RunStatus
from tenantry.core.access import ADMIN_ROLES, APPLICATIONS, COMPLIANCE, EDISCOVERY, IMPORT, ORGANIZATION, VOICE
from tenantry.core.errors import Invalid, NotFound, TenantryError
from tenantry.core.principals import Principal
from tenantry.directory.models import User, UserValue
from tenantry.directory.scim_filter import fold
from tenantry.directory.scim_repositories import Page
from tenantry.directory.service import DirectoryUser
from tenantry.provisioning.results import AppHealth
from tenantry.services import Services
from tenantry.trust.results import AuthConfigInfo, PartnerApp, TrustCheck
from tenantry.voice.results import Gateway, MediationServer, RouteAnswer, Site, VoiceCheck, VoiceUser
from tenantry.voice.routing import route
from tenantry.voice.sip_server import status_of

# Who may read what: the roles the admin API's routes name for the same reads (docs/security.md, "Roles").
READ_DIRECTORY = ADMIN_ROLES
READ_SCIM_LOG = (ORGANIZATION, APPLICATIONS)
CHANGE_DIRECTORY = (ORGANIZATION,)
READ_CONNECTORS = (IMPORT, ORGANIZATION, COMPLIANCE)
READ_HOLDS = (COMPLIANCE, EDISCOVERY)
READ_PROVISIONING = (APPLICATIONS, ORGANIZATION)
READ_TRUST = (ORGANIZATION,)
READ_VOICE = (VOICE, ORGANIZATION)

PAGE_SIZE = 50
VOICE_USERS_SHOWN = 200   # the voice page's users table; narrow it with the identity box beyond that
MAX_QUERY = 100


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in administrator a console page answers: their session (CSRF token) and principal (roles)."""

    session: SessionUser
    principal: Principal
    user_name: str

    @property
    def tenant(self) -> str:
        return self.session.tenant

    def may(self, roles: tuple[str, ...]) -> bool:
        return self.principal.holds_any(roles)


@dataclass(frozen=True, slots=True)
class UserPage:
    """One page of the users list: ``total`` users match, these are from ``start`` (1-based) on."""

    total: int
    start: int
    users: list[DirectoryUser]


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str
    ok: bool | None = None     # None: neither good nor bad; False is shown as a problem


@dataclass(frozen=True, slots=True)
class PartSummary:
    name: str
    href: str | None
    facts: list[Fact] = field(default_factory=list)
    problem: str | None = None      # the part could not be read (its message)


@dataclass(frozen=True, slots=True)
class TrustView:
    """The trust page: the partner applications, our authorisation configuration, and the seed's check."""

    partners: list[PartnerApp]
    config: AuthConfigInfo
    check: TrustCheck


@dataclass(frozen=True, slots=True)
class VoiceView:
    """The voice page: the configuration, the users' voice settings (at most ``VOICE_USERS_SHOWN`` of
    ``users_total``) and the configuration checks (no DNS or TLS: those reach the network, the CLI runs them)."""

    sites: list[Site]
    gateways: list[Gateway]
    mediation_servers: list[MediationServer]
    users: list[VoiceUser]
    users_total: int
    check: VoiceCheck


def checked(query: str) -> str:
    """The search box's text, stripped; ``Invalid`` when too long or with control characters."""
    text = query.strip()
    if len(text) > MAX_QUERY or any(ord(ch) < 0x20 for ch in text):
        raise Invalid(f"a search is at most {MAX_QUERY} characters, without control characters")
    return text


def group_filter(query: str) -> str | None:
    """The SCIM filter of the groups page's search box: displayName starts with the text. The text is a JSON
    string in the filter, so quotes and backslashes in it are the user's text, never filter syntax."""
    text = checked(query)
    return f"displayName sw {json.dumps(text)}" if text else None


class ConsoleService:
    def __init__(self, services: Services) -> None:
        self.services = services

    def viewer(self, session: SessionUser) -> Viewer:
        principal = self.services.directory.administrator(session.tenant, session.user_id,
                                                          f"session {session.session_id[:16]}")
        return Viewer(session, principal, principal.name)

    # -- home ---------------------------------------------------------------------------------------------

    def home(self, viewer: Viewer) -> list[PartSummary]:
        """Each part the viewer may read, at a glance; a part that fails to read says why instead of failing
        the page."""
        parts = ((READ_DIRECTORY, "Directory", "/console/users", self._directory),
                 (READ_CONNECTORS, "Data connectors", "/console/connectors", self._connectors),
                 (READ_HOLDS, "Holds and cases", "/console/cases", self._holds),
                 (READ_PROVISIONING, "Provisioning", "/console/provisioning", self._provisioning),
                 (READ_TRUST, "Trust", "/console/trust", self._trust))
        out = []
        for roles, name, href, read in parts:
            if not viewer.may(roles):
                continue
            try:
                out.append(PartSummary(name, href, read(viewer.tenant)))
            except TenantryError as exc:
                out.append(PartSummary(name, href, problem=exc.message))
        return out

    def _directory(self, tenant: str) -> list[Fact]:
        counts = self.services.scim.counts(tenant)
        return [Fact("users", str(counts["users"])), Fact("groups", str(counts["groups"])),
                Fact("role groups", str(len(self.services.directory.list_role_groups(tenant))))]

    def _connectors(self, tenant: str) -> list[Fact]:
        listed = self.services.connectors.list_connectors(tenant)
        facts = [Fact("connectors", str(len(listed)))]
        for each in listed[:8]:
            last = each.last_run
            state = f"{each.status}, last run {last.status}" if last else f"{each.status}, never run"
            facts.append(Fact(each.name, state, None if last is None else last.status != RunStatus.FAILED))
        return facts

    def _holds(self, tenant: str) -> list[Fact]:
        holds = self.services.compliance.holds(tenant, active_only=True)
        with self.services.db.session() as session:
            cases = session.scalar(select(func.count()).select_from(Case).where(Case.tenant_id == tenant)) or 0
        return [Fact("active holds", str(len(holds))), Fact("cases", str(cases))]

    def _provisioning(self, tenant: str) -> list[Fact]:
        apps = self.services.provisioning.list_apps(tenant)
        facts = [Fact("apps", str(len(apps)))]
        for app in apps[:8]:
            reason = f" ({app.health_reason})" if app.health_reason else ""
            facts.append(Fact(app.name, f"{app.health}{reason}", app.health == AppHealth.HEALTHY))
        return facts

    def _trust(self, tenant: str) -> list[Fact]:
        partners = self.services.trust.partners(tenant)
        facts = [Fact("partner applications", str(len(partners)))]
        if partners:
            check = self.services.trust.check(tenant)
            facts.append(Fact("certificate and key dates", "ok" if check.ok else "not ok", check.ok))
        return facts

    # -- directory ----------------------------------------------------------------------------------------

    def users(self, tenant: str, query: str, start: int, *, include_hidden: bool = False) -> UserPage:
        """One page of users by userName, ``PAGE_SIZE`` long, from ``start`` (1-based, as SCIM's startIndex),
        those whose userName, displayName or an e-mail address starts with ``query`` (case-insensitive, compared
        as SCIM's ``sw`` compares them: on the directory's folded keys).

        Not ``ScimStore.search`` with the OR of three ``sw``: that filter is evaluated row by row (an EXISTS per
        attribute on every user), 1.7 s over 100,000 users. Here each attribute is one index range
        (``users``' unique (tenant, user_name_key), ``user_values``' (tenant, attr, value_key)), their UNION the
        matching ids; the page is then read as ``DirectoryUser``s (what the list shows), not whole resources."""
        text = checked(query)
        # The tenant's users; with a search, the tenant is compared as an expression (``tenant_id || ''``), not
        # the indexed column, or SQLite walks the tenant's index over all its users instead of looking the
        # matching ids up by primary key (107 ms → a few over 100,000 users).
        where: list[ColumnElement[bool]] = [(User.tenant_id.concat("") if text else User.tenant_id) == tenant]
        if not include_hidden:
            where.append(User.hidden_from_address_lists.is_(False))
        if text:
            matching = union(
                select(User.id).where(User.tenant_id == tenant,
                                      self._prefix(User.user_name_key, fold("username", text))),
                *(select(UserValue.user_id).where(UserValue.tenant_id == tenant, UserValue.attr == attr,
                                                  self._prefix(UserValue.value_key, fold(attr, text)))
                  for attr in ("displayname", "emails.value")))
            where.append(User.id.in_(select(matching.subquery().c[0])))
        with self.services.db.session() as session:
            total = session.scalar(select(func.count()).select_from(User).where(*where)) or 0
            ids = list(session.scalars(select(User.id).where(*where).order_by(User.user_name_key, User.id)
                                       .offset(max(0, start - 1)).limit(PAGE_SIZE)))
        found = {u.id: u for u in self.services.directory.users_by_id(tenant, ids)}
        return UserPage(total, start, [found[i] for i in ids if i in found])

    def _prefix(self, column: Any, text: str) -> ColumnElement[bool]:
        """``column`` starts with ``text``. On SQLite also as a range, which its B-tree index answers (its LIKE
        uses no index on a column without NOCASE); the keys are folded already, so the two agree. PostgreSQL
        gets the LIKE only: under a linguistic collation a range is not the same set."""
        condition: ColumnElement[bool] = column.startswith(text, autoescape=True)
        if self.services.db.is_sqlite:
            condition = and_(column >= text, column < text + "\U0010ffff", condition)
        return condition

    def groups(self, tenant: str, query: str, start: int) -> Page:
        return self.services.scim.search(tenant, "Group", filter_text=group_filter(query),
                                         sort_by="displayName", start_index=start, count=PAGE_SIZE,
                                         with_members=False)

    def user(self, tenant: str, user_id: str) -> dict[str, Any]:
        """A user as the admin API's ``GET …/users/{id}`` shows it: the SCIM resource with licences, roles (all,
        and held directly) and whether it is hidden from address lists. ``NotFound`` for another tenant's id."""
        directory = self.services.directory
        found = directory.users_by_id(tenant, [user_id])
        if not found:
            raise NotFound(f"no user {user_id!r} in this tenant")
        doc = self.services.scim.get(tenant, "User", user_id, with_members=False)
        doc["licences"] = directory.licences_of(tenant, user_id)
        doc["roles"] = sorted(directory.roles_of(tenant, user_id))
        doc["direct_roles"] = sorted(directory.direct_roles(tenant, user_id))
        doc["hidden_from_address_lists"] = found[0].hidden
        return doc

    # -- trust and voice ----------------------------------------------------------------------------------

    def trust(self, tenant: str) -> TrustView:
        """What ``trust partner list``, ``auth-config show`` and ``trust check`` show. Reading the configuration
        makes it (with a current certificate) on first use, as ``Get-AuthConfig`` through the API does."""
        trust = self.services.trust
        return TrustView(trust.partners(tenant), trust.auth_config(tenant), trust.check(tenant))

    def voice(self, tenant: str, identity: str = "") -> VoiceView:
        """The voice configuration and checks; the users ``identity`` names (``voice.identities``: a SIP address,
        UPN, display name or ``*wildcard``), or every user, the first ``VOICE_USERS_SHOWN`` by userName."""
        voice = self.services.voice
        text = checked(identity)
        users = voice.users(tenant, text or None)
        return VoiceView(voice.sites(tenant), voice.gateways(tenant), voice.mediation_servers(tenant),
                         users[:VOICE_USERS_SHOWN], len(users), voice.check(tenant))

    def route_call(self, tenant: str, caller: str, number: str, *, conference: bool = False) -> RouteAnswer:
        """Where this call goes, as ``GET …/voice/route`` answers it: the SIP status the redirect service would
        send (every gateway taken as healthy), its reason and Contacts."""
        decision = route(self.services.voice.routing_snapshot(tenant), checked(caller), checked(number),
                         conference=conference)
        status, phrase = status_of(decision.outcome)
        return RouteAnswer(status, phrase, decision.outcome, list(decision.contacts), decision.reason,
                           decision.number)
