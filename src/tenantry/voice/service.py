"""Voice's logic (seed 001, hybrid voice): PSTN sites, mediation servers with their online accounts, gateways and
their trunks, the tenant's hybrid and federation configuration, users' voice settings, the picture routing reads
(``routing_snapshot``) and the checks (``check``).

The verbs follow the seed's cmdlets (Set-CsTenantHybridConfiguration, Set-CsHybridMediationServer, Set-CsUser,
Grant-CsVoiceRoutingPolicy, Set-/Get-CsUserPstnSettings); users are named as those cmdlets name them
(``voice.identities``).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from typing import Any, Final

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenantry.core.clock import utcnow
from tenantry.core.db import FOR_WRITE, Database, add_named
from tenantry.core.errors import Conflict, Invalid, NotFound
from tenantry.directory.service import DirectoryService, DirectoryUser
from tenantry.voice import checks, identities
from tenantry.voice.models import Gateway, MediationServer, PstnSite, Trunk, VoiceTenantConfig, VoiceUserSettings
from tenantry.voice.results import (
    HYBRID_VOICE,
    MEDIATION_DEPARTMENT,
    CheckLine,
    FederationConfig,
    HybridConfig,
    RoutingPolicy,
    Site,
    VoiceCheck,
    VoiceConfiguration,
    VoiceUser,
)
from tenantry.voice.results import Gateway as GatewayInfo
from tenantry.voice.results import MediationServer as ServerInfo
from tenantry.voice.results import Trunk as TrunkInfo
from tenantry.voice.snapshot import GatewayRoute, RoutingSnapshot, SiteRoute, Transport, VoiceUserRoute

# What the DNS and TLS checks (voice.dnscheck, voice.tlscheck) look like to ``check``: the integrator wires them.
CheckHook = Callable[[VoiceConfiguration], list[CheckLine]]

DEFAULT_PORTS: Final = {Transport.TLS: 5061, Transport.TCP: 5060, Transport.UDP: 5060}
FALLBACK_REGION = "US"
MAX_NAME = 128


class Unset:
    """A parameter not given (distinct from None, which clears a value)."""


UNSET: Final = Unset()

_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_ACCOUNT_LOCAL = re.compile(r"[^a-z0-9-]+")


def as_fqdn(value: str, what: str = "FQDN") -> str:
    """A host name, lower case, without the trailing dot; Invalid otherwise."""
    name = value.strip().lower().rstrip(".")
    if not _HOST.match(name) or "." not in name:
        raise Invalid(f"{value!r} is not a {what} (a host name such as sip.contoso.com)")
    return name


def host(value: str) -> str:
    """An FQDN or an IP address (normalised)."""
    text = value.strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return as_fqdn(text, "FQDN or IP address")


def ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise Invalid(f"{value!r} is not an IP address") from exc


def as_line_uri(value: str, region: str) -> str:
    """``tel:+<E.164>`` from "tel:+1 425 555 0100", "+14255550100" or a national number read in ``region``;
    Invalid for anything that is not a valid number (or carries an extension: a line URI is one user's number)."""
    text = value.strip()
    bare = text[4:] if text.lower().startswith("tel:") else text
    if ";" in bare:
        raise Invalid(f"{value!r}: a line URI is tel:+<E.164> without parameters (no ;ext=)")
    try:
        number = phonenumbers.parse(bare, None if bare.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        raise Invalid(f"{value!r} is not a phone number: give tel:+<E.164>, e.g. tel:+14255550100") from exc
    if not phonenumbers.is_valid_number(number):
        raise Invalid(f"{value!r} is not a valid phone number: give tel:+<E.164>, e.g. tel:+14255550100")
    return "tel:" + str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def region_of(uri: str | None, default: str | None) -> str:
    """The region a user's numbers are read in: their line URI's country, else the installation's, else US."""
    if uri:
        try:
            found = phonenumbers.region_code_for_number(phonenumbers.parse(uri[4:], None))
        except phonenumbers.NumberParseException:
            found = None
        if found and found != "001":   # 001: a non-geographic number has no region to dial from
            return str(found)
    return (default or FALLBACK_REGION).upper()


class VoiceService:
    def __init__(self, db: Database, directory: DirectoryService, *, default_region: str | None = None) -> None:
        self.db = db
        self.directory = directory
        self.default_region = default_region

    # -- PSTN sites --------------------------------------------------------------------------------------------

    def create_site(self, tenant: str, *, name: str, edge_fqdn: str) -> Site:
        """A PSTN site and its edge's access proxy external FQDN."""
        name = _name(name, "a PSTN site")
        row = PstnSite(id=str(uuid.uuid4()), tenant_id=tenant, name=name, edge_fqdn=as_fqdn(edge_fqdn, "edge FQDN"),
                       created_at=utcnow())
        with self.db.session() as session:
            add_named(session, row, PstnSite.name, PstnSite.tenant_id, "PSTN site")
            return _site(row)

    def sites(self, tenant: str) -> list[Site]:
        with self.db.session() as session:
            return [_site(r) for r in session.scalars(
                select(PstnSite).where(PstnSite.tenant_id == tenant).order_by(PstnSite.name))]

    def site(self, tenant: str, ref: str) -> Site:
        """A site by its name or id."""
        with self.db.session() as session:
            return _site(_own_site(session, tenant, ref))

    # -- mediation servers and their online accounts -----------------------------------------------------------

    def create_mediation_server(self, tenant: str, *, fqdn: str, site: str, ip: str | None = None,
                                account_name: str | None = None) -> ServerInfo:
        """A mediation server of ``site`` and its online hybrid mediation server account, as the seed's steps 1-3
        make it: a directory user in the tenant's first SIP domain, hidden from address lists like an application
        account, Department "HybridMediationServer", whose Fqdn is the server's and AccessProxyExternalFqdn the
        site's edge. Every gateway of the site gets a trunk to the new server (at the gateway's priority)."""
        server_fqdn = as_fqdn(fqdn, "mediation server FQDN")
        server_ip = ip_address(ip) if ip else None
        with self.db.session() as session:
            site_row = _own_site(session, tenant, site)
            if session.scalar(select(MediationServer.id).where(MediationServer.tenant_id == tenant,
                                                               MediationServer.fqdn == server_fqdn)):
                raise Conflict(f"a mediation server {server_fqdn!r} exists")
            site_id, edge = site_row.id, site_row.edge_fqdn
        domain = self._first_sip_domain(tenant)
        display = _name(account_name, "a mediation server account") if account_name else \
            self._account_name(tenant, server_fqdn, domain)
        local = _ACCOUNT_LOCAL.sub("-", display.lower()).strip("-") or "mediationserver"
        account = self.directory.create_mail_user(tenant, display, f"{local}@{domain}", hidden=True,
                                                  department=MEDIATION_DEPARTMENT)
        row = MediationServer(id=str(uuid.uuid4()), tenant_id=tenant, site_id=site_id, fqdn=server_fqdn,
                              ip=server_ip, account_id=account.id, hybrid_fqdn=server_fqdn,
                              access_proxy_fqdn=edge, created_at=utcnow())
        try:
            return self._add_server(tenant, row)
        except Exception:
            # The account was made for this server only: a server that was not added leaves no account behind.
            self.directory.scim.delete(tenant, "User", account.id)
            raise

    def _add_server(self, tenant: str, row: MediationServer) -> ServerInfo:
        server_fqdn, site_id = row.fqdn, row.site_id
        with self.db.writing(), self.db.session() as session:
            session.add(row)
            try:
                session.flush()
            except IntegrityError as exc:   # the same FQDN added at once: one wins
                raise Conflict(f"a mediation server {server_fqdn!r} exists") from exc
            for gateway in session.scalars(select(Gateway).where(Gateway.site_id == site_id)):
                priority = session.scalar(select(Trunk.priority).where(Trunk.gateway_id == gateway.id).limit(1))
                session.add(Trunk(id=str(uuid.uuid4()), tenant_id=tenant, gateway_id=gateway.id, target=server_fqdn,
                                  priority=priority or 0, created_at=utcnow()))
            session.flush()
            return self._server(session, row)

    def _account_name(self, tenant: str, server_fqdn: str, domain: str) -> str:
        """MediationServer-<host>, with as many of the FQDN's labels as make it a new account: ms1.sea and ms1.ber
        are MediationServer-ms1 and MediationServer-ms1-ber."""
        labels = server_fqdn.split(".")
        for count in range(1, len(labels) + 1):
            name = "MediationServer-" + "-".join(labels[:count])
            address = f"{_ACCOUNT_LOCAL.sub('-', name.lower())}@{domain}"
            if not self.directory.find_users_by_email(tenant, [address]):
                return name
        raise Conflict(f"every default account name of {server_fqdn} is taken: give one (account_name)")

    def mediation_servers(self, tenant: str, *, site: str | None = None) -> list[ServerInfo]:
        with self.db.session() as session:
            stmt = select(MediationServer).where(MediationServer.tenant_id == tenant)
            if site is not None:
                stmt = stmt.where(MediationServer.site_id == _own_site(session, tenant, site).id)
            return [self._server(session, r) for r in session.scalars(stmt.order_by(MediationServer.fqdn))]

    def find_mediation_server(self, tenant: str, ref: str) -> str:
        """A mediation server's id from its id, its FQDN, or its account's display name or user name (the
        Identity of Set-CsHybridMediationServer)."""
        text = ref.strip()
        with self.db.session() as session:
            found = session.scalar(select(MediationServer.id).where(
                MediationServer.tenant_id == tenant,
                (MediationServer.id == text) | (MediationServer.fqdn == text.lower().rstrip("."))))
            if found is not None:
                return found
            accounts = {r.account_id: r.id for r in session.scalars(
                select(MediationServer).where(MediationServer.tenant_id == tenant,
                                              MediationServer.account_id.is_not(None)))}
        users = self.directory.users_by_id(tenant, [a for a in accounts if a])
        matched = [accounts[u.id] for u in users if text.lower() in
                   {(u.display_name or "").lower(), u.user_name.lower()}]
        if len(matched) != 1:
            raise NotFound(f"no mediation server {ref!r}: name its FQDN or its account's display name")
        return matched[0]

    def set_hybrid_mediation_server(self, tenant: str, ref: str, *, fqdn: str | None = None,
                                    access_proxy_fqdn: str | None = None) -> ServerInfo:
        """Set-CsHybridMediationServer -Identity -Fqdn -AccessProxyExternalFqdn."""
        server_id = self.find_mediation_server(tenant, ref)
        with self.db.writing(), self.db.session() as session:
            row = session.get(MediationServer, server_id, with_for_update=FOR_WRITE)
            if row is None or row.tenant_id != tenant:   # pragma: no cover - removed between find and lock
                raise NotFound(f"no mediation server {ref!r}")
            if fqdn is not None:
                row.hybrid_fqdn = as_fqdn(fqdn, "mediation server FQDN")
            if access_proxy_fqdn is not None:
                row.access_proxy_fqdn = as_fqdn(access_proxy_fqdn, "access proxy external FQDN")
            session.flush()
            return self._server(session, row)

    def _first_sip_domain(self, tenant: str) -> str:
        domains = self.sip_domains(tenant)
        if not domains:
            raise Invalid("the tenant has no verified domain: a mediation server's account is made in the first "
                          "SIP domain (`tenantry directory domain-add DOMAIN`, then `tenantry directory "
                          "domain-verify DOMAIN`)")
        return domains[0]

    def sip_domains(self, tenant: str) -> list[str]:
        """The tenant's SIP domains: its verified domains, the default (first SIP domain) first."""
        verified = [d for d in self.directory.list_domains(tenant) if d.verified]
        return [d.name for d in sorted(verified, key=lambda d: (not d.default, d.name))]

    def _server(self, session: Session, row: MediationServer) -> ServerInfo:
        site = session.get(PstnSite, row.site_id)
        account = self.directory.users_by_id(row.tenant_id, [row.account_id]) if row.account_id else []
        return ServerInfo(row.id, row.fqdn, row.ip, site.name if site else "", row.account_id,
                          account[0].display_name if account else None,
                          account[0].user_name if account else None, row.hybrid_fqdn, row.access_proxy_fqdn)

    # -- gateways and trunks -----------------------------------------------------------------------------------

    def create_gateway(self, tenant: str, *, name: str, site: str, transport: Transport | str = Transport.TLS,
                       port: int | None = None, trunk_to: str = "fqdn") -> GatewayInfo:
        """A PSTN gateway of ``site`` with the trunks the seed asks for: one per mediation server of the site, to
        its FQDN (``trunk_to`` "fqdn") or its IP ("ip"; a server without an IP gets its FQDN), all at priority 0;
        ``trunk_to`` "none" makes none (to add them by hand)."""
        gateway_name = host(name)
        try:
            kind = Transport(str(transport).lower())
        except ValueError as exc:
            raise Invalid(f"transport {transport!r}: one of {', '.join(t.value for t in Transport)}") from exc
        if port is not None and not 1 <= port <= 65535:
            raise Invalid(f"port {port} is not 1 to 65535")
        if trunk_to not in ("fqdn", "ip", "none"):
            raise Invalid(f"trunk_to {trunk_to!r}: fqdn, ip or none")
        with self.db.writing(), self.db.session() as session:
            site_row = _own_site(session, tenant, site)
            row = Gateway(id=str(uuid.uuid4()), tenant_id=tenant, site_id=site_row.id, name=gateway_name,
                          transport=kind.value, port=port or DEFAULT_PORTS[kind], created_at=utcnow())
            add_named(session, row, Gateway.name, Gateway.tenant_id, "gateway")
            if trunk_to != "none":
                for server in session.scalars(select(MediationServer).where(MediationServer.site_id == site_row.id)
                                              .order_by(MediationServer.fqdn)):
                    target = server.ip if trunk_to == "ip" and server.ip else server.fqdn
                    session.add(Trunk(id=str(uuid.uuid4()), tenant_id=tenant, gateway_id=row.id, target=target,
                                      priority=0, created_at=utcnow()))
            session.flush()
            return _gateway(session, row, site_row.name)

    def gateways(self, tenant: str, *, site: str | None = None) -> list[GatewayInfo]:
        with self.db.session() as session:
            stmt = select(Gateway).where(Gateway.tenant_id == tenant)
            if site is not None:
                stmt = stmt.where(Gateway.site_id == _own_site(session, tenant, site).id)
            names = _site_names(session, tenant)
            return [_gateway(session, g, names[g.site_id]) for g in session.scalars(stmt.order_by(Gateway.name))]

    def create_trunk(self, tenant: str, *, gateway: str, target: str, priority: int = 0) -> TrunkInfo:
        """One trunk, as given: nothing checks that ``target`` is a mediation server of the gateway's site here —
        an import may bring a wrong one, and ``check`` is where it is found."""
        target_host = host(target)
        if not 0 <= priority <= 65535:
            raise Invalid(f"priority {priority} is not 0 to 65535")
        with self.db.writing(), self.db.session() as session:
            row = _own_gateway(session, tenant, gateway)
            taken = Conflict(f"gateway {row.name} has a trunk to {target_host}")
            if session.scalar(select(Trunk.id).where(Trunk.gateway_id == row.id, Trunk.target == target_host)):
                raise taken
            trunk = Trunk(id=str(uuid.uuid4()), tenant_id=tenant, gateway_id=row.id, target=target_host,
                          priority=priority, created_at=utcnow())
            session.add(trunk)
            try:
                session.flush()
            except IntegrityError as exc:   # the same trunk added at once: one wins
                raise taken from exc
            return TrunkInfo(trunk.id, row.name, trunk.target, trunk.priority)

    def trunks(self, tenant: str, *, gateway: str | None = None) -> list[TrunkInfo]:
        with self.db.session() as session:
            stmt = select(Trunk, Gateway.name).join(Gateway, Gateway.id == Trunk.gateway_id).where(
                Trunk.tenant_id == tenant)
            if gateway is not None:
                stmt = stmt.where(Gateway.id == _own_gateway(session, tenant, gateway).id)
            return [TrunkInfo(t.id, name, t.target, t.priority)
                    for t, name in session.execute(stmt.order_by(Gateway.name, Trunk.target))]

    def remove_trunk(self, tenant: str, *, gateway: str, target: str) -> None:
        """Remove a gateway's trunk to ``target`` (a trunk id, or the target's FQDN or IP)."""
        with self.db.writing(), self.db.session() as session:
            row = _own_gateway(session, tenant, gateway)
            text = target.strip().lower().rstrip(".")
            trunk = session.scalar(select(Trunk).where(Trunk.gateway_id == row.id,
                                                       (Trunk.id == target.strip()) | (Trunk.target == text)))
            if trunk is None:
                raise NotFound(f"gateway {row.name} has no trunk {target!r}")
            session.delete(trunk)

    # -- the tenant's hybrid and federation configuration ------------------------------------------------------

    def hybrid_config(self, tenant: str) -> HybridConfig:
        """Get-CsTenantHybridConfiguration."""
        with self.db.session() as session:
            row = session.get(VoiceTenantConfig, tenant)
            return HybridConfig(row.peer_destination, row.use_on_prem_dial_plan) if row else HybridConfig(None, False)

    def set_hybrid_config(self, tenant: str, *, peer_destination: str | None | Unset = UNSET,
                          use_on_prem_dial_plan: bool | None = None) -> HybridConfig:
        """Set-CsTenantHybridConfiguration -PeerDestination <External Access Edge FQDN> -UseOnPremDialPlan; the
        PeerDestination is where calls of users with no PSTN site go (None clears it)."""
        peer = as_fqdn(peer_destination, "PeerDestination FQDN") if isinstance(peer_destination, str) else None
        with self.db.writing(), self.db.session() as session:
            row = self._config_row(session, tenant)
            if not isinstance(peer_destination, Unset):
                row.peer_destination = peer
            if use_on_prem_dial_plan is not None:
                row.use_on_prem_dial_plan = use_on_prem_dial_plan
            row.updated_at = utcnow()
            return HybridConfig(row.peer_destination, row.use_on_prem_dial_plan)

    def federation(self, tenant: str) -> FederationConfig:
        """Get-CsTenantFederationConfiguration (SharedSipAddressSpace)."""
        with self.db.session() as session:
            row = session.get(VoiceTenantConfig, tenant)
            return FederationConfig(bool(row and row.shared_sip_address_space))

    def set_federation(self, tenant: str, *, shared_sip_address_space: bool) -> FederationConfig:
        """Set-CsTenantFederationConfiguration -SharedSipAddressSpace."""
        with self.db.writing(), self.db.session() as session:
            row = self._config_row(session, tenant)
            row.shared_sip_address_space = shared_sip_address_space
            row.updated_at = utcnow()
            return FederationConfig(row.shared_sip_address_space)

    def _config_row(self, session: Session, tenant: str) -> VoiceTenantConfig:
        self.directory.require_tenant(session, tenant, lock=True)   # two first writes at once: one row
        row = session.get(VoiceTenantConfig, tenant)
        if row is None:
            row = VoiceTenantConfig(tenant_id=tenant, peer_destination=None, use_on_prem_dial_plan=False,
                                    shared_sip_address_space=False, updated_at=utcnow())
            session.add(row)
        return row

    # -- users' voice settings ---------------------------------------------------------------------------------

    def users(self, tenant: str, identity: str | None = None) -> list[VoiceUser]:
        """Get-CsOnlineUser [| Get-CsUserPstnSettings]: the users ``identity`` names (a wildcard: all it matches),
        or every user of the tenant not hidden from address lists."""
        people = self._everyone(tenant) if identity is None else identities.resolve(self.directory, tenant, identity)
        return self._voice_users(tenant, people)

    def _everyone(self, tenant: str) -> list[DirectoryUser]:
        people = [u for u in self.directory.users_by_id(tenant, self.directory.user_ids(tenant)) if not u.hidden]
        return sorted(people, key=lambda u: u.user_name.lower())

    def user(self, tenant: str, identity: str) -> VoiceUser:
        """One user (Get-CsOnlineUser -Identity); a wildcard naming several is refused with their names."""
        return self._voice_users(tenant, [identities.resolve_one(self.directory, tenant, identity)])[0]

    def set_user(self, tenant: str, identity: str, *, enterprise_voice: bool | None = None,
                 hosted_voicemail: bool | None = None, line_uri: str | None | Unset = UNSET,
                 voice_policy: str | None | Unset = UNSET) -> VoiceUser:
        """Set-CsUser -EnterpriseVoiceEnabled -HostedVoiceMail -OnPremLineURI (tel:+E.164, one user's in the
        tenant: Conflict when another holds it) -VoicePolicy; what is not given stays."""
        person = identities.resolve_one(self.directory, tenant, identity)
        uri: str | None = None
        if isinstance(line_uri, str):
            with self.db.session() as session:
                current = session.get(VoiceUserSettings, person.id)
            uri = as_line_uri(line_uri, region_of(current.line_uri if current else None, self.default_region))
        policy = _policy(voice_policy) if isinstance(voice_policy, str) else None
        with self.db.writing(), self.db.session() as session:
            row = self._settings_row(session, tenant, person.id)
            if enterprise_voice is not None:
                row.enterprise_voice = enterprise_voice
            if hosted_voicemail is not None:
                row.hosted_voicemail = hosted_voicemail
            if not isinstance(line_uri, Unset):
                if uri is not None:
                    holder = session.scalar(select(VoiceUserSettings.user_id).where(
                        VoiceUserSettings.tenant_id == tenant, VoiceUserSettings.line_uri == uri,
                        VoiceUserSettings.user_id != person.id))
                    if holder is not None:
                        raise Conflict(f"{uri} is the line URI of another user ({self._name_of(tenant, holder)})")
                row.line_uri = uri
            if not isinstance(voice_policy, Unset):
                row.voice_policy = policy
            row.updated_at = utcnow()
            try:
                session.flush()
            except IntegrityError as exc:   # the same number given to two users at once
                raise Conflict(f"{uri} is the line URI of another user") from exc
        return self._voice_users(tenant, [person])[0]

    def grant_routing_policy(self, tenant: str, identity: str, policy: RoutingPolicy | str) -> VoiceUser:
        """Grant-CsVoiceRoutingPolicy -PolicyName InternationalCallsDisallowed|InternationalCallsAllowed."""
        try:
            granted = RoutingPolicy(policy)
        except ValueError as exc:
            raise Invalid(f"voice routing policy {policy!r}: one of {', '.join(p.value for p in RoutingPolicy)}") \
                from exc
        person = identities.resolve_one(self.directory, tenant, identity)
        with self.db.writing(), self.db.session() as session:
            row = self._settings_row(session, tenant, person.id)
            row.routing_policy = granted.value
            row.updated_at = utcnow()
        return self._voice_users(tenant, [person])[0]

    def set_pstn_site(self, tenant: str, identity: str, site: str | None) -> VoiceUser:
        """Set-CsUserPstnSettings -Identity -HybridPstnSite (None: no site, the PeerDestination serves the user)."""
        person = identities.resolve_one(self.directory, tenant, identity)
        with self.db.writing(), self.db.session() as session:
            site_id = _own_site(session, tenant, site).id if site is not None else None
            row = self._settings_row(session, tenant, person.id)
            row.site_id = site_id
            row.updated_at = utcnow()
        return self._voice_users(tenant, [person])[0]

    def _settings_row(self, session: Session, tenant: str, user_id: str) -> VoiceUserSettings:
        row = session.get(VoiceUserSettings, user_id, with_for_update=FOR_WRITE)
        if row is None:
            row = VoiceUserSettings(user_id=user_id, tenant_id=tenant, enterprise_voice=False, hosted_voicemail=False,
                                    line_uri=None, voice_policy=None, routing_policy=RoutingPolicy.ALLOWED.value,
                                    site_id=None, updated_at=utcnow())
            session.add(row)
        elif row.tenant_id != tenant:   # pragma: no cover - user ids are the directory's, one tenant each
            raise NotFound(f"no user {user_id!r}")
        return row

    def _name_of(self, tenant: str, user_id: str) -> str:
        found = self.directory.users_by_id(tenant, [user_id])
        return found[0].user_name if found else user_id

    def _voice_users(self, tenant: str, people: list[DirectoryUser]) -> list[VoiceUser]:
        with self.db.session() as session:
            settings: dict[str, VoiceUserSettings] = {}
            ids = [p.id for p in people]
            for start in range(0, len(ids), 500):
                settings.update((r.user_id, r) for r in session.scalars(select(VoiceUserSettings).where(
                    VoiceUserSettings.tenant_id == tenant, VoiceUserSettings.user_id.in_(ids[start:start + 500]))))
            names = _site_names(session, tenant)
        return [_voice_user(p, settings.get(p.id), names) for p in people]

    # -- what routing reads ------------------------------------------------------------------------------------

    def configuration(self, tenant: str) -> VoiceConfiguration:
        """The whole configuration, as the checks read it."""
        return VoiceConfiguration(tenant, self.sip_domains(tenant), self.sites(tenant),
                                  self.mediation_servers(tenant), self.gateways(tenant), self.hybrid_config(tenant),
                                  self.federation(tenant))

    def routing_snapshot(self, tenant: str) -> RoutingSnapshot:
        """What ``voice.routing.route`` and the SIP redirect service read: every user (not hidden) keyed by SIP
        address and, when they have one, by the line URI's E.164 number. Only enterprise-voice users carry a
        route; the others are there with ``enterprise_voice`` False, so that routing refuses them as voice-disabled
        rather than as unknown."""
        config = self.configuration(tenant)
        routes: dict[str, VoiceUserRoute] = {}
        people = self._everyone(tenant)
        active = {p.id for p in people if p.active}
        for user in self._voice_users(tenant, people):
            route = VoiceUserRoute(
                user_id=user.user_id, sip_address=user.sip_address, line_uri=user.on_prem_line_uri,
                # a deactivated user's calls are refused as a voice-disabled user's
                enterprise_voice=user.enterprise_voice_enabled and user.user_id in active,
                international_allowed=user.voice_routing_policy is RoutingPolicy.ALLOWED,
                site=user.hybrid_pstn_site, region=region_of(user.on_prem_line_uri, self.default_region))
            routes[user.sip_address] = route
            if user.on_prem_line_uri:
                routes[user.on_prem_line_uri[4:]] = route
        sites = {s.name: SiteRoute(
            s.name,
            tuple(GatewayRoute(g.name, g.name, g.port, g.transport, g.site) for g in config.gateways
                  if g.site == s.name),
            tuple(sorted(m.fqdn for m in config.mediation_servers if m.site == s.name))) for s in config.sites}
        return RoutingSnapshot(tenant, routes, sites, config.hybrid.peer_destination, tuple(config.sip_domains))

    # -- the checks --------------------------------------------------------------------------------------------

    def check(self, tenant: str, *, dns: CheckHook | None = None, tls: CheckHook | None = None) -> VoiceCheck:
        """Every check of the configuration (``voice.checks``), then the DNS and TLS checks when given (the
        integrator wires ``voice.dnscheck`` and ``voice.tlscheck``; without them they are skipped)."""
        config = self.configuration(tenant)
        users = [u for u in self.users(tenant) if u.enterprise_voice_enabled]
        licences = {u.user_id: self.directory.licences_of(tenant, u.user_id) for u in users}
        lines = checks.check_configuration(config, users, licences)
        for hook in (dns, tls):
            if hook is not None:
                lines.extend(hook(config))
        return VoiceCheck(all(line.ok for line in lines), lines)


# -- helpers ---------------------------------------------------------------------------------------------------


def _name(value: str, what: str) -> str:
    name = value.strip()
    if not name or len(name) > MAX_NAME:
        raise Invalid(f"{what} needs a name (at most {MAX_NAME} characters)")
    return name


def _policy(value: str) -> str:
    text = value.strip()
    if text.lower() == HYBRID_VOICE.lower():
        return HYBRID_VOICE
    if not text or len(text) > 64:
        raise Invalid("a VoicePolicy is 1 to 64 characters (hybrid users: HybridVoice)")
    return text


def _own_site(session: Session, tenant: str, ref: str) -> PstnSite:
    found = session.scalar(select(PstnSite).where(PstnSite.tenant_id == tenant,
                                                  (PstnSite.id == ref) | (PstnSite.name == ref.strip())))
    if found is None:
        raise NotFound(f"no PSTN site {ref!r}")
    return found


def _own_gateway(session: Session, tenant: str, ref: str) -> Gateway:
    text = ref.strip()
    found = session.scalar(select(Gateway).where(Gateway.tenant_id == tenant,
                                                 (Gateway.id == text) | (Gateway.name == text.lower().rstrip("."))))
    if found is None:
        raise NotFound(f"no gateway {ref!r}")
    return found


def _site_names(session: Session, tenant: str) -> dict[str, str]:
    return {site_id: name for site_id, name in session.execute(
        select(PstnSite.id, PstnSite.name).where(PstnSite.tenant_id == tenant))}


def _site(row: PstnSite) -> Site:
    return Site(row.id, row.name, row.edge_fqdn)


def _gateway(session: Session, row: Gateway, site: str) -> GatewayInfo:
    trunks = session.scalars(select(Trunk).where(Trunk.gateway_id == row.id).order_by(Trunk.target))
    return GatewayInfo(row.id, row.name, site, Transport(row.transport), row.port,
                       [TrunkInfo(t.id, row.name, t.target, t.priority) for t in trunks])


def _voice_user(person: DirectoryUser, row: VoiceUserSettings | None, sites: dict[str, str]) -> VoiceUser:
    settings: dict[str, Any] = {
        "enterprise_voice_enabled": bool(row and row.enterprise_voice),
        "hosted_voicemail": bool(row and row.hosted_voicemail),
        "voice_policy": row.voice_policy if row else None,
        "on_prem_line_uri": row.line_uri if row else None,
        "voice_routing_policy": RoutingPolicy(row.routing_policy) if row else RoutingPolicy.ALLOWED,
        "hybrid_pstn_site": sites.get(row.site_id) if row and row.site_id else None,
    }
    return VoiceUser(person.id, person.user_name, person.display_name, identities.sip_address(person), **settings)
