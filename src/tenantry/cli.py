"""The ``tenantry`` command: a thin layer over the same services the server uses.

The root holds the installation's own commands (serve, worker, db, tenant, token); each part brings its own
sub-commands from its ``cli.py`` (``register(root)``). What every command shares — the services built once
into ``ctx.obj``, errors turned into messages and exit codes — is in ``cli_kit``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tenantry.cli_kit import Cli, JsonOpt, TenantOpt, console, err, fail, print_rows, root_app, sub_app
from tenantry.core.private import restrict_process_umask
from tenantry.domains import registry
from tenantry.serving import (
    MAX_WORKERS,
    WORKER_APP,
    WORKER_HEALTHCHECK_SECONDS,
    freeze_start_heap,
    several_processes_refused,
)

app = root_app("Tenantry: directory, SCIM provisioning, archive and compliance.")
token_app = sub_app("Bearer tokens for the SCIM endpoint, the admin API and the operator.")
tenant_app = sub_app("Tenants.")
db_app = sub_app("Database schema.")
app.add_typer(token_app, name="token")
app.add_typer(tenant_app, name="tenant")
app.add_typer(db_app, name="db")


@app.callback()
def _context(ctx: typer.Context, acting_as: Annotated[str | None, typer.Option(
        "--as", help="Act as this administrator (e-mail or id) of the command's tenant: their roles are checked "
                     "and the audit trail names them. Without it you act as the operator.")] = None) -> None:
    # One context a run: its services are built (and the database migrated) only when a command first asks.
    cli = ctx.ensure_object(Cli)
    if acting_as is not None:
        cli.acting_as = acting_as


def _show_first_tokens(issued: dict[str, str]) -> None:
    if issued:
        console.print("[bold]First run: these tokens are shown once. Keep them now.[/bold]")
        for scope, secret in issued.items():
            console.print(f"  {scope} token: {secret}")


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    scheduler: Annotated[bool, typer.Option("--scheduler/--no-scheduler",
                                            help="Run due connectors from this process.")] = True,
    workers: Annotated[int, typer.Option(
        min=1, max=MAX_WORKERS,
        help="Web processes answering requests (PostgreSQL database and search backend only). The scheduler and "
             "the SIP service run once, in the process that starts them.")] = 1,
) -> None:
    """Run the server (SCIM at /scim/v2, admin API at /api/v1) on the configured database."""
    import uvicorn

    from tenantry.app import bootstrap, create_app
    from tenantry.jobs import Scheduler, make_jobs

    cli = Cli.of(ctx)
    settings = cli.settings
    refused = several_processes_refused(settings, workers)
    if refused:   # before the database is touched: nothing is migrated or created for a refused start
        fail(refused)
    services = cli.services   # built and migrated here, once, before any worker starts
    _show_first_tokens(bootstrap(services))
    bind_host = host or settings.host
    bind_port = port or settings.port
    console.print(f"Tenantry on http://{bind_host}:{bind_port}  (SCIM: /scim/v2, database: "
                  f"{services.db.engine.url.render_as_string(hide_password=True)})")
    background = Scheduler(services, make_jobs(services), settings.scheduler_interval) if scheduler else None
    if background:
        background.start()
    if settings.voice_sip_enabled:
        from tenantry.voice.live import serve_in_thread

        voice_tenant = settings.voice_sip_tenant or settings.default_tenant
        serve_in_thread(services.voice, voice_tenant, host=settings.voice_sip_host, port=settings.voice_sip_port,
                        every=settings.voice_snapshot_seconds)
        console.print(f"SIP redirect service for tenant {voice_tenant} on {settings.voice_sip_host}:"
                      f"{settings.voice_sip_port} (UDP and TCP)")
    try:
        if workers > 1:
            # Each worker builds its own services (serving.worker_app); this process keeps the socket, restarts a
            # worker that dies, and runs the scheduler and the SIP service above once for all of them.
            console.print(f"{workers} web worker processes")
            uvicorn.run(WORKER_APP, factory=True, workers=workers, host=bind_host, port=bind_port,
                        log_level="warning", timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS)
        else:
            served = create_app(settings, services)
            freeze_start_heap()
            uvicorn.run(served, host=bind_host, port=bind_port, log_level="warning")
    finally:
        if background:
            background.stop()


@app.command("worker")
def worker(ctx: typer.Context,
           concurrency: Annotated[int, typer.Option(help="Jobs run at once by this worker.")] = 1) -> None:
    """Run a Celery worker for Tenantry's jobs (needs TENANTRY_BROKER_URL, e.g. redis://127.0.0.1:6379/0)."""
    from tenantry.app import bootstrap
    from tenantry.jobs import make_celery

    cli = Cli.of(ctx)
    settings = cli.settings
    if not settings.broker_url:
        fail("set TENANTRY_BROKER_URL to the broker (redis://… or amqp://…) first")
    services = cli.services
    # Migrate and repair the index before taking jobs; a worker started first on a fresh database makes the
    # tenant, so it shows the first tokens (no other process will).
    _show_first_tokens(bootstrap(services))
    # The jobs use the services just built (migrated once): every task thread of this worker shares them.
    celery_app = make_celery(settings, lambda _settings: services)
    celery_app.worker_main(["worker", "--loglevel=WARNING", f"--concurrency={concurrency}", "--pool=threads",
                            "-Q", settings.broker_queue, "--without-gossip", "--without-mingle"])


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the migrations (the server also does this on start)."""
    services = Cli.of(ctx).services
    console.print(f"schema up to date: {services.db.engine.url.render_as_string(hide_password=True)}")


@tenant_app.command("create")
def tenant_create(ctx: typer.Context, tenant_id: str, name: Annotated[str | None, typer.Option()] = None) -> None:
    """Create a tenant, with its built-in role groups and its first administrator (tenantry-admin)."""
    from tenantry.directory.admins import FIRST_ADMIN, ensure_first_admin

    services = Cli.of(ctx).services
    services.directory.create_tenant(tenant_id, name or tenant_id)
    ensure_first_admin(services.scim, services.directory, tenant_id)
    console.print(f"tenant {tenant_id} created; SCIM at /tenants/{tenant_id}/scim/v2; its first administrator is "
                  f"{FIRST_ADMIN} (tenantry token create --tenant {tenant_id} --scope admin --for {FIRST_ADMIN})")


@tenant_app.command("list")
def tenant_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    print_rows(Cli.of(ctx).services.directory.list_tenants(), ["id", "name", "created_at"], as_json)


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    tenant: TenantOpt = None,
    scope: Annotated[str, typer.Option(help="scim (a tenant's SCIM endpoint), admin (a tenant's admin API) or "
                                           "operator (lists and creates tenants; installation-wide)")] = "scim",
    name: Annotated[str, typer.Option(help="A label to recognise it by.")] = "default",
    for_user: Annotated[str | None, typer.Option(
        "--for", help="The administrator (e-mail, userName or id) an admin token is issued to; it carries their "
                      "roles.")] = None,
) -> None:
    """Issue a token; the secret is printed once and stored only as a hash."""
    cli = Cli.of(ctx)
    if scope == "operator" and tenant not in (None, cli.settings.default_tenant):
        fail("an operator token is for the installation, not a tenant: leave out --tenant")
    if (scope == "admin") != (for_user is not None):
        fail("an admin token is issued to an administrator: --scope admin --for <user> (and --for only with it)")
    chosen = cli.tenant(tenant)
    owner = cli.user_id(chosen, for_user) if for_user is not None else None
    issued = cli.services.directory.issue_token(chosen, scope, name, user_id=owner)
    err.print(f"token {issued.id} ({issued.scope}, tenant {issued.tenant_id}); the secret follows, shown once:")
    print(issued.secret)


@token_app.command("rotate")
def token_rotate(ctx: typer.Context, token_id: str) -> None:
    """Revoke a token and issue its successor (same tenant, scope and name)."""
    issued = Cli.of(ctx).services.directory.rotate_token(token_id)
    err.print(f"token {token_id} revoked; new token {issued.id}; the secret follows, shown once:")
    print(issued.secret)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: str) -> None:
    Cli.of(ctx).services.directory.revoke_token(token_id)
    console.print(f"token {token_id} revoked")


@token_app.command("list")
def token_list(ctx: typer.Context, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    rows = [t.__dict__ for t in Cli.of(ctx).services.directory.list_tokens(tenant)]
    print_rows(rows, ["id", "tenant_id", "scope", "name", "user_id", "created_at", "revoked_at"], as_json)


# The parts, each adding its command groups (and top-level commands such as `search`) to the root's.
for add_commands in registry().cli:   # each part's commands, as the part registers them (tenantry.domains)
    add_commands(app)


def main() -> None:
    # Before anything is created: every file this process (or SQLite, tantivy) makes is owner-only.
    restrict_process_umask()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
