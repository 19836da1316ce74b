"""Provisioning apps: create (token sealed), Test Connection as Entra sends it, assignments and who is in scope,
configuration, cycles (with their lease, health, quarantine and notifications), status and logs."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import FOR_WRITE, Database, add_named
from tenantry.core.egress import EgressPolicy, EgressRefused, check_url, origin, redact_url
from tenantry.core.errors import Conflict, Forbidden, Invalid, NotFound
from tenantry.core.schedule import claim_due
from tenantry.core.secrets import SecretBox
from tenantry.directory.reads import DirectoryReads
from tenantry.directory.service import DirectoryService
from tenantry.provisioning.client import ScimTarget, describe, unreachable
from tenantry.provisioning.config import AppConfig, load_config, merge_config
from tenantry.provisioning.engine import Cycle, CycleSpec
from tenantry.provisioning.mappings import matching_order
from tenantry.provisioning.models import (
    AppRole,
    Assignment,
    ProvisionedMember,
    ProvisionedObject,
    ProvisioningApp,
    ProvisioningCycle,
    ProvisioningLog,
)
from tenantry.provisioning.notify import Mailer
from tenantry.provisioning.planner import Scope
from tenantry.provisioning.recorder import CYCLE_LEASE, Progress
from tenantry.provisioning.results import (
    AppHealth,
    AppInfo,
    AppStatus,
    ConnectionResult,
    CycleInfo,
    CycleKind,
    CycleReport,
    CycleStatus,
    CycleTrigger,
    LogAction,
    LogEntry,
    LogStep,
    Result,
    RoleInfo,
    ScopeDecision,
    ScopeMode,
    StepName,
    StepResult,
)
from tenantry.provisioning.roles import (
    BUILT_IN,
    DEFAULT_ACCESS_ID,
    MAX_ROLES,
    MEMBER_TYPES,
    NOT_ENTITLED,
    Role,
    check_unique,
    checked,
    grants,
    member_types,
    resolve,
    unknown,
)

log = logging.getLogger(__name__)
SCHEDULE_LEASE = timedelta(hours=1)

# Seed 003's "administrator roles" that may configure provisioning: Entra's Application Administrator (and
# Global Administrator, whose counterpart here is Organization Management: the whole tenant).
PROVISIONING_ROLE = "Application Administrator"
CONFIGURE_ROLES = (PROVISIONING_ROLE, "Organization Management")


class ProvisioningService:
    def __init__(self, db: Database, secrets: SecretBox, directory: DirectoryService, *,
                 mailer: Mailer | None = None, log_days: int = 30,
                 transport: httpx.BaseTransport | None = None, egress: EgressPolicy | None = None) -> None:
        self.db = db
        self.secrets = secrets
        self.directory = directory
        self.reads = DirectoryReads(directory.db)   # the directory's bulk reads, for the cycles
        self.mailer = mailer
        self.log_days = log_days
        self.transport = transport
        self.egress = egress or EgressPolicy()

    def authorise(self, tenant: str, actor: str | None) -> str | None:
        """The acting administrator (a directory user id) may configure provisioning: it holds Application
        Administrator or Organization Management. Returns its userName for the app's change log.

        ``None`` is a caller with no named person: an admin-token request (tokens carry no principal until
        issue #12) or the operator's CLI without ``--as``; it is not checked here (docs/provisioning.md)."""
        if actor is None:
            return None
        found = self.directory.users_by_id(tenant, [actor])
        if not found:
            raise Forbidden(f"configuring provisioning needs the {PROVISIONING_ROLE!r} role; there is no user "
                            f"{actor!r} in this tenant")
        if not self.directory.roles_of(tenant, actor) & set(CONFIGURE_ROLES):
            name = found[0].user_name
            raise Forbidden(f"configuring provisioning needs the {PROVISIONING_ROLE!r} role, which {name} lacks; "
                            f"grant it: tenantry directory role-group-member 'Application Management' {actor}")
        return found[0].user_name

    def create_app(self, tenant: str, *, name: str, tenant_url: str, token: str, notification_email: str | None = None,
                   scope: str = ScopeMode.ASSIGNED, skip_default_access: bool = True,
                   actor: str | None = None) -> AppInfo:
        self.authorise(tenant, actor)
        mode = _scope_mode(scope)
        tenant_url = check_url(tenant_url, "tenant URL", self.egress)
        if not token:
            raise Invalid("a secret token is required")
        app = ProvisioningApp(id=str(uuid.uuid4()), tenant_id=tenant, name=name, tenant_url=tenant_url,
                              token_secret=self.secrets.seal(token), notification_email=notification_email,
                              enabled=False, scope=mode, skip_default_access=skip_default_access,
                              created_at=utcnow(), config=AppConfig().model_dump_json(), config_version=1,
                              health=AppHealth.HEALTHY, quarantine_level=0)
        with self.db.session() as session:
            add_named(session, app, ProvisioningApp.name, ProvisioningApp.tenant_id, "provisioning app")
            return _app_info(app)

    @staticmethod
    def _locked_app(session: Session, tenant: str, app_id: str) -> ProvisioningApp:
        """The app row, locked until the transaction ends (open the session under ``db.writing()``): a change
        computed from what is read here cannot undo another writer's change made meanwhile."""
        app = session.get(ProvisioningApp, app_id, with_for_update=FOR_WRITE)
        if app is None or app.tenant_id != tenant:
            raise NotFound(f"no provisioning app {app_id}")
        return app

    def _app(self, tenant: str, app_id: str) -> ProvisioningApp:
        with self.db.session() as session:
            app = session.get(ProvisioningApp, app_id)
            if app is None or app.tenant_id != tenant:
                raise NotFound(f"no provisioning app {app_id}")
            session.expunge(app)
            return app

    def test_connection(self, tenant: str, app_id: str) -> ConnectionResult:
        """Entra's Test Connection: a filter on the matching attribute with a random value → 200, empty list.

        Connecting goes through the egress policy; every failure to connect (refused, timed out, reset, TLS,
        not HTTP) is one message, so Test Connection cannot tell open ports from closed ones. What a reached
        server answers (its HTTP status, a SCIM error's detail) is said as it is."""
        app = self._app(tenant, app_id)
        matching = matching_order(load_config(app.config).users())[0].target
        probe = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {self.secrets.open(app.token_secret)}",
                   "Accept": "application/scim+json"}
        shown = redact_url(app.tenant_url)
        try:
            with httpx.Client(transport=self.transport or self.egress.transport(), timeout=15) as client:
                r = client.get(f"{app.tenant_url}/Users", params={"filter": f'{matching} eq "{probe}"'},
                               headers=headers)
        except EgressRefused as exc:
            log.warning("test connection of provisioning app %s refused: %s", app.id, exc.message)
            return ConnectionResult(False, exc.message)
        except httpx.HTTPError as exc:
            log.warning("test connection of provisioning app %s: %s not reached: %s: %s", app.id, shown,
                        type(exc).__name__, exc)
            return ConnectionResult(False, unreachable(app.tenant_url))
        if r.status_code in (401, 403):
            return ConnectionResult(False, f"the app refused the secret token (HTTP {r.status_code})", r.status_code)
        if r.status_code == 404:
            return ConnectionResult(False, f"no SCIM endpoint at {shown}/Users (HTTP 404): check the URL", 404)
        if r.status_code != 200:
            return ConnectionResult(False, f"the app answered {describe(r)}", r.status_code)
        try:
            body = r.json()
        except ValueError:
            return ConnectionResult(False, "the app's answer is not JSON", 200)
        if body.get("totalResults") != 0:
            return ConnectionResult(False, f"the app found a user for a random {matching}: its filtering is broken "
                                           "(Tenantry would update the wrong user)", 200)
        return ConnectionResult(True, "connected: the app answered the test query as expected", 200)

    def assign(self, tenant: str, app_id: str, principal_type: str, principal_id: str, role: str = "User", *,
               actor: str | None = None) -> None:
        """Assign a user or group with one of the app's roles (``role``: its id, display name or value); a
        principal already assigned gets the new role (one assignment per principal)."""
        by = self.authorise(tenant, actor)
        if principal_type not in ("User", "Group"):
            raise Invalid("assign a User or a Group")
        self._app(tenant, app_id)
        # Only this tenant's users and groups: an id of another tenant is refused like one that exists nowhere.
        if not self.directory.principals_exist(tenant, principal_type, [principal_id]):
            raise NotFound(f"no {principal_type.lower()} {principal_id!r} in this tenant")
        with self.db.writing(), self.db.session() as session:
            # Under the app's lock: two assignments of one principal must not both find it absent, and the role
            # cannot be deleted or narrowed between this check and the write.
            self._locked_app(session, tenant, app_id)
            roles = self._roles(session, app_id)
            chosen = resolve(roles, role)
            if chosen is None:
                raise unknown(roles, role)
            if not chosen.enabled:
                raise Invalid(f"role {chosen.display_name!r} is disabled: it is not assigned again (enable it, "
                              "or choose another role)")
            if principal_type not in chosen.allowed_member_types:
                raise Invalid(f"role {chosen.display_name!r} can be assigned to "
                              f"{chosen.allowed_member_types[0].lower()}s only")
            session.execute(delete(Assignment).where(Assignment.app_id == app_id,
                                                     Assignment.principal_type == principal_type,
                                                     Assignment.principal_id == principal_id))
            session.add(Assignment(app_id=app_id, principal_type=principal_type, principal_id=principal_id,
                                   role_id=chosen.id))
            _audit(session, app_id, LogAction.ASSIGN, f"{principal_type} {principal_id} assigned with role "
                                              f"{chosen.display_name!r}", by)

    # -- app roles ---------------------------------------------------------------------------------------

    @staticmethod
    def _roles(session: Session, app_id: str) -> list[Role]:
        rows = session.scalars(select(AppRole).where(AppRole.app_id == app_id)
                               .order_by(AppRole.created_at, AppRole.display_name))
        return [*BUILT_IN, *(_role(r) for r in rows)]

    @staticmethod
    def _role_for_change(roles: list[Role], ref: str) -> Role:
        role = resolve(roles, ref)
        if role is None:
            raise NotFound(f"the app has no role {ref!r}")
        if role.built_in:
            raise Invalid(f"{role.display_name!r} is built in: it cannot be changed or deleted")
        return role

    def list_roles(self, tenant: str, app_id: str) -> list[RoleInfo]:
        """The app's roles (the built-in two first), each with how many assignments hold it."""
        self._app(tenant, app_id)
        with self.db.session() as session:
            roles = self._roles(session, app_id)
            used = self._role_use(session, app_id)
        return [r.info(sum(used.get(r.id, {}).values())) for r in roles]

    @staticmethod
    def _role_use(session: Session, app_id: str) -> dict[str, dict[str, int]]:
        """role id → principal type → assignments."""
        used: dict[str, dict[str, int]] = {}
        for role_id, kind, count in session.execute(
                select(Assignment.role_id, Assignment.principal_type, func.count()).where(
                    Assignment.app_id == app_id).group_by(Assignment.role_id, Assignment.principal_type)):
            used.setdefault(role_id, {})[kind] = int(count)
        return used

    def add_role(self, tenant: str, app_id: str, *, display_name: str, value: str | None = None,
                 description: str | None = None, allowed_member_types: Iterable[str] = MEMBER_TYPES,
                 enabled: bool = True, actor: str | None = None) -> RoleInfo:
        by = self.authorise(tenant, actor)
        name, val, text = checked(display_name, value, description)
        role = Role(str(uuid.uuid4()), name, val, text, member_types(allowed_member_types), enabled)
        with self.db.writing(), self.db.session() as session:
            self._locked_app(session, tenant, app_id)
            roles = self._roles(session, app_id)
            if len(roles) - len(BUILT_IN) >= MAX_ROLES:
                raise Invalid(f"an app has at most {MAX_ROLES} roles besides the built-in ones")
            check_unique(roles, role)
            session.add(AppRole(id=role.id, app_id=app_id, display_name=name, value=val, description=text,
                                allowed_member_types=",".join(role.allowed_member_types), enabled=enabled,
                                created_at=utcnow()))
            _audit(session, app_id, LogAction.ROLE_ADD, f"role {name!r} added", by)
        return role.info(0)

    def update_role(self, tenant: str, app_id: str, ref: str, *, display_name: str | None = None,
                    value: str | None = None, description: str | None = None,
                    allowed_member_types: Iterable[str] | None = None, enabled: bool | None = None,
                    actor: str | None = None) -> RoleInfo:
        """Change a role (``ref``: its id, display name or value). ``None`` leaves a field; an empty value or
        description clears it. Assignments hold the role's id: a rename keeps them, and the next cycle sends
        the new value to the users that hold the role."""
        by = self.authorise(tenant, actor)
        with self.db.writing(), self.db.session() as session:
            self._locked_app(session, tenant, app_id)
            roles = self._roles(session, app_id)
            old = self._role_for_change(roles, ref)
            name, val, text = checked(old.display_name if display_name is None else display_name,
                                      old.value if value is None else value,
                                      old.description if description is None else description)
            types = old.allowed_member_types if allowed_member_types is None else member_types(allowed_member_types)
            new = Role(old.id, name, val, text, types, old.enabled if enabled is None else enabled)
            check_unique(roles, new)
            used = self._role_use(session, app_id).get(old.id, {})
            for kind, count in used.items():
                if kind not in types:
                    raise Invalid(f"role {old.display_name!r} cannot be limited to "
                                  f"{', '.join(t.lower() + 's' for t in types)}: it is assigned to "
                                  f"{kind.lower()}s ({count}); give them another role first")
            changes = {k: v for k, v in (("display_name", name), ("value", val), ("description", text),
                                         ("allowed_member_types", list(types)), ("enabled", new.enabled))
                       if v != (list(getattr(old, k)) if k == "allowed_member_types" else getattr(old, k))}
            if changes:
                session.execute(update(AppRole).where(AppRole.id == old.id).values(
                    display_name=name, value=val, description=text, allowed_member_types=",".join(types),
                    enabled=new.enabled))
                _audit(session, app_id, LogAction.ROLE_UPDATE, f"role {old.display_name!r} changed: "
                       + ", ".join(f"{k}={v!r}" for k, v in changes.items()), by)
        return new.info(sum(used.values()))

    def delete_role(self, tenant: str, app_id: str, ref: str, *, actor: str | None = None) -> None:
        """Delete a role no assignment holds. One in use is refused, naming who holds it: give them another
        role, or disable the role (it stays with them and is not assigned again)."""
        by = self.authorise(tenant, actor)
        with self.db.writing(), self.db.session() as session:
            self._locked_app(session, tenant, app_id)
            role = self._role_for_change(self._roles(session, app_id), ref)
            holders = session.execute(select(Assignment.principal_type, Assignment.principal_id).where(
                Assignment.app_id == app_id, Assignment.role_id == role.id)
                .order_by(Assignment.principal_type, Assignment.principal_id).limit(6)).all()
            if holders:
                count = session.scalar(select(func.count()).select_from(Assignment).where(
                    Assignment.app_id == app_id, Assignment.role_id == role.id)) or 0
                shown = ", ".join(f"{kind} {pid}" for kind, pid in holders[:5]) + (", …" if count > 5 else "")
                raise Conflict(f"role {role.display_name!r} is held by {count} assignment(s) ({shown}); give "
                               "them another role first, or disable the role instead (it stays with them and is "
                               "not assigned again)")
            session.execute(delete(AppRole).where(AppRole.id == role.id))
            _audit(session, app_id, LogAction.ROLE_DELETE, f"role {role.display_name!r} deleted", by)

    def list_apps(self, tenant: str) -> list[AppInfo]:
        with self.db.session() as session:
            rows = session.scalars(select(ProvisioningApp).where(ProvisioningApp.tenant_id == tenant)
                                   .order_by(ProvisioningApp.name))
            return [_app_info(a) for a in rows]

    def find_app(self, tenant: str, name_or_id: str) -> str:
        with self.db.session() as session:
            found = session.scalar(select(ProvisioningApp.id).where(
                ProvisioningApp.tenant_id == tenant,
                or_(ProvisioningApp.id == name_or_id, ProvisioningApp.name == name_or_id)))
        if found is None:
            raise NotFound(f"no provisioning app {name_or_id!r}")
        return found

    def unassign(self, tenant: str, app_id: str, principal_type: str, principal_id: str, *,
                 actor: str | None = None) -> None:
        by = self.authorise(tenant, actor)
        self._app(tenant, app_id)
        with self.db.session() as session:
            result = session.execute(delete(Assignment).where(Assignment.app_id == app_id,
                                                              Assignment.principal_type == principal_type,
                                                              Assignment.principal_id == principal_id))
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFound(f"no assignment of {principal_type} {principal_id!r} to this app")
            _audit(session, app_id, LogAction.UNASSIGN, f"{principal_type} {principal_id} unassigned", by)

    def update_app(self, tenant: str, app_id: str, *, tenant_url: str | None = None, token: str | None = None,
                   notification_email: str | None = None, scope: str | None = None,
                   skip_default_access: bool | None = None, actor: str | None = None) -> AppInfo:
        """Change the connection (URL, a rotated token) or the scope rules; the next cycle uses them.

        The stored token belongs to the origin (scheme, host, port) it was given for: a URL on another origin
        is refused unless the token comes with it, so a changed URL never receives the old secret. The change
        is made only if the URL is still the one this check read (a concurrent URL change makes it a 409)."""
        by = self.authorise(tenant, actor)
        current = self._app(tenant, app_id)
        values: dict[str, Any] = {}   # column → new value
        if tenant_url is not None:
            tenant_url = check_url(tenant_url, "tenant URL", self.egress)
            if token is None and origin(tenant_url) != origin(current.tenant_url):
                raise Invalid("changing the URL needs the token again: the stored token is only ever sent to "
                              "the host it was given for; send the new URL and the token together")
            values["tenant_url"] = tenant_url
        if token is not None:
            if not token:
                raise Invalid("a secret token is required")
            values["token_secret"] = self.secrets.seal(token)
        if notification_email is not None:
            values["notification_email"] = notification_email or None
        if scope is not None:
            values["scope"] = _scope_mode(scope)
        if skip_default_access is not None:
            values["skip_default_access"] = skip_default_access
        if values:
            with self.db.session() as session:
                changed = session.execute(update(ProvisioningApp).where(
                    ProvisioningApp.id == app_id, ProvisioningApp.tenant_url == current.tenant_url).values(**values))
                if not changed.rowcount:  # type: ignore[attr-defined]
                    raise Conflict("the app's URL was changed meanwhile: read it again and repeat the change")
                shown = ", ".join("token (rotated)" if k == "token_secret" else
                                  f"tenant_url={redact_url(v)!r}" if k == "tenant_url" else f"{k}={v!r}"
                                  for k, v in values.items())
                _audit(session, app_id, LogAction.UPDATE_APP, f"changed: {shown}", by)
        return _app_info(self._app(tenant, app_id))

    def config(self, tenant: str, app_id: str) -> AppConfig:
        return load_config(self._app(tenant, app_id).config)

    def configure(self, tenant: str, app_id: str, changes: dict[str, Any], *,
                  actor: str | None = None) -> AppConfig:
        """Change settings (mappings, filters, actions, thresholds, pace); the next cycle compares every
        object in scope with what the app holds, since what "should be there" changed."""
        by = self.authorise(tenant, actor)
        with self.db.writing(), self.db.session() as session:
            # Read, merged and written under the app's lock: two administrators changing different settings
            # at once both keep their change (each merges into the configuration the other wrote).
            app = self._locked_app(session, tenant, app_id)
            config = merge_config(load_config(app.config), changes)
            app.config = config.model_dump_json()
            app.config_version = app.config_version + 1
            _audit(session, app_id, LogAction.CONFIGURE, "changed: " + ", ".join(sorted(changes)), by)
        return config

    def set_enabled(self, tenant: str, app_id: str, enabled: bool, *, actor: str | None = None) -> AppInfo:
        """Provisioning status On (the first cycle is due now) or Off (no more scheduled cycles)."""
        by = self.authorise(tenant, actor)
        self._app(tenant, app_id)
        values: dict[str, Any] = {"enabled": enabled}
        if enabled:
            values.update(next_run_at=utcnow(), health=AppHealth.HEALTHY, health_reason=None, quarantined_at=None,
                          quarantine_level=0)
        with self.db.session() as session:
            session.execute(update(ProvisioningApp).where(ProvisioningApp.id == app_id).values(**values))
            _audit(session, app_id, LogAction.START if enabled else LogAction.STOP, "provisioning status "
                   + ("On" if enabled else "Off"), by)
        return _app_info(self._app(tenant, app_id))

    def restart(self, tenant: str, app_id: str, *, actor: str | None = None) -> None:
        """Entra's "Restart provisioning": forget what the app holds and the watermark; the next cycle is an
        initial one that matches every object in scope again (nothing is deleted in the app)."""
        by = self.authorise(tenant, actor)
        self._app(tenant, app_id)
        with self.db.writing(), self.db.session() as session:
            session.execute(delete(ProvisionedObject).where(ProvisionedObject.app_id == app_id))
            session.execute(delete(ProvisionedMember).where(ProvisionedMember.app_id == app_id))
            session.execute(update(ProvisioningApp).where(ProvisioningApp.id == app_id).values(
                watermark=None, synced_config_version=None, health=AppHealth.HEALTHY, health_reason=None,
                quarantined_at=None, quarantine_level=0, next_run_at=utcnow()))
            _audit(session, app_id, LogAction.RESTART,
                   "state and watermark cleared: the next cycle is an initial one", by)

    # -- cycles ------------------------------------------------------------------------------------------

    def run_cycle(self, tenant: str, app_id: str, *, trigger: str = CycleTrigger.MANUAL, allow_deletions: bool = False,
                  progress: Progress | None = None, only_user: str | None = None) -> CycleReport:
        """Run one cycle now (initial when the app has no watermark, else incremental). One cycle per app at a
        time: a second one is refused while the first holds the lease."""
        app = self._app(tenant, app_id)
        started = utcnow()
        with self.db.writing(), self.db.session() as session:
            leased = session.execute(update(ProvisioningApp).where(
                ProvisioningApp.id == app_id,
                or_(ProvisioningApp.running_until.is_(None), ProvisioningApp.running_until < started),
            ).values(running_until=started + CYCLE_LEASE))
            if not leased.rowcount:  # type: ignore[attr-defined]
                raise Conflict(f"a cycle of {app.name} is running; try again when it has finished")
        try:
            app = self._app(tenant, app_id)     # as it is now that we hold it (a cycle may just have finished)
            config = load_config(app.config)
            return self._run_leased(tenant, app, config, started, CycleTrigger(trigger), allow_deletions, progress,
                                    only_user)
        finally:
            with self.db.writing(), self.db.session() as session:
                session.execute(update(ProvisioningApp).where(ProvisioningApp.id == app_id)
                                .values(running_until=None))

    def _run_leased(self, tenant: str, app: ProvisioningApp, config: AppConfig, started: datetime,
                    trigger: CycleTrigger, allow_deletions: bool, progress: Progress | None,
                    only_user: str | None) -> CycleReport:
        kind = (CycleKind.ON_DEMAND if only_user else
                CycleKind.INITIAL if app.watermark is None else CycleKind.INCREMENTAL)
        cycle_id = str(uuid.uuid4())
        with self.db.writing(), self.db.session() as session:
            # Holding the lease, any cycle of this app still marked running was cut off (its process died).
            session.execute(update(ProvisioningCycle).where(
                ProvisioningCycle.app_id == app.id, ProvisioningCycle.status == CycleStatus.RUNNING).values(
                status=CycleStatus.INTERRUPTED, finished_at=started,
                reason="the process running it stopped; this cycle's work is done again by the next one"))
            session.add(ProvisioningCycle(id=cycle_id, app_id=app.id, kind=kind, trigger=trigger,
                                          status=CycleStatus.RUNNING, started_at=started, total=0, done=0,
                                          stats="{}"))
            assigned_groups = list(session.scalars(select(Assignment.principal_id).where(
                Assignment.app_id == app.id, Assignment.principal_type == "Group")))
        target: ScimTarget | None = None
        cycle: Cycle | None = None
        try:
            decision = self.scope(tenant, app.id)
            target = ScimTarget(app.tenant_url, self.secrets.open(app.token_secret), rate_limit=config.rate_limit,
                                retries=config.retries, backoff=config.backoff_seconds,
                                max_retry_after=config.max_retry_after, timeout=config.timeout_seconds,
                                concurrency=config.concurrency, transport=self.transport, egress=self.egress)
            spec = CycleSpec(app.id, tenant, cycle_id, kind, started, app.watermark,
                             config_changed=app.synced_config_version != app.config_version,
                             allow_deletions=allow_deletions, only_user=only_user)
            scope = Scope(frozenset(decision.in_scope), decision.skipped, decision.roles,
                          all=app.scope == ScopeMode.ALL,
                          assigned_groups=assigned_groups, groups_skipped=decision.groups_skipped)
            cycle = Cycle(self.db, self.reads, config, target, spec, scope, progress)
            report = cycle.run()
        except Exception as exc:  # noqa: BLE001 - recorded on the cycle, logged, and e-mailed (_finish)
            log.exception("provisioning cycle %s of app %s failed", cycle_id, app.id)
            reason = f"{type(exc).__name__}: {exc}"
            report = (cycle.report(CycleStatus.FAILED, reason, logs=False) if cycle else
                      CycleReport(cycle_id, kind, CycleStatus.FAILED, reason=reason))
        finally:
            if target is not None:
                target.close()
        self._finish(tenant, app, config, report, started)
        return report

    def _finish(self, tenant: str, app: ProvisioningApp, config: AppConfig, report: CycleReport,
                started: datetime) -> None:
        now = utcnow()
        notices: list[tuple[str, str]] = []
        with self.db.writing(), self.db.session() as session:
            # The app as it is now, locked: an administrator may have changed it while the cycle ran (started or
            # stopped it, restarted it). The health bookkeeping builds on that row, not on the one read when the
            # cycle began, so it cannot undo the administrator's change.
            current = session.get(ProvisioningApp, app.id, with_for_update=FOR_WRITE)
            values: dict[str, Any] = {}
            if current is not None and report.kind != CycleKind.ON_DEMAND:
                values, notices = self._health(current, app, config, report, started, now)
                if session.scalar(select(ProvisioningLog.id).where(
                        ProvisioningLog.app_id == app.id, ProvisioningLog.action == LogAction.RESTART,
                        ProvisioningLog.at >= started).limit(1)) is not None:
                    # Restarted while the cycle ran: the administrator asked for an initial cycle, now. Neither
                    # the watermark nor the time of the next cycle is this cycle's to set.
                    for key in ("watermark", "synced_config_version", "next_run_at"):
                        values.pop(key, None)
            session.execute(update(ProvisioningCycle).where(ProvisioningCycle.id == report.id).values(
                status=report.status, finished_at=now, total=report.total, done=report.done,
                stats=json.dumps(report.stats), reason=report.reason))
            if values:
                session.execute(update(ProvisioningApp).where(ProvisioningApp.id == app.id).values(**values))
            session.execute(delete(ProvisioningLog).where(ProvisioningLog.app_id == app.id,
                                                          ProvisioningLog.at < now - timedelta(days=self.log_days)))
        for subject, body in notices:
            self._notify(current or app, report.id, subject, body)

    @staticmethod
    def _health(app: ProvisioningApp, ran: ProvisioningApp, config: AppConfig, report: CycleReport,
                started: datetime, now: datetime) -> tuple[dict[str, Any], list[tuple[str, str]]]:  # dict: columns
        """What a finished cycle changes on ``app`` (the row as it is now; ``ran``: as the cycle read it when it
        began): column → value, and the notices to send."""
        values: dict[str, Any] = {}
        notices: list[tuple[str, str]] = []
        interval = timedelta(minutes=config.interval_minutes)
        if report.status == CycleStatus.QUARANTINED:
            level = (app.quarantine_level or 0) + 1
            since = as_utc(app.quarantined_at) if app.quarantined_at else now
            values.update(health=AppHealth.QUARANTINED, health_reason=report.reason, quarantined_at=since,
                          quarantine_level=level)
            if now - since > timedelta(days=config.quarantine_max_days):
                values.update(enabled=False, next_run_at=None)
                notices.append(("switched off", f"{app.name} has been in quarantine since {since:%Y-%m-%d %H:%M}"
                                f" UTC; provisioning is now switched off. Last reason: {report.reason}"))
            else:
                wait = timedelta(minutes=config.quarantine_retry_minutes * 2 ** (level - 1))
                values["next_run_at"] = now + wait
                if level == 1:
                    notices.append(("in quarantine", f"Provisioning to {app.name} ({redact_url(app.tenant_url)}) is in "
                                    f"quarantine: {report.reason}.\nThe next attempt is at "
                                    f"{now + wait:%Y-%m-%d %H:%M} UTC; attempts continue at growing intervals."))
        elif report.status == CycleStatus.THRESHOLD_EXCEEDED:
            values.update(health=AppHealth.THRESHOLD, health_reason=report.reason, next_run_at=now + interval)
            if app.health != AppHealth.THRESHOLD:
                notices.append(("stopped by the deletion threshold", f"{app.name}: {report.reason}"))
        elif report.status in (CycleStatus.SUCCEEDED, CycleStatus.COMPLETED_WITH_FAILURES):
            if app.health in (AppHealth.QUARANTINED, AppHealth.FAILED):
                subject = "released from quarantine" if app.health == AppHealth.QUARANTINED else "working again"
                notices.append((subject, f"Provisioning to {app.name} works again: the cycle {report.id} "
                                f"ended {report.status}."))
            # synced_config_version: the configuration this cycle ran with (one changed meanwhile is newer).
            values.update(health=AppHealth.HEALTHY, health_reason=None, quarantined_at=None, quarantine_level=0,
                          watermark=started, synced_config_version=ran.config_version,
                          next_run_at=now + interval)
        else:   # failed: an error of ours or of the database, not of the app
            values.update(health=AppHealth.FAILED, health_reason=report.reason, next_run_at=now + interval)
            if app.health != AppHealth.FAILED:
                notices.append(("cycle failed", f"A provisioning cycle of {app.name} failed: {report.reason}. "
                                "It is tried again at the next interval; the server log has the details."))
        return values, notices

    def _notify(self, app: ProvisioningApp, cycle_id: str, subject: str, body: str) -> None:
        """E-mail the app's notification address; the outcome is a log entry either way."""
        if not app.notification_email:
            why: str | None = "no notification e-mail address set for the app"
        elif self.mailer is None:
            why = "no mailer configured"
        else:
            why = self.mailer.send(app.notification_email, f"[Tenantry] Provisioning {app.name}: {subject}", body)
        result = Result.SUCCESS if why is None else Result.FAILURE
        with self.db.writing(), self.db.session() as session:
            session.add(ProvisioningLog(app_id=app.id, cycle_id=cycle_id, at=utcnow(), object_type="App",
                                        source_id=None, display=app.name, target_id=None, action=LogAction.NOTIFY,
                                        result=result,
                                        reason=f"{subject}: " + (f"sent to {app.notification_email}" if why is None
                                                                 else f"not sent: {why}"),
                                        steps=json.dumps([LogStep(StepName.NOTIFY, StepResult(result),
                                                                  body).stored()])))
        if why is not None:
            log.warning("provisioning notification for %s not sent: %s", app.name, why)

    def provision_on_demand(self, tenant: str, app_id: str, user_id: str) -> CycleReport:
        """Entra's "Provision on demand": this one user, now, with every step logged and returned."""
        self._app(tenant, app_id)  # the app first: its objects are looked up by its id below
        if not self.directory.users_by_id(tenant, [user_id]):
            with self.db.session() as session:
                held = session.get(ProvisionedObject, (app_id, "User", user_id))
            if held is None:
                raise NotFound(f"no user {user_id} in the directory, nor provisioned to this app")
        return self.run_cycle(tenant, app_id, only_user=user_id)

    def claim_due(self, now: datetime) -> list[tuple[str, str]]:
        """Enabled apps whose next cycle is due; moved an interval ahead so no second tick hands them out."""
        return claim_due(self.db, ProvisioningApp, ProvisioningApp.id, ProvisioningApp.next_run_at,
                         tenant=ProvisioningApp.tenant_id, where=(ProvisioningApp.enabled.is_(True),), now=now,
                         lease=SCHEDULE_LEASE)

    # -- monitoring --------------------------------------------------------------------------------------

    def status(self, tenant: str, app_id: str, cycles: int = 5) -> AppStatus:
        app = self._app(tenant, app_id)
        with self.db.session() as session:
            recent = session.scalars(select(ProvisioningCycle).where(ProvisioningCycle.app_id == app_id)
                                     .order_by(ProvisioningCycle.started_at.desc()).limit(cycles)).all()
            held = dict(session.execute(select(ProvisionedObject.status, func.count()).where(
                ProvisionedObject.app_id == app_id, ProvisionedObject.object_type == "User")
                .group_by(ProvisionedObject.status)).all())
            groups = session.scalar(select(func.count()).select_from(ProvisionedObject).where(
                ProvisionedObject.app_id == app_id, ProvisionedObject.object_type == "Group",
                ProvisionedObject.target_id.is_not(None))) or 0
            failing = session.scalar(select(func.count()).select_from(ProvisionedObject).where(
                ProvisionedObject.app_id == app_id, ProvisionedObject.error.is_not(None))) or 0
        return AppStatus.of(_app_info(app), running=bool(app.running_until and as_utc(app.running_until) > utcnow()),
                            users={str(k): int(v) for k, v in held.items()}, groups=int(groups),
                            objects_failing=int(failing), cycles=[_cycle_info(c) for c in recent])

    def logs(self, tenant: str, app_id: str, *, source_id: str | None = None, result: str | None = None,
             cycle_id: str | None = None, action: str | None = None, limit: int = 100,
             before: int | None = None) -> list[LogEntry]:
        """The app's log entries, newest first; ``before``: only entries older than that entry id (the next page
        of a listing, by key: a page costs the same however deep it is)."""
        self._app(tenant, app_id)
        if result and result not in set(Result):
            raise Invalid("result is success, failure or skipped")
        stmt = select(ProvisioningLog).where(ProvisioningLog.app_id == app_id)
        if source_id:
            stmt = stmt.where(ProvisioningLog.source_id == source_id)
        if result:
            stmt = stmt.where(ProvisioningLog.result == result)
        if cycle_id:
            stmt = stmt.where(ProvisioningLog.cycle_id == cycle_id)
        if action:
            stmt = stmt.where(ProvisioningLog.action == action)
        if before is not None:
            stmt = stmt.where(ProvisioningLog.id < before)
        with self.db.session() as session:
            rows = session.scalars(stmt.order_by(ProvisioningLog.id.desc()).limit(max(1, min(limit, 10_000))))
            return [_log_entry(r) for r in rows]

    def scope(self, tenant: str, app_id: str) -> ScopeDecision:
        """The users this app provisions: all users, or those assigned directly or through a group they are
        a *direct* member of, with the roles they hold that way. Users whose only role is Default Access are
        skipped (the seed's rule; Entra configurations made after April 2020 no longer skip them:
        ``skip_default_access=False``), and so are groups assigned with Default Access: they are not created."""
        app = self._app(tenant, app_id)
        with self.db.session() as session:
            assignments = session.execute(select(Assignment.principal_type, Assignment.principal_id,
                                                 Assignment.role_id).where(Assignment.app_id == app_id)).all()
            roles = {r.id: r for r in self._roles(session, app_id)}
        held: dict[str, dict[str, bool]] = {}           # user id → role id → assigned directly
        groups_skipped: dict[str, str] = {}
        for kind, principal_id, role_id in assignments:
            if kind == "User":
                held.setdefault(principal_id, {})[role_id] = True
                continue
            if app.scope == ScopeMode.ASSIGNED and app.skip_default_access and role_id == DEFAULT_ACCESS_ID:
                groups_skipped[principal_id] = NOT_ENTITLED
            for member in self.directory.direct_user_members(tenant, principal_id):
                held.setdefault(member, {}).setdefault(role_id, False)
        user_roles = {uid: grants(roles, by_role) for uid, by_role in held.items()}
        if app.scope == ScopeMode.ALL:
            return ScopeDecision(self.directory.user_ids(tenant), {}, {}, user_roles)
        existing = {u.id for u in self.directory.users_by_id(tenant, list(held))}
        skipped: dict[str, str] = {}
        included: list[str] = []
        for user_id, by_role in sorted(held.items()):
            if user_id not in existing:
                skipped[user_id] = "assigned, but deleted from the directory (no such user)"
            elif app.skip_default_access and set(by_role) == {DEFAULT_ACCESS_ID}:
                skipped[user_id] = NOT_ENTITLED
            else:
                included.append(user_id)
        return ScopeDecision(included, skipped, groups_skipped, user_roles)


