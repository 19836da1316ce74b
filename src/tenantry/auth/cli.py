"""Console sign-in's commands: ``tenantry admin …`` (console passwords, lockouts, sessions) and
``tenantry sign-in oidc …`` (a tenant's single sign-on)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tenantry.auth.oidc import DEFAULT_SCOPES
from tenantry.cli_kit import Cli, JsonOpt, TenantOpt, console, fail, print_json, print_rows, sub_app

admin_app = sub_app("Console administrators: passwords, lockouts and sessions.")
password_app = sub_app("Console passwords (argon2id; at least 12 characters).")
signin_app = sub_app("Console sign-in: single sign-on with OpenID Connect.")
oidc_app = sub_app("A tenant's OpenID Connect provider.")
admin_app.add_typer(password_app, name="password")
signin_app.add_typer(oidc_app, name="oidc")


def register(root: typer.Typer) -> None:
    root.add_typer(admin_app, name="admin")
    root.add_typer(signin_app, name="sign-in")


UserArg = Annotated[str, typer.Argument(metavar="USER", help="userName, e-mail address or id of a directory user.")]


@password_app.command("set")
def password_set(ctx: typer.Context, user: UserArg, tenant: TenantOpt = None,
                 password_stdin: Annotated[bool, typer.Option(
                     "--password-stdin", help="Read the password from the first line of standard input.")] = False,
                 ) -> None:
    """Set (or reset) a user's console password; clears a lockout and ends the user's password sessions."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user_id = cli.services.signin.set_password(t, user, password)
    console.print(f"console password set for {user} ({user_id}) in tenant {t}")


@admin_app.command("unlock")
def unlock(ctx: typer.Context, user: UserArg, tenant: TenantOpt = None) -> None:
    """Lift a lockout after too many wrong passwords, and forget the failures."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    user_id = cli.services.signin.unlock(t, user)
    console.print(f"{user} ({user_id}) unlocked in tenant {t}")


@admin_app.command("sessions")
def sessions(ctx: typer.Context,
             revoke: Annotated[str | None, typer.Option(help="End this session (its id, or a unique start of it).")]
             = None,
             tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Only this tenant's sessions "
                                                                              "(default: every tenant's).")] = None,
             ended: Annotated[bool, typer.Option("--ended", help="List ended sessions too.")] = False,
             as_json: JsonOpt = False) -> None:
    """List console sessions (live ones by default), or end one with --revoke."""
    cli = Cli.of(ctx)
    store = cli.services.signin.sessions
    t = cli.tenant(tenant) if tenant is not None else None
    if revoke is not None:
        matches = [s for s in store.listed(t, include_ended=True) if s.id.startswith(revoke.strip().lower())]
        if len(revoke.strip()) < 8 or len(matches) != 1:
            fail(f"no single session starts with {revoke!r} (give 8 characters or more of its id)")
        if not store.revoke(matches[0].id):
            fail(f"session {matches[0].id} has ended already")
        console.print(f"session {matches[0].id} ended")
        return
    rows = store.listed(t, include_ended=ended)
    if as_json:
        print_json(rows)
        return
    users = cli.services.signin.users
    print_rows([{"id": s.id[:16], "tenant": s.tenant, "user": users.user_name(s.tenant, s.user_id) or s.user_id,
                 "method": s.method, "signed in": s.created_at.isoformat(timespec="seconds"),
                 "last seen": s.last_seen_at.isoformat(timespec="seconds"),
                 "ends": s.expires_at.isoformat(timespec="seconds"),
                 "state": "live" if s.active else ("revoked" if s.revoked_at else "expired")} for s in rows],
               ["id", "tenant", "user", "method", "signed in", "last seen", "ends", "state"])


@oidc_app.command("set")
def oidc_set(ctx: typer.Context,
             issuer: Annotated[str | None, typer.Option(help="The provider's issuer (https), exactly as its "
                                                             "discovery document names it.")] = None,
             client_id: Annotated[str | None, typer.Option(help="The client (application) id at the provider.")]
             = None,
             client_secret_stdin: Annotated[bool, typer.Option(
                 "--client-secret-stdin", help="Read the client secret from the first line of standard input.")]
             = False,
             claim: Annotated[str | None, typer.Option(help="The ID token claim naming the user (default "
                                                            "preferred_username).")] = None,
             match: Annotated[str | None, typer.Option(help="Compare it with the directory's userName or emails "
                                                            "(default userName).")] = None,
             scope: Annotated[list[str] | None, typer.Option("--scope", help="A scope to ask for (repeat; default: "
                                                                             "openid profile email).")] = None,
             name: Annotated[str | None, typer.Option("--name", help='Shown as "Sign in with NAME".')] = None,
             tenant: TenantOpt = None) -> None:
    """Configure (or change) the tenant's single sign-on; what is not given is kept."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    signin = cli.services.signin
    current = signin.oidc.config(t)
    if current is None and (issuer is None or client_id is None):
        fail("a new single sign-on needs --issuer, --client-id and --client-secret-stdin")
    secret = sys.stdin.readline().rstrip("\r\n") if client_secret_stdin else None
    config = signin.oidc.configure(
        t, issuer=issuer or (current.issuer if current else ""),
        client_id=client_id or (current.client_id if current else ""), client_secret=secret,
        claim=claim or (current.claim if current else "preferred_username"),
        match=match or (current.match if current else "userName"),
        scopes=scope or (current.scopes if current else DEFAULT_SCOPES),
        display_name=name or (current.display_name if current else None))
    console.print(f"single sign-on of tenant {t}: {config.issuer} (client {config.client_id}); register this "
                  f"redirect URI at the provider: {signin.redirect_uri(None, t)}")


@oidc_app.command("show")
def oidc_show(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The tenant's single sign-on (the client secret is never shown, only whether one is set)."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    signin = cli.services.signin
    config = signin.oidc.config(t)
    if config is None:
        fail(f"tenant {t!r} has no single sign-on: tenantry sign-in oidc set --issuer … --client-id … "
             "--client-secret-stdin")
    shown = {**config.as_dict(), "redirect_uri": signin.redirect_uri(None, t)}
    if as_json:
        print_json(shown)
        return
    for key, value in shown.items():
        console.print(f"{key}: {' '.join(value) if isinstance(value, list) else value}")


@oidc_app.command("remove")
def oidc_remove(ctx: typer.Context, tenant: TenantOpt = None) -> None:
    """Remove the tenant's single sign-on, and end the sessions signed in by it."""
    cli = Cli.of(ctx)
    t = cli.tenant(tenant)
    if not cli.services.signin.remove_oidc(t):
        fail(f"tenant {t!r} has no single sign-on")
    console.print(f"single sign-on of tenant {t} removed")
