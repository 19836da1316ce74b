"""Trust's commands, after seed 002's steps and cmdlets: ``tenantry partner-app …`` (New-PartnerApplication),
``auth-config show`` (Get-AuthConfig), ``auth-cert export|rotate`` (ExportAuthCert.ps1, Set-AuthConfig),
``service-principal credential add|show`` (Add-MgServicePrincipalKey, Get-MgServicePrincipal) and
``trust check`` (the seed's step 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tenantry.cli_kit import Cli, JsonOpt, TenantOpt, console, fail, print_json, print_rows, sub_app, when
from tenantry.trust.results import AuthConfigInfo, TrustCheck
from tenantry.trust.service import MAX_VALUE_BYTES, TrustService

partner_app = sub_app("Partner applications (New-PartnerApplication): servers that act in users' mailboxes.")
auth_config_app = sub_app("The tenant's authorisation configuration (Get-AuthConfig).")
auth_cert_app = sub_app("The tenant's signing certificate: export it (ExportAuthCert.ps1) and rotate it.")
rotate_app = sub_app("Rotate the signing certificate with overlap: publish-next, then switch, then retire-previous "
                     "(Set-AuthConfig -NewCertificateThumbprint / -PublishCertificate / -ClearPreviousCertificate).")
sp_app = sub_app("The keys a partner's service principal holds of ours (Get-MgServicePrincipal).")
credential_app = sub_app("Add a key to a partner's service principal (Add-MgServicePrincipalKey).")
trust_app = sub_app("Server-to-server trust: the seed's last step.")

PartnerArg = Annotated[str, typer.Argument(metavar="PARTNER", help="The partner's name, id or ApplicationIdentifier.")]


def register(root: typer.Typer) -> None:
    root.add_typer(partner_app, name="partner-app")
    root.add_typer(auth_config_app, name="auth-config")
    auth_cert_app.add_typer(rotate_app, name="rotate")
    root.add_typer(auth_cert_app, name="auth-cert")
    sp_app.add_typer(credential_app, name="credential")
    root.add_typer(sp_app, name="service-principal")
    root.add_typer(trust_app, name="trust")


def _trust(ctx: typer.Context, tenant: str | None) -> tuple[TrustService, str]:
    cli = Cli.of(ctx)
    return cli.services.trust, cli.tenant(tenant)


def _partner(ctx: typer.Context, tenant: str | None, ref: str) -> tuple[TrustService, str, str]:
    trust, t = _trust(ctx, tenant)
    return trust, t, trust.find_partner(t, ref)


@partner_app.command("new")
def partner_app_new(ctx: typer.Context, name: str,
                    app_id: Annotated[str, typer.Option("--app-id", help="ApplicationIdentifier (a GUID), e.g. "
                                                        "00000004-0000-0ff1-ce00-000000000000 (Skype for Business "
                                                        "Online).")],
                    realm: Annotated[str | None, typer.Option(help="Default: the tenant's realm.")] = None,
                    linked_account: Annotated[str | None, typer.Option(
                        "--linked-account", help="The application account (userName or id).")] = None,
                    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
                    tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """New-PartnerApplication -Name -ApplicationIdentifier -Enabled $True -LinkedAccount."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    account = cli.user_id(t, linked_account) if linked_account else None
    made = cli.services.trust.create_partner(t, name=name, application_id=app_id, realm=realm,
                                             enabled=not disabled, linked_account=account)
    if as_json:
        print_json(made)
    else:
        console.print(f"partner application {made.name} ({made.application_id}@{made.realm}) created, "
                      f"{'enabled' if made.enabled else 'disabled'}; id {made.id}")


