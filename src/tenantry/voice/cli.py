"""Voice's commands, after seed 001's cmdlets: ``tenantry voice site|mediation-server|gateway|trunk …`` (the
Cloud Connector deployment), ``hybrid-config`` (Set-CsTenantHybridConfiguration), ``federation``
(Set-CsTenantFederationConfiguration), ``mediation-server set`` (Set-CsHybridMediationServer), ``user set``
(Set-CsUser), ``user grant-policy`` (Grant-CsVoiceRoutingPolicy), ``user pstn-site`` (Set-/Get-CsUserPstnSettings),
``user show`` (Get-CsOnlineUser) and ``check``."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated

import typer

from tenantry.cli_kit import Cli, JsonOpt, TenantOpt, console, fail, print_json, print_rows, sub_app
from tenantry.core.egress import EgressPolicy
from tenantry.core.results import plain
from tenantry.voice.certificates import MAX_PEM_BYTES, run_checks
from tenantry.voice.results import RoutingPolicy, VoiceUser
from tenantry.voice.service import UNSET, Unset, VoiceService
from tenantry.voice.snapshot import Transport
from tenantry.voice.tlscheck import KeyType

voice_app = sub_app("Hybrid PSTN voice (seed 001): sites, mediation servers, gateways, users' voice settings, checks.")
site_app = sub_app("PSTN sites and their edge (access proxy external FQDN).")
server_app = sub_app("Mediation servers and their online accounts (Set-CsHybridMediationServer).")
gateway_app = sub_app("PSTN gateways (or SBCs) of a site; each gets one trunk per mediation server of its site.")
trunk_app = sub_app("Gateways' trunks to mediation servers (one per server FQDN or IP, equal priority).")
hybrid_app = sub_app("The tenant's hybrid configuration (Set-CsTenantHybridConfiguration).")
federation_app = sub_app("The tenant's federation configuration (Set-CsTenantFederationConfiguration).")
user_app = sub_app("Users' voice settings (Set-CsUser, Grant-CsVoiceRoutingPolicy, Get-CsOnlineUser).")
pstn_app = sub_app("Users' PSTN sites (Set-/Get-CsUserPstnSettings).")
ca_app = sub_app("The tenant root CA gateways trust, and the gateway certificates it issues (seed steps 3–4).")

IdentityArg = Annotated[str, typer.Argument(metavar="IDENTITY", help=(
    "A SIP address (sip:alice@contoso.com), UPN, display name (\"Bob Kelly\") or wildcard (\"*Smith\")."))]
SiteOpt = Annotated[str, typer.Option("--site", help="The PSTN site's name.")]


def register(root: typer.Typer) -> None:
    voice_app.add_typer(site_app, name="site")
    voice_app.add_typer(server_app, name="mediation-server")
    voice_app.add_typer(gateway_app, name="gateway")
    voice_app.add_typer(trunk_app, name="trunk")
    voice_app.add_typer(hybrid_app, name="hybrid-config")
    voice_app.add_typer(federation_app, name="federation")
    user_app.add_typer(pstn_app, name="pstn-site")
    voice_app.add_typer(user_app, name="user")
    voice_app.add_typer(ca_app, name="ca")
    root.add_typer(voice_app, name="voice")


def _voice(ctx: typer.Context, tenant: str | None) -> tuple[VoiceService, str]:
    cli = Cli.of(ctx)
    return cli.services.voice, cli.tenant(tenant)


# -- sites, mediation servers, gateways, trunks ---------------------------------------------------------------


@site_app.command("new")
def site_new(ctx: typer.Context, name: str,
             edge_fqdn: Annotated[str, typer.Option("--edge-fqdn", help="The site's access edge external FQDN.")],
             tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """A PSTN site (a Cloud Connector deployment) and its edge."""
    voice, t = _voice(ctx, tenant)
    made = voice.create_site(t, name=name, edge_fqdn=edge_fqdn)
    if as_json:
        print_json(made)
    else:
        console.print(f"PSTN site {made.name} (edge {made.edge_fqdn}) created")


@site_app.command("list")
def site_list(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    voice, t = _voice(ctx, tenant)
    print_rows(voice.sites(t), ["name", "edge_fqdn", "id"], as_json)


@server_app.command("new")
def server_new(ctx: typer.Context, fqdn: Annotated[str, typer.Argument(help="The mediation server's FQDN.")],
               site: SiteOpt, ip: Annotated[str | None, typer.Option(help="Its IP address.")] = None,
               account_name: Annotated[str | None, typer.Option(
                   "--account-name", help="The online account's display name (default MediationServer-<host>).")]
               = None, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """A mediation server, and its online hybrid mediation server account (the seed's steps 1-3: a hidden user in
    the first SIP domain, Department HybridMediationServer, Fqdn and AccessProxyExternalFqdn set). The site's
    gateways get a trunk to it."""
    voice, t = _voice(ctx, tenant)
    made = voice.create_mediation_server(t, fqdn=fqdn, site=site, ip=ip, account_name=account_name)
    if as_json:
        print_json(made)
    else:
        console.print(f"mediation server {made.fqdn} of site {made.site} created; account {made.account_user_name} "
                      f"({made.account_name}), AccessProxyExternalFqdn {made.access_proxy_external_fqdn}")


@server_app.command("list")
def server_list(ctx: typer.Context, site: Annotated[str | None, typer.Option(help="Only this site's.")] = None,
                tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Get-CsHybridMediationServer."""
    voice, t = _voice(ctx, tenant)
    print_rows(voice.mediation_servers(t, site=site), ["fqdn", "ip", "site", "account_name", "hybrid_fqdn",
                                                       "access_proxy_external_fqdn"], as_json)


