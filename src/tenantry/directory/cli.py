"""The directory's commands: ``tenantry directory …`` (users, groups, domains, licences, role groups) and
``tenantry scim log`` (the SCIM endpoint's request log)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from tenantry.cli_kit import Cli, JsonOpt, TenantOpt, console, fail, print_json, print_rows, sub_app, when
from tenantry.directory.results import ScimLogRow

app = sub_app("Users, groups, domains, licences and role groups.")
scim_app = sub_app("The SCIM endpoint identity providers provision into: its request log.")
mail_user_app = sub_app("Mail users (New-MailUser, Set-MailUser): application accounts of partner applications.")
role_assignment_app = sub_app("Management roles assigned directly (New-ManagementRoleAssignment): UserApplication "
                              "and ArchiveApplication, for an application account.")

UserOpt = Annotated[str, typer.Option("--user", help="The user: e-mail address, userName or id.")]


def register(root: typer.Typer) -> None:
    app.add_typer(mail_user_app, name="mail-user")
    app.add_typer(role_assignment_app, name="role-assignment")
    root.add_typer(app, name="directory")
    root.add_typer(scim_app, name="scim")


@app.command("users")
def users(
    ctx: typer.Context,
    tenant: TenantOpt = None,
    filter: Annotated[str | None, typer.Option("--filter", "-f", help='SCIM filter, e.g. userName sw "a"')] = None,
    count: int = 100,
    include_hidden: Annotated[bool, typer.Option(
        "--include-hidden", help="Also users hidden from address lists (application accounts).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List users (SCIM filter syntax). Users hidden from address lists are left out unless --include-hidden
    or the filter names one (id, userName or externalId eq)."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    page = cli.services.scim.search(t, "User", filter_text=filter, count=count, include_hidden=include_hidden)
    if as_json:
        print_json(page.resources)
        return
    hidden = {u.id for u in cli.services.directory.users_by_id(t, [d["id"] for d in page.resources]) if u.hidden}
    rows = [{"id": d["id"], "userName": d.get("userName"), "active": d.get("active", True),
             "displayName": d.get("displayName", ""), "hidden": d["id"] in hidden} for d in page.resources]
    print_rows(rows, ["id", "userName", "displayName", "active", *(["hidden"] if hidden else [])])
    console.print(f"{len(rows)} of {page.total}")


@app.command("user-add")
def user_add(
    ctx: typer.Context,
    user_name: str,
    tenant: TenantOpt = None,
    email: Annotated[str | None, typer.Option(help="Work e-mail address.")] = None,
    mobile: Annotated[str | None, typer.Option(help="Mobile phone number.")] = None,
    given_name: Annotated[str | None, typer.Option()] = None,
    family_name: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a user (the same record SCIM would create)."""
    payload: dict[str, Any] = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}
    if email:
        payload["emails"] = [{"type": "work", "value": email, "primary": True}]
    if mobile:
        payload["phoneNumbers"] = [{"type": "mobile", "value": mobile}]
    if given_name or family_name:
        payload["name"] = {k: v for k, v in (("givenName", given_name), ("familyName", family_name)) if v}
    cli = Cli.of(ctx)
    doc = cli.services.scim.create(cli.tenant(tenant), "User", payload)
    console.print(f"user {doc['id']} created")


@app.command("groups")
def groups(ctx: typer.Context, tenant: TenantOpt = None,
           filter: Annotated[str | None, typer.Option("--filter", "-f")] = None, as_json: JsonOpt = False) -> None:
    cli = Cli.of(ctx)
    page = cli.services.scim.search(cli.tenant(tenant), "Group", filter_text=filter, with_members=False)
    print_rows([{"id": d["id"], "displayName": d.get("displayName")} for d in page.resources],
               ["id", "displayName"], as_json)


@app.command("domain-add")
def domain_add(ctx: typer.Context, name: str, tenant: TenantOpt = None, verified: bool = False) -> None:
    cli = Cli.of(ctx)
    domain = cli.services.directory.add_domain(cli.tenant(tenant), name, verified=verified)
    console.print(f"domain {domain.name} added; to verify, publish TXT {domain.verification_txt}")


