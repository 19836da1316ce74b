"""The ``tenantry`` command: a thin layer over the same services the server uses."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tenantry.app import Services, bootstrap, build_services, create_app
from tenantry.core.errors import TenantryError
from tenantry.core.settings import Settings

app = typer.Typer(help="Tenantry: directory, SCIM provisioning, archive and compliance.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens for the SCIM endpoint and the admin API.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
directory_app = typer.Typer(help="Users, groups, domains, licences and role groups.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(tenant_app, name="tenant")
app.add_typer(directory_app, name="directory")
app.add_typer(db_app, name="db")

console = Console()
err = Console(stderr=True)

TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant id (default: the default tenant).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _services() -> Services:
    return build_services(Settings())


def _tenant(services: Services, tenant: str | None) -> str:
    return tenant or services.settings.default_tenant


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _run(func: Any) -> Any:
    """Run a service call; a domain or SCIM error becomes a message and a non-zero exit."""
    from scim2_models import SCIMException

    try:
        return func()
    except TenantryError as exc:
        _fail(exc.message)
    except SCIMException as exc:
        _fail(f"{exc.scim_type or exc.status}: {exc.detail}")


def _print(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*[str(row.get(c, "")) for c in columns])
    console.print(table)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the server (SCIM at /scim/v2, admin API at /api/v1) on the configured database."""
    import uvicorn

    settings = Settings()
    services = build_services(settings)
    issued = bootstrap(services)
    if issued:
        console.print("[bold]First run: these tokens are shown once. Keep them now.[/bold]")
        for scope, secret in issued.items():
            console.print(f"  {scope} token: {secret}")
    bind_host = host or settings.host
    bind_port = port or settings.port
    console.print(f"Tenantry on http://{bind_host}:{bind_port}  (SCIM: /scim/v2, database: "
                  f"{services.db.engine.url.render_as_string(hide_password=True)})")
    uvicorn.run(create_app(settings, services), host=bind_host, port=bind_port, log_level="warning")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (the server also does this on start)."""
    services = _services()
    console.print(f"schema up to date: {services.db.engine.url.render_as_string(hide_password=True)}")


@tenant_app.command("create")
def tenant_create(tenant_id: str, name: Annotated[str | None, typer.Option()] = None) -> None:
    services = _services()
    _run(lambda: services.directory.create_tenant(tenant_id, name or tenant_id))
    console.print(f"tenant {tenant_id} created; SCIM at /tenants/{tenant_id}/scim/v2")


@tenant_app.command("list")
def tenant_list(as_json: JsonOpt = False) -> None:
    _print(_services().directory.list_tenants(), ["id", "name", "created_at"], as_json)


@token_app.command("create")
def token_create(
    tenant: TenantOpt = None,
    scope: Annotated[str, typer.Option(help="scim or admin")] = "scim",
    name: Annotated[str, typer.Option(help="A label to recognise it by.")] = "default",
) -> None:
    """Issue a token; the secret is printed once and stored only as a hash."""
    services = _services()
    issued = _run(lambda: services.directory.issue_token(_tenant(services, tenant), scope, name))
    err.print(f"token {issued.id} ({issued.scope}, tenant {issued.tenant_id}); the secret follows, shown once:")
    print(issued.secret)


@token_app.command("rotate")
def token_rotate(token_id: str) -> None:
    """Revoke a token and issue its successor (same tenant, scope and name)."""
    services = _services()
    issued = _run(lambda: services.directory.rotate_token(token_id))
    err.print(f"token {token_id} revoked; new token {issued.id}; the secret follows, shown once:")
    print(issued.secret)


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    services = _services()
    _run(lambda: services.directory.revoke_token(token_id))
    console.print(f"token {token_id} revoked")


@token_app.command("list")
def token_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    services = _services()
    rows = [t.__dict__ for t in services.directory.list_tokens(tenant)]
    _print(rows, ["id", "tenant_id", "scope", "name", "created_at", "revoked_at"], as_json)


@directory_app.command("users")
def users(
    tenant: TenantOpt = None,
    filter: Annotated[str | None, typer.Option("--filter", "-f", help='SCIM filter, e.g. userName sw "a"')] = None,
    count: int = 100,
    as_json: JsonOpt = False,
) -> None:
    """List users (SCIM filter syntax)."""
    services = _services()
    page = _run(lambda: services.scim.search(_tenant(services, tenant), "User", filter_text=filter, count=count))
    rows = [{"id": d["id"], "userName": d.get("userName"), "active": d.get("active", True),
             "displayName": d.get("displayName", "")} for d in page.resources]
    if as_json:
        console.print_json(json.dumps(page.resources))
    else:
        _print(rows, ["id", "userName", "displayName", "active"], False)
        console.print(f"{len(rows)} of {page.total}")


@directory_app.command("user-add")
def user_add(
    user_name: str,
    tenant: TenantOpt = None,
    email: Annotated[str | None, typer.Option(help="Work e-mail address.")] = None,
    mobile: Annotated[str | None, typer.Option(help="Mobile phone number.")] = None,
    given_name: Annotated[str | None, typer.Option()] = None,
    family_name: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a user (the same record SCIM would create)."""
    services = _services()
    payload: dict[str, Any] = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}
    if email:
        payload["emails"] = [{"type": "work", "value": email, "primary": True}]
    if mobile:
        payload["phoneNumbers"] = [{"type": "mobile", "value": mobile}]
    if given_name or family_name:
        payload["name"] = {k: v for k, v in (("givenName", given_name), ("familyName", family_name)) if v}
    doc = _run(lambda: services.scim.create(_tenant(services, tenant), "User", payload))
    console.print(f"user {doc['id']} created")