@partner_app.command("list")
def partner_app_list(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Get-PartnerApplication."""
    trust, t = _trust(ctx, tenant)
    print_rows(trust.partners(t), ["name", "application_id", "realm", "enabled", "linked_account", "id"], as_json)


@partner_app.command("enable")
def partner_app_enable(ctx: typer.Context, partner: PartnerArg, tenant: TenantOpt = None) -> None:
    """Set-PartnerApplication -Enabled $True."""
    trust, t, p = _partner(ctx, tenant, partner)
    console.print(f"{trust.set_enabled(t, p, True).name} enabled")


@partner_app.command("disable")
def partner_app_disable(ctx: typer.Context, partner: PartnerArg, tenant: TenantOpt = None) -> None:
    """Set-PartnerApplication -Enabled $False: its tokens are refused from now on."""
    trust, t, p = _partner(ctx, tenant, partner)
    console.print(f"{trust.set_enabled(t, p, False).name} disabled")


@auth_config_app.command("show")
def auth_config_show(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Get-AuthConfig: current, next and previous certificate thumbprints and dates (made on first use, with a
    new current certificate valid two years)."""
    trust, t = _trust(ctx, tenant)
    _show_config(trust.auth_config(t), as_json)


def _show_config(config: AuthConfigInfo, as_json: bool) -> None:
    if as_json:
        print_json(config)
        return
    console.print(f"ServiceName {config.service_name}  Realm {config.realm}")
    console.print(f"CurrentCertificateThumbprint {config.current_certificate_thumbprint}")
    if config.next_certificate_thumbprint:
        effective = config.next_certificate_effective_date
        console.print(f"NewCertificateThumbprint {config.next_certificate_thumbprint}  "
                      f"NewCertificateEffectiveDate {effective.isoformat() if effective else ''}")
    if config.previous_certificate_thumbprint:
        console.print(f"PreviousCertificateThumbprint {config.previous_certificate_thumbprint}")
    print_rows(config.certificates, ["role", "thumbprint", "not_before", "not_after", "effective_at"])


@auth_cert_app.command("export")
def auth_cert_export(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Where to write the .cer.")],
                     tenant: TenantOpt = None) -> None:
    """The current certificate as DER, as the seed's ExportAuthCert.ps1 writes OAuthCert.cer."""
    trust, t = _trust(ctx, tenant)
    der = trust.export_certificate(t)
    file.write_bytes(der)
    console.print(f"wrote {file} ({len(der)} bytes; thumbprint {trust.auth_config(t).current_certificate_thumbprint})")


@rotate_app.command("publish-next")
def rotate_publish_next(ctx: typer.Context,
                        effective: Annotated[str | None, typer.Option(
                            "--effective", help="When it may become current (ISO date); default in two days.")]
                        = None,
                        cert_file: Annotated[Path | None, typer.Option(
                            "--cert-file", help="Import this certificate (PEM) instead of generating one.")] = None,
                        key_file: Annotated[Path | None, typer.Option(
                            "--key-file", help="The imported certificate's private key (PEM, unencrypted).")]
                        = None,
                        tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Publish a next certificate: partners add it to their service principals before the switch."""
    trust, t = _trust(ctx, tenant)
    cert = _read_text(cert_file) if cert_file else None
    key = _read_text(key_file) if key_file else None
    _show_config(trust.publish_next(t, effective_at=when("--effective", effective), certificate_pem=cert,
                                    private_key_pem=key), as_json)


@rotate_app.command("switch")
def rotate_switch(ctx: typer.Context,
                  force: Annotated[bool, typer.Option("--force", help="Before its effective date.")] = False,
                  tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The next certificate becomes current; the current one becomes previous (still accepted until retired)."""
    trust, t = _trust(ctx, tenant)
    _show_config(trust.switch(t, force=force), as_json)


@rotate_app.command("retire-previous")
def rotate_retire_previous(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Stop accepting the previous certificate."""
    trust, t = _trust(ctx, tenant)
    _show_config(trust.retire_previous(t), as_json)


@credential_app.command("add")
def credential_add(ctx: typer.Context, partner: PartnerArg,
                   value_file: Annotated[Path, typer.Option("--value-file", help=(
                       "The certificate: the .cer (DER), PEM, or its base64 ($credValue)."))],
                   start: Annotated[str | None, typer.Option(help="Start date; default the certificate's.")] = None,
                   end: Annotated[str | None, typer.Option(help="End date; default the certificate's.")] = None,
                   tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Add-MgServicePrincipalKey -Type asymmetric -Usage Verify -Value $credValue."""
    trust, t, p = _partner(ctx, tenant, partner)
    try:
        if value_file.stat().st_size > MAX_VALUE_BYTES:
            fail(f"{value_file} is larger than {MAX_VALUE_BYTES} bytes: it is no certificate")
        value = value_file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {value_file}: {exc.strerror}")
    key = trust.add_service_principal_key(t, p, value, start=when("--start", start), end=when("--end", end))
    if as_json:
        print_json(key)
    else:
        console.print(f"key {key.key_id} added: {key.type}, usage {key.usage}, thumbprint {key.thumbprint}, "
                      f"{key.start_date.isoformat()} – {key.end_date.isoformat()}")


@sp_app.command("show")
def service_principal_show(ctx: typer.Context, partner: PartnerArg, tenant: TenantOpt = None,
                           as_json: JsonOpt = False) -> None:
    """Get-MgServicePrincipal: the partner's keys with their start and end dates."""
    trust, t, p = _partner(ctx, tenant, partner)
    principal = trust.service_principal(t, p)
    if as_json:
        print_json(principal)
        return
    console.print(f"{principal.partner} ({principal.application_id})")
    print_rows(principal.keys, ["key_id", "holder", "type", "usage", "thumbprint", "start_date", "end_date"])


@trust_app.command("check")
def trust_check(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The seed's step 6: each partner's service principal holds our current certificate, with its start and end
    dates. Exit 1 when any partner does not."""
    trust, t = _trust(ctx, tenant)
    result = trust.check(t)
    if as_json:
        print_json(result)
    else:
        _print_check(result)
    if not result.ok:
        raise typer.Exit(1)


def _print_check(result: TrustCheck) -> None:
    console.print(f"current certificate {result.current_certificate_thumbprint}, "
                  f"{result.not_before.isoformat()} – {result.not_after.isoformat()}")
    if not result.partners:
        console.print("no partner applications")
    for p in result.partners:
        state = "OK" if p.ok else ("DATES DIFFER" if p.key_found else "NO KEY")
        console.print(f"{p.partner} ({p.application_id}){'' if p.enabled else ' [disabled]'}: {state}")
        if p.what_to_do:
            console.print(f"  what to do: {p.what_to_do}", soft_wrap=True)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")