@app.command("domain-verify")
def domain_verify(ctx: typer.Context, name: str, tenant: TenantOpt = None) -> None:
    """Verify a domain by looking up its TXT records (dnspython)."""
    import dns.exception
    import dns.resolver

    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    try:
        answers = dns.resolver.resolve(name, "TXT", lifetime=5)
        records = [b"".join(r.strings).decode() for r in answers]
    except dns.exception.DNSException as exc:
        fail(f"TXT lookup for {name} failed: {exc}")
    cli.services.directory.verify_domain(t, name, records)
    console.print(f"domain {name} verified")


@app.command("domain-remove")
def domain_remove(ctx: typer.Context, name: str, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    cli.services.directory.remove_domain(cli.tenant(tenant), name)
    console.print(f"domain {name} removed")


@app.command("domains")
def domains(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    cli = Cli.of(ctx)
    print_rows(cli.services.directory.list_domains(cli.tenant(tenant)),
               ["name", "verified", "default", "verification_txt"], as_json)


@app.command("licence-assign")
def licence_assign(ctx: typer.Context, user_id: str, sku: str, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    cli.services.directory.assign_licence(cli.tenant(tenant), user_id, sku)
    console.print(f"{sku.upper()} assigned to {user_id}")


@app.command("licence-remove")
def licence_remove(ctx: typer.Context, user_id: str, sku: str, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    cli.services.directory.remove_licence(cli.tenant(tenant), user_id, sku)
    console.print(f"{sku.upper()} removed from {user_id}")


@app.command("licences")
def licences(ctx: typer.Context, user_id: str, tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    for sku in cli.services.directory.licences_of(cli.tenant(tenant), user_id):
        console.print(sku)


@app.command("role-groups")
def role_groups(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    cli = Cli.of(ctx)
    print_rows(cli.services.directory.list_role_groups(cli.tenant(tenant)), ["name", "roles", "members"], as_json)


@app.command("role-group-add")
def role_group_add(ctx: typer.Context, name: str, role: Annotated[list[str], typer.Option("--role", "-r")],
                   tenant: TenantOpt = None) -> None:
    cli = Cli.of(ctx)
    cli.services.directory.create_role_group(cli.tenant(tenant), name, role)
    console.print(f"role group {name} created")


@app.command("role-group-member")
def role_group_member(ctx: typer.Context, name: str, user: str, tenant: TenantOpt = None,
                      remove: Annotated[bool, typer.Option("--remove")] = False) -> None:
    """Add a user (e-mail, userName or id) to a role group, or ``--remove`` them."""
    cli = Cli.of(ctx)
    directory = cli.services.directory
    change = directory.remove_role_group_member if remove else directory.add_role_group_member
    t = cli.tenant(tenant)
    change(t, name, cli.user_id(t, user))
    console.print("done")


@mail_user_app.command("new")
def mail_user_new(ctx: typer.Context, name: str,
                  address: Annotated[str, typer.Option("--address", help="Its e-mail address (and userName), on a "
                                                        "verified domain of the tenant (-ExternalEmailAddress).")],
                  hidden: Annotated[bool, typer.Option("--hidden/--visible", help="Hide it from address lists now "
                                                        "(the seed does it in a second step: mail-user set).")]
                  = False,
                  tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """New-MailUser -Name NAME -ExternalEmailAddress ADDRESS."""
    cli = Cli.of(ctx)
    made = cli.services.directory.create_mail_user(cli.tenant(tenant), name, address, hidden=hidden)
    if as_json:
        print_json(made)
    else:
        shown = "hidden from address lists" if made.hidden_from_address_lists else "shown in address lists"
        console.print(f"mail user {made.address} created, {shown}; id {made.id}")


@mail_user_app.command("set")
def mail_user_set(ctx: typer.Context,
                  user: Annotated[str, typer.Argument(metavar="USER", help="E-mail address, userName or id.")],
                  hidden: Annotated[bool, typer.Option("--hidden/--visible", help="-HiddenFromAddressListsEnabled "
                                                        "$True / $False.")],
                  tenant: TenantOpt = None) -> None:
    """Set-MailUser -HiddenFromAddressListsEnabled: hidden users are absent from listings and searches, found by
    id, userName or externalId."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    changed = cli.services.directory.set_hidden(t, cli.user_id(t, user), hidden)
    console.print(f"{changed.address} is {'hidden from' if hidden else 'shown in'} address lists")


@role_assignment_app.command("new")
def role_assignment_new(ctx: typer.Context,
                        role: Annotated[str, typer.Option("--role", help="UserApplication or ArchiveApplication.")],
                        user: UserOpt, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """New-ManagementRoleAssignment -Role ROLE -User USER (administrator roles come from role groups)."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    made = cli.services.directory.assign_role(t, cli.user_id(t, user), role)
    if as_json:
        print_json(made)
    else:
        console.print(f"{made.role} assigned to {made.user_name}; id {made.id}")


@role_assignment_app.command("list")
def role_assignment_list(ctx: typer.Context,
                         user: Annotated[str | None, typer.Option("--user", help="Only this user's.")] = None,
                         tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Get-ManagementRoleAssignment: roles held directly (not through role groups)."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    rows = cli.services.directory.role_assignments(t, cli.user_id(t, user) if user else None)
    print_rows(rows, ["user_name", "role", "created_at", "id"], as_json)


@role_assignment_app.command("remove")
def role_assignment_remove(ctx: typer.Context, role: Annotated[str, typer.Option("--role")], user: UserOpt,
                           tenant: TenantOpt = None) -> None:
    """Remove-ManagementRoleAssignment."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    cli.services.directory.remove_role_assignment(t, cli.user_id(t, user), role)
    console.print(f"{role} removed from {user}")


@scim_app.command("log")
def scim_log(ctx: typer.Context,
             since: Annotated[str | None, typer.Option(help="From this time (ISO 8601) or age (30m, 24h, 7d).")] = None,
             until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601) or age.")] = None,
             failed: Annotated[bool, typer.Option("--failed", help="Only writes that failed (status 400 or more).")]
             = False,
             method: Annotated[str | None, typer.Option(help="POST, PUT, PATCH or DELETE.")] = None,
             resource_type: Annotated[str | None, typer.Option(help="User, Group or Bulk.")] = None,
             resource_id: Annotated[str | None, typer.Option(help="Only this resource id.")] = None,
             name: Annotated[str | None, typer.Option(help="Only this userName, displayName or externalId.")] = None,
             token: Annotated[str | None, typer.Option(help="Only this SCIM token (id or name).")] = None,
             status: Annotated[int | None, typer.Option(help="Only this HTTP status.")] = None,
             limit: Annotated[int, typer.Option(min=0, max=1000)] = 50,
             offset: Annotated[int, typer.Option(min=0)] = 0,
             tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Inbound SCIM writes (who, what, the result), newest first; kept TENANTRY_SCIM_LOG_DAYS days."""
    cli = Cli.of(ctx)
    rows = cli.services.scim_log.entries(
        cli.tenant(tenant), since=when("--since", since), until=when("--until", until), method=method,
        resource_type=resource_type, resource_id=resource_id, outcome="failure" if failed else None,
        status=status, token=token, name=name, offset=offset, limit=limit)
    if as_json:
        print_json(rows)
        return
    _print_scim_log(rows)
    console.print(f"{len(rows)} entries" + (" (more with --offset)" if len(rows) == limit and limit else ""))


def _print_scim_log(rows: list[ScimLogRow]) -> None:
    from tenantry.connectors.items import printable

    table = Table("token", "request", "result")
    table.columns.insert(0, Column("at (UTC)", no_wrap=True))
    table.add_column("ms", justify="right", no_wrap=True)
    for r in rows:
        who = r.user_name or r.display_name or r.external_id or r.resource_id or ""
        request = f"{r.method} {r.resource_type or ''} {who}".strip()
        if r.bulk_index:
            request += f" (bulk #{r.bulk_index})"
        result = f"{r.status} {r.scim_type or ''}".strip()
        # The IdP's values are quoted as text: escaped for the terminal (controls) and for rich (brackets).
        cells = [r.at[:19].replace("T", " "), escape(printable(r.token_name or r.token_id or "")),
                 "\n".join(escape(printable(v)) for v in (request, r.operation) if v),
                 "\n".join(escape(printable(v)) for v in (result, r.detail) if v), str(r.duration_ms)]
        table.add_row(*cells, style="red" if r.status >= 400 else None)
    console.print(table)