@server_app.command("set")
def server_set(ctx: typer.Context,
               identity: Annotated[str, typer.Argument(metavar="IDENTITY", help=(
                   "The account's display name (or the server's FQDN)."))],
               fqdn: Annotated[str | None, typer.Option("--fqdn", help="The mediation server's FQDN.")] = None,
               access_proxy_fqdn: Annotated[str | None, typer.Option(
                   "--access-proxy-fqdn", help="The edge's access proxy external FQDN of the server's site.")] = None,
               tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Set-CsHybridMediationServer -Identity -Fqdn -AccessProxyExternalFqdn."""
    voice, t = _voice(ctx, tenant)
    made = voice.set_hybrid_mediation_server(t, identity, fqdn=fqdn, access_proxy_fqdn=access_proxy_fqdn)
    if as_json:
        print_json(made)
    else:
        console.print(f"{made.account_name}: Fqdn {made.hybrid_fqdn}, AccessProxyExternalFqdn "
                      f"{made.access_proxy_external_fqdn}")


@gateway_app.command("new")
def gateway_new(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The gateway's FQDN or IP.")],
                site: SiteOpt, transport: Annotated[Transport, typer.Option(help="tls, tcp or udp.")] = Transport.TLS,
                port: Annotated[int | None, typer.Option(help="Default 5061 for TLS, 5060 otherwise.")] = None,
                trunk_to: Annotated[str, typer.Option("--trunk-to", help=(
                    "One trunk per mediation server of the site, to its fqdn or its ip; none: no trunk."))] = "fqdn",
                tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """A PSTN gateway, with one trunk per mediation server of its site, all at equal priority (the seed's "Set up
    PSTN gateways": never to the pool FQDN)."""
    voice, t = _voice(ctx, tenant)
    made = voice.create_gateway(t, name=name, site=site, transport=transport, port=port, trunk_to=trunk_to)
    if as_json:
        print_json(made)
    else:
        targets = ", ".join(tr.target for tr in made.trunks) or "none"
        console.print(f"gateway {made.name} ({made.transport}:{made.port}) of site {made.site} created; trunks to "
                      f"{targets}")


@gateway_app.command("list")
def gateway_list(ctx: typer.Context, site: Annotated[str | None, typer.Option(help="Only this site's.")] = None,
                 tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    voice, t = _voice(ctx, tenant)
    gateways = voice.gateways(t, site=site)
    if as_json:
        print_json(gateways)
        return
    print_rows([{"name": g.name, "site": g.site, "transport": g.transport, "port": g.port,
                 "trunks": ", ".join(f"{tr.target} ({tr.priority})" for tr in g.trunks)} for g in gateways],
               ["name", "site", "transport", "port", "trunks"])


@trunk_app.command("new")
def trunk_new(ctx: typer.Context, gateway: Annotated[str, typer.Argument(help="The gateway's name.")],
              target: Annotated[str, typer.Argument(help="A mediation server's FQDN or IP.")],
              priority: Annotated[int, typer.Option(help="Equal for every trunk of a gateway.")] = 0,
              tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """A trunk, as given (``voice check`` says whether it is a right one)."""
    voice, t = _voice(ctx, tenant)
    made = voice.create_trunk(t, gateway=gateway, target=target, priority=priority)
    if as_json:
        print_json(made)
    else:
        console.print(f"trunk {made.gateway} → {made.target} (priority {made.priority}) created")


@trunk_app.command("list")
def trunk_list(ctx: typer.Context, gateway: Annotated[str | None, typer.Option(help="Only this gateway's.")] = None,
               tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    voice, t = _voice(ctx, tenant)
    print_rows(voice.trunks(t, gateway=gateway), ["gateway", "target", "priority", "id"], as_json)


@trunk_app.command("remove")
def trunk_remove(ctx: typer.Context, gateway: Annotated[str, typer.Argument(help="The gateway's name.")],
                 target: Annotated[str, typer.Argument(help="The trunk's target (or id).")],
                 tenant: TenantOpt = None) -> None:
    voice, t = _voice(ctx, tenant)
    voice.remove_trunk(t, gateway=gateway, target=target)
    console.print(f"trunk {gateway} → {target} removed")


# -- the tenant's hybrid and federation configuration ---------------------------------------------------------


@hybrid_app.command("set")
def hybrid_set(ctx: typer.Context,
               peer_destination: Annotated[str | None, typer.Option(
                   "--peer-destination", help="The external access edge FQDN calls of users without a site go "
                   "to.")] = None,
               no_peer_destination: Annotated[bool, typer.Option(
                   "--no-peer-destination", help="Clear the PeerDestination.")] = False,
               use_on_prem_dial_plan: Annotated[bool | None, typer.Option(
                   "--use-on-prem-dial-plan/--no-use-on-prem-dial-plan")] = None,
               tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Set-CsTenantHybridConfiguration -PeerDestination <External Access Edge FQDN> -UseOnPremDialPlan $false."""
    voice, t = _voice(ctx, tenant)
    peer: str | None | Unset = None if no_peer_destination else (peer_destination or UNSET)
    made = voice.set_hybrid_config(t, peer_destination=peer, use_on_prem_dial_plan=use_on_prem_dial_plan)
    _show_hybrid(made.peer_destination, made.use_on_prem_dial_plan, as_json)


@hybrid_app.command("show")
def hybrid_show(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Get-CsTenantHybridConfiguration."""
    voice, t = _voice(ctx, tenant)
    made = voice.hybrid_config(t)
    _show_hybrid(made.peer_destination, made.use_on_prem_dial_plan, as_json)


def _show_hybrid(peer: str | None, dial_plan: bool, as_json: bool) -> None:
    if as_json:
        print_json({"peer_destination": peer, "use_on_prem_dial_plan": dial_plan})
    else:
        console.print(f"PeerDestination   : {peer or ''}\nUseOnPremDialPlan : {dial_plan}")


@federation_app.command("set")
def federation_set(ctx: typer.Context,
                   shared: Annotated[bool, typer.Option("--shared-sip-address-space/--no-shared-sip-address-space",
                                                        help="Online and on-premises users share the SIP domains.")],
                   tenant: TenantOpt = None) -> None:
    """Set-CsTenantFederationConfiguration -SharedSipAddressSpace $True."""
    voice, t = _voice(ctx, tenant)
    made = voice.set_federation(t, shared_sip_address_space=shared)
    console.print(f"SharedSipAddressSpace : {made.shared_sip_address_space}")


@federation_app.command("show")
def federation_show(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    voice, t = _voice(ctx, tenant)
    made = voice.federation(t)
    if as_json:
        print_json(made)
    else:
        console.print(f"SharedSipAddressSpace : {made.shared_sip_address_space}")


# -- users ----------------------------------------------------------------------------------------------------


@user_app.command("set")
def user_set(ctx: typer.Context, identity: IdentityArg,
             enterprise_voice: Annotated[bool | None, typer.Option(
                 "--enterprise-voice/--no-enterprise-voice", help="EnterpriseVoiceEnabled.")] = None,
             hosted_voicemail: Annotated[bool | None, typer.Option(
                 "--hosted-voicemail/--no-hosted-voicemail", help="HostedVoiceMail.")] = None,
             line_uri: Annotated[str | None, typer.Option(
                 "--line-uri", help="OnPremLineURI, tel:+<E.164> (one user's in the tenant).")] = None,
             no_line_uri: Annotated[bool, typer.Option("--no-line-uri", help="Clear the OnPremLineURI.")] = False,
             voice_policy: Annotated[str | None, typer.Option("--voice-policy", help="HybridVoice.")] = None,
             tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Set-CsUser -Identity -EnterpriseVoiceEnabled $true -HostedVoiceMail $true -OnPremLineURI tel:+…; a wildcard
    naming several users is refused with their names."""
    voice, t = _voice(ctx, tenant)
    uri: str | None | Unset = None if no_line_uri else (line_uri if line_uri is not None else UNSET)
    made = voice.set_user(t, identity, enterprise_voice=enterprise_voice, hosted_voicemail=hosted_voicemail,
                          line_uri=uri, voice_policy=voice_policy if voice_policy is not None else UNSET)
    _show_users([made], as_json)


@user_app.command("grant-policy")
def user_grant_policy(ctx: typer.Context, identity: IdentityArg,
                      policy: Annotated[RoutingPolicy, typer.Argument(
                          metavar="POLICY", help="InternationalCallsDisallowed or InternationalCallsAllowed.")],
                      tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Grant-CsVoiceRoutingPolicy -PolicyName POLICY -Identity IDENTITY."""
    voice, t = _voice(ctx, tenant)
    _show_users([voice.grant_routing_policy(t, identity, policy)], as_json)


@user_app.command("show")
def user_show(ctx: typer.Context, identity: IdentityArg, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Get-CsOnlineUser IDENTITY: what the seed's check reads (EnterpriseVoiceEnabled, HostedVoiceMail,
    VoicePolicy), with OnPremLineURI and the PSTN site; a wildcard shows every user it matches."""
    voice, t = _voice(ctx, tenant)
    _show_users(voice.users(t, identity), as_json)


@user_app.command("list")
def user_list(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Every user's voice settings (Get-CsOnlineUser)."""
    voice, t = _voice(ctx, tenant)
    print_rows(voice.users(t), ["sip_address", "display_name", "enterprise_voice_enabled", "hosted_voicemail",
                                "voice_policy", "on_prem_line_uri", "voice_routing_policy", "hybrid_pstn_site"],
               as_json)


@pstn_app.command("set")
def pstn_set(ctx: typer.Context, identity: IdentityArg,
             site: Annotated[str | None, typer.Argument(metavar="SITE", help="The PSTN site's name.")] = None,
             no_site: Annotated[bool, typer.Option("--none", help="No site: the PeerDestination serves the user.")]
             = False, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Set-CsUserPstnSettings -Identity IDENTITY -HybridPstnSite SITE."""
    if site is None and not no_site:
        raise typer.BadParameter("name a SITE, or --none to clear the user's site")
    voice, t = _voice(ctx, tenant)
    made = voice.set_pstn_site(t, identity, None if no_site else site)
    if as_json:
        print_json(made)
    else:
        console.print(f"{made.sip_address}: HybridPstnSite {made.hybrid_pstn_site or '(none)'}")


@pstn_app.command("show")
def pstn_show(ctx: typer.Context, identity: Annotated[str | None, typer.Argument(
        metavar="[IDENTITY]", help="A user (or wildcard); none: every user (Get-CsOnlineUser | "
        "Get-CsUserPstnSettings).")] = None, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Get-CsUserPstnSettings."""
    voice, t = _voice(ctx, tenant)
    print_rows(voice.users(t, identity), ["sip_address", "display_name", "hybrid_pstn_site"], as_json)


def _show_users(users: list[VoiceUser], as_json: bool) -> None:
    if as_json:
        print_json(users)
        return
    for i, u in enumerate(users):
        if i:
            console.print()
        fields = (("Identity", u.user_name), ("DisplayName", u.display_name or ""),
                  ("SipAddress", f"sip:{u.sip_address}"), ("EnterpriseVoiceEnabled", u.enterprise_voice_enabled),
                  ("HostedVoiceMail", u.hosted_voicemail), ("VoicePolicy", u.voice_policy or ""),
                  ("OnPremLineURI", u.on_prem_line_uri or ""), ("VoiceRoutingPolicy", u.voice_routing_policy.value),
                  ("HybridPstnSite", u.hybrid_pstn_site or ""))
        for name, value in fields:
            console.print(f"{name:<22} : {value}", highlight=False, soft_wrap=True)


# -- the checks -----------------------------------------------------------------------------------------------


@voice_app.command("check")
def check(ctx: typer.Context,
          dns: Annotated[bool, typer.Option("--dns", help="Check the edge's DNS records (the system's resolver).")]
          = False,
          dns_server: Annotated[str | None, typer.Option("--dns-server", help=(
              "Check the DNS records asking this server (host[:port]), e.g. the zone's own before delegation."))]
          = None,
          tls: Annotated[bool, typer.Option("--tls", help="Check TLS gateways' recorded certificates.")] = False,
          tls_live: Annotated[bool, typer.Option("--tls-live", help=(
              "Check the certificate each TLS gateway presents now (connects to it)."))] = False,
          tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Every check of the voice configuration (trunks, sites' edges, federation, users' licences, numbers,
    sites and policies), each with the fix; with --dns / --dns-server the edge's DNS records, with --tls /
    --tls-live the gateways' certificates against the tenant root CA; exit 1 when any fails."""
    voice, t = _voice(ctx, tenant)
    services = Cli.of(ctx).services
    result = run_checks(voice, services.voice_certificates, t, dns=dns, dns_server=dns_server, tls=tls,
                        tls_live=tls_live, egress=EgressPolicy.from_settings(services.settings))
    if as_json:
        print_json(result)
    else:
        for line in result.lines:
            mark = "OK  " if line.ok else "FAIL"
            console.print(f"{mark} {line.check:<22} {line.subject}: {line.detail}", highlight=False, soft_wrap=True)
            if line.fix:
                console.print(f"     fix: {line.fix}", highlight=False, soft_wrap=True)
        failed = sum(1 for line in result.lines if not line.ok)
        console.print(f"{len(result.lines)} checks, {failed} failed" if result.lines else "nothing to check")
    if not result.ok:
        raise typer.Exit(1)


# -- the tenant root CA and gateway certificates ----------------------------------------------------------------


def _read_pem(path: Path, what: str) -> bytes:
    try:
        if path.stat().st_size > MAX_PEM_BYTES:
            fail(f"{path} is larger than {MAX_PEM_BYTES} bytes: it is no {what}")
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


def _write_new(path: Path, data: str, *, secret: bool = False) -> None:
    """A new file (never over an existing one); a private key readable by its owner only."""
    try:
        with path.open("x", encoding="ascii") as out:
            if secret:
                path.chmod(0o600)
            out.write(data)
    except FileExistsError:
        fail(f"{path} exists: name a new file")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}")


@ca_app.command("new")
def ca_new(ctx: typer.Context,
           common_name: Annotated[str | None, typer.Option("--cn", help="Default: Tenantry Voice Root CA <tenant>.")]
           = None,
           days: Annotated[int, typer.Option(help="Validity in days.")] = 3650,
           key_type: Annotated[KeyType, typer.Option("--key-type")] = KeyType.RSA2048,
           replace: Annotated[bool, typer.Option("--replace", help=(
               "Replace the existing root CA (every gateway certificate it issued stops chaining)."))] = False,
           tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """A new root CA for the tenant's gateways (its key kept sealed here, to issue gateway certificates)."""
    cli = Cli.of(ctx)
    made = cli.services.voice_certificates.new_root_ca(cli.tenant(tenant), common_name=common_name, days=days,
                                                       key_type=key_type, replace=replace)
    if as_json:
        print_json(made)
    else:
        console.print(f"root CA {made.subject} ({made.thumbprint}) valid until {made.not_after.isoformat()}")


@ca_app.command("import")
def ca_import(ctx: typer.Context, cert: Annotated[Path, typer.Option("--cert", help="The CA certificate (PEM).")],
              key: Annotated[Path | None, typer.Option("--key", help="Its private key (PEM), to issue here.")]
              = None,
              replace: Annotated[bool, typer.Option("--replace")] = False,
              tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The organisation's own CA as the tenant root CA (with its key only if Tenantry is to issue)."""
    cli = Cli.of(ctx)
    made = cli.services.voice_certificates.import_root_ca(
        cli.tenant(tenant), _read_pem(cert, "certificate"), _read_pem(key, "key") if key else None,
        replace=replace)
    if as_json:
        print_json(made)
    else:
        console.print(f"root CA {made.subject} ({made.thumbprint}) imported; can issue: {made.can_issue}")


@ca_app.command("show")
def ca_show(ctx: typer.Context, pem: Annotated[bool, typer.Option("--pem", help="Print the certificate (PEM).")]
            = False, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The root CA: what gateways import as their trusted root (seed step 3: --pem)."""
    cli = Cli.of(ctx)
    info = cli.services.voice_certificates.root_ca(cli.tenant(tenant))
    if pem:
        typer.echo(info.certificate_pem, nl=False)
    elif as_json:
        print_json(info)
    else:
        console.print(f"{info.subject}  thumbprint {info.thumbprint}  {info.not_before.isoformat()} – "
                      f"{info.not_after.isoformat()}  can issue: {info.can_issue}", highlight=False, soft_wrap=True)


@ca_app.command("issue")
def ca_issue(ctx: typer.Context, gateway: Annotated[str, typer.Argument(help="The gateway's name (FQDN or IP).")],
             cert_out: Annotated[Path, typer.Option("--cert-out", help="New file for the certificate (PEM).")],
             key_out: Annotated[Path, typer.Option("--key-out", help="New file for its private key (PEM, 0600).")],
             days: Annotated[int, typer.Option(help="Validity in days.")] = 730,
             ip: Annotated[str | None, typer.Option("--ip", help="Also name this IP address.")] = None,
             key_type: Annotated[KeyType, typer.Option("--key-type")] = KeyType.RSA2048,
             tenant: TenantOpt = None) -> None:
    """A certificate for the gateway from the tenant root CA (seed step 4), recorded on the gateway; its key is
    written to --key-out and not kept here."""
    cli = Cli.of(ctx)
    for path in (cert_out, key_out):
        if path.exists():
            fail(f"{path} exists: name a new file")
    issued = cli.services.voice_certificates.issue(cli.tenant(tenant), gateway, days=days, ip=ip, key_type=key_type)
    _write_new(cert_out, issued.certificate_pem)
    _write_new(key_out, issued.private_key_pem, secret=True)
    console.print(f"certificate for {issued.gateway} until {issued.not_after.isoformat()}: {cert_out}, key {key_out}")


@gateway_app.command("certificate")
def gateway_certificate(ctx: typer.Context, gateway: Annotated[str, typer.Argument(help="The gateway's name.")],
                        file: Annotated[Path, typer.Option("--file", help=(
                            "The certificate it presents (PEM; intermediates after it)."))],
                        tenant: TenantOpt = None) -> None:
    """Record the certificate a gateway presents, for voice check --tls."""
    cli = Cli.of(ctx)
    name = cli.services.voice_certificates.record(cli.tenant(tenant), gateway, _read_pem(file, "certificate"))
    console.print(f"certificate recorded for gateway {name}")


# -- routing: the tester and the SIP redirect service -----------------------------------------------------------


@voice_app.command("route")
def route_call(ctx: typer.Context,
               caller: Annotated[str, typer.Argument(help="The caller: SIP address, UPN or tel:+E.164 number.")],
               number: Annotated[str, typer.Argument(help="The number dialled, as the caller dialled it.")],
               conference: Annotated[bool, typer.Option("--conference", help=(
                   "A call escalated to a PSTN conference (goes to the site's mediation servers)."))] = False,
               tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Where this call goes, as the SIP redirect service would answer it (all gateways taken as healthy); exit 1
    when the call would be refused."""
    from tenantry.voice.routing import Outcome, route
    from tenantry.voice.sip_server import status_of

    voice, t = _voice(ctx, tenant)
    decision = route(voice.routing_snapshot(t), caller, number, conference=conference)
    code, text = status_of(decision.outcome)
    if as_json:
        print_json({"status": code, **plain(decision)})
    else:
        console.print(f"{code} {text}: {decision.reason}", highlight=False, soft_wrap=True)
        for contact in decision.contacts:
            console.print(f"  Contact: <{contact}>", highlight=False, soft_wrap=True)
    if decision.outcome is not Outcome.REDIRECT:
        raise typer.Exit(1)


@voice_app.command("serve")
def serve(ctx: typer.Context,
          host: Annotated[str | None, typer.Option(help="Address to listen on (TENANTRY_VOICE_SIP_HOST).")] = None,
          port: Annotated[int | None, typer.Option(help="UDP and TCP port (TENANTRY_VOICE_SIP_PORT).")] = None,
          ping: Annotated[bool, typer.Option("--ping/--no-ping", help="Ping gateways with OPTIONS (health).")]
          = True,
          tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help=(
              "Also listen on TLS with this certificate (PEM, chain after it), e.g. from voice ca issue."))] = None,
          tls_key: Annotated[Path | None, typer.Option("--tls-key", help="The certificate's private key (PEM).")]
          = None,
          tls_port: Annotated[int, typer.Option("--tls-port", help="The TLS port.")] = 5061,
          tenant: TenantOpt = None) -> None:
    """The SIP redirect service: answers each INVITE with 302 and the gateways to try, or 403/404/484/480
    (docs/voice.md); the voice configuration is re-read every TENANTRY_VOICE_SNAPSHOT_SECONDS."""
    from tenantry.voice import sip_server
    from tenantry.voice.live import LiveSnapshot

    cli = Cli.of(ctx)
    settings = cli.settings
    t = cli.tenant(tenant or settings.voice_sip_tenant)
    bind_host = host or settings.voice_sip_host
    bind_port = settings.voice_sip_port if port is None else port
    context = None
    if tls_cert or tls_key:
        if not (tls_cert and tls_key):
            fail("TLS needs both --tls-cert and --tls-key")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(tls_cert, tls_key)
        except (OSError, ssl.SSLError) as exc:
            fail(f"cannot use {tls_cert} / {tls_key} for TLS: {exc}")
    source = LiveSnapshot(cli.services.voice, t, every=settings.voice_snapshot_seconds).start()
    also = f", TLS on {tls_port}" if context else ""
    console.print(f"SIP redirect service for tenant {t} on {bind_host}:{bind_port} (UDP and TCP{also})")
    try:
        sip_server.run(bind_host, bind_port, source, ping_gateways=ping, tls_context=context, tls_port=tls_port)
    finally:
        source.stop()