@directory_app.command("groups")
def groups(tenant: TenantOpt = None, filter: Annotated[str | None, typer.Option("--filter", "-f")] = None,
           as_json: JsonOpt = False) -> None:
    services = _services()
    page = _run(lambda: services.scim.search(_tenant(services, tenant), "Group", filter_text=filter,
                                             with_members=False))
    _print([{"id": d["id"], "displayName": d.get("displayName")} for d in page.resources],
           ["id", "displayName"], as_json)


@directory_app.command("domain-add")
def domain_add(name: str, tenant: TenantOpt = None, verified: bool = False) -> None:
    services = _services()
    domain = _run(lambda: services.directory.add_domain(_tenant(services, tenant), name, verified=verified))
    console.print(f"domain {domain['name']} added; to verify, publish TXT {domain['verification_txt']}")


@directory_app.command("domain-verify")
def domain_verify(name: str, tenant: TenantOpt = None) -> None:
    """Verify a domain by looking up its TXT records (dnspython)."""
    import dns.exception
    import dns.resolver

    services = _services()
    try:
        answers = dns.resolver.resolve(name, "TXT", lifetime=5)
        records = [b"".join(r.strings).decode() for r in answers]
    except dns.exception.DNSException as exc:
        _fail(f"TXT lookup for {name} failed: {exc}")
        return
    _run(lambda: services.directory.verify_domain(_tenant(services, tenant), name, records))
    console.print(f"domain {name} verified")


@directory_app.command("domain-remove")
def domain_remove(name: str, tenant: TenantOpt = None) -> None:
    services = _services()
    _run(lambda: services.directory.remove_domain(_tenant(services, tenant), name))
    console.print(f"domain {name} removed")


@directory_app.command("domains")
def domains(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    services = _services()
    _print(services.directory.list_domains(_tenant(services, tenant)),
           ["name", "verified", "default", "verification_txt"], as_json)


@directory_app.command("licence-assign")
def licence_assign(user_id: str, sku: str, tenant: TenantOpt = None) -> None:
    services = _services()
    _run(lambda: services.directory.assign_licence(_tenant(services, tenant), user_id, sku))
    console.print(f"{sku.upper()} assigned to {user_id}")


@directory_app.command("licence-remove")
def licence_remove(user_id: str, sku: str, tenant: TenantOpt = None) -> None:
    services = _services()
    _run(lambda: services.directory.remove_licence(_tenant(services, tenant), user_id, sku))
    console.print(f"{sku.upper()} removed from {user_id}")


@directory_app.command("licences")
def licences(user_id: str, tenant: TenantOpt = None) -> None:
    services = _services()
    for sku in _run(lambda: services.directory.licences_of(_tenant(services, tenant), user_id)):
        console.print(sku)


@directory_app.command("role-groups")
def role_groups(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    services = _services()
    _print(services.directory.list_role_groups(_tenant(services, tenant)), ["name", "roles", "members"], as_json)


@directory_app.command("role-group-add")
def role_group_add(name: str, role: Annotated[list[str], typer.Option("--role", "-r")],
                   tenant: TenantOpt = None) -> None:
    services = _services()
    _run(lambda: services.directory.create_role_group(_tenant(services, tenant), name, role))
    console.print(f"role group {name} created")


@directory_app.command("role-group-member")
def role_group_member(name: str, user_id: str, tenant: TenantOpt = None,
                      remove: Annotated[bool, typer.Option("--remove")] = False) -> None:
    services = _services()
    t = _tenant(services, tenant)
    if remove:
        _run(lambda: services.directory.remove_role_group_member(t, name, user_id))
    else:
        _run(lambda: services.directory.add_role_group_member(t, name, user_id))
    console.print("done")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