def _audit(session: Session, app_id: str, action: LogAction, detail: str, by: str | None = None) -> None:
    """An administrator's change to the app, in its log (committed with the change itself). ``by`` is the
    named administrator the role was checked for (``None``: no person was named; see ``authorise``)."""
    step = LogStep(StepName.ADMIN, StepResult.SUCCESS, detail, by)
    session.add(ProvisioningLog(app_id=app_id, cycle_id=None, at=utcnow(), object_type="App", source_id=None,
                                display=None, target_id=None, action=action, result=Result.SUCCESS,
                                reason=detail if by is None else f"{detail} (by {by})",
                                steps=json.dumps([step.stored()])))


def _role(row: AppRole) -> Role:
    return Role(row.id, row.display_name, row.value, row.description,
                tuple(t for t in row.allowed_member_types.split(",") if t), row.enabled)


def _scope_mode(scope: str) -> ScopeMode:
    try:
        return ScopeMode(scope)
    except ValueError:
        raise Invalid("scope is 'assigned' (assigned users and groups) or 'all'") from None


def _iso(when: datetime | None) -> str | None:
    return as_utc(when).isoformat() if when else None


def _app_info(app: ProvisioningApp) -> AppInfo:
    return AppInfo(app.id, app.name, redact_url(app.tenant_url), app.enabled, ScopeMode(app.scope),
                   app.notification_email, app.skip_default_access, AppHealth(app.health or AppHealth.HEALTHY),
                   app.health_reason, _iso(app.watermark), _iso(app.next_run_at), _iso(app.quarantined_at))


def _cycle_info(c: ProvisioningCycle) -> CycleInfo:
    return CycleInfo(c.id, CycleKind(c.kind), CycleTrigger(c.trigger), CycleStatus(c.status),
                     as_utc(c.started_at).isoformat(), _iso(c.finished_at), c.total, c.done,
                     json.loads(c.stats or "{}"), c.reason)


def _log_entry(row: ProvisioningLog) -> LogEntry:
    return LogEntry(row.id, row.cycle_id, as_utc(row.at).isoformat(), row.object_type, row.source_id, row.display,
                    row.target_id, LogAction(row.action), Result(row.result), row.reason,
                    [LogStep.load(step) for step in json.loads(row.steps or "[]")])
