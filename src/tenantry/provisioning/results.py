"""What provisioning hands across its boundary (its API, its CLI, the job engine): the states it keeps as
StrEnums and its typed results (``core.results``).

The enums' values are what the columns hold and what the wire shows; the dataclasses' fields, in order, are the
JSON the admin API has always answered. Timestamps cross as ISO 8601 strings, as on the wire.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tenantry.core.results import plain

# -- states and kinds ----------------------------------------------------------------------------------------


class ScopeMode(StrEnum):
    """Who an app provisions (``provisioning_apps.scope``)."""

    ASSIGNED = "assigned"   # the users and groups assigned to it
    ALL = "all"             # every user of the directory


class AppHealth(StrEnum):
    """How an app's last cycle left it (``provisioning_apps.health``); ``start`` makes it healthy again."""

    HEALTHY = "healthy"
    QUARANTINED = "quarantined"   # too many objects failed: retried at growing intervals, then switched off
    THRESHOLD = "threshold"       # the accidental-deletion threshold stopped the last cycle
    FAILED = "failed"             # an error of ours or of the database, not of the app


class CycleKind(StrEnum):
    INITIAL = "initial"           # no watermark: every object in scope is matched
    INCREMENTAL = "incremental"
    ON_DEMAND = "on_demand"       # one user, now


class CycleTrigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"


class CycleStatus(StrEnum):
    """How a cycle ended (kept in ``provisioning_cycles.status``; ``running`` until it does)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    COMPLETED_WITH_FAILURES = "completed_with_failures"   # failed objects are retried next cycle
    QUARANTINED = "quarantined"
    THRESHOLD_EXCEEDED = "threshold_exceeded"              # the deletion threshold stopped it before any request
    FAILED = "failed"
    INTERRUPTED = "interrupted"                            # its process stopped; found at the next cycle's start


class ObjectStatus(StrEnum):
    """What the app holds of one of our objects (``provisioned_objects.status``)."""

    ACTIVE = "active"         # provisioned
    DISABLED = "disabled"     # sent active=false (left scope); deleted when its time comes
    EXCLUDED = "excluded"     # out of the scoping filters
    SKIPPED = "skipped"       # assigned but not entitled (Default Access)
    PENDING = "pending"       # never created: the row keeps the error, retried next cycle


class Result(StrEnum):
    """How one object fared in a cycle (``provisioning_logs.result``)."""

    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"


class LogAction(StrEnum):
    """What a log entry says was done (``provisioning_logs.action``): to an object by a cycle, or to the app by
    an administrator."""

    CREATE = "create"
    UPDATE = "update"
    CREATE_UPDATE = "create/update"   # a create-or-update that failed before it knew which
    DISABLE = "disable"
    DELETE = "delete"
    MEMBERS = "members"
    NONE = "none"                     # nothing sent: unchanged, excluded, skipped, or the cycle's stop entry
    NOTIFY = "notify"
    # an administrator's change
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    ROLE_ADD = "role_add"
    ROLE_UPDATE = "role_update"
    ROLE_DELETE = "role_delete"
    UPDATE_APP = "update_app"
    CONFIGURE = "configure"
    START = "start"
    STOP = "stop"
    RESTART = "restart"


class StepName(StrEnum):
    """The steps of a log entry (what provision on demand shows, in this order for a user)."""

    IMPORT = "import"     # read from the directory
    SCOPE = "scope"
    ROLES = "roles"       # which app role SingleAppRoleAssignment sends
    MATCH = "match"
    ACTION = "action"
    NOTIFY = "notify"
    ADMIN = "admin"       # an administrator's change to the app


class StepResult(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"
    WARNING = "warning"   # went on another way (the app's object was gone: matched again)


# -- results ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionResult:
    """Test Connection's answer (``POST …/test-connection``)."""

    ok: bool
    message: str
    status: int | None = None     # the app's HTTP status, when it answered


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """Test Connection as the answer to creating the app says it."""

    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class AppInfo:
    """An app as the admin API shows it (the token never: it is write-only)."""

    id: str
    name: str
    tenant_url: str               # credentials in the URL redacted
    enabled: bool
    scope: ScopeMode
    notification_email: str | None
    skip_default_access: bool
    health: AppHealth
    health_reason: str | None
    watermark: str | None
    next_run_at: str | None
    quarantined_at: str | None


def _app_fields(info: AppInfo) -> dict[str, Any]:  # dict: keyword arguments of a subclass's constructor
    return {f.name: getattr(info, f.name) for f in dataclasses.fields(AppInfo)}


@dataclass(frozen=True, slots=True)
class CreatedApp(AppInfo):
    """A new app, and what Test Connection said of it."""

    test_connection: ConnectionCheck

    @classmethod
    def of(cls, info: AppInfo, check: ConnectionResult) -> CreatedApp:
        return cls(**_app_fields(info), test_connection=ConnectionCheck(check.ok, check.message))


@dataclass(frozen=True, slots=True)
class CycleInfo:
    """A cycle as the app's status lists it."""

    id: str
    kind: CycleKind
    trigger: CycleTrigger
    status: CycleStatus
    started_at: str
    finished_at: str | None
    total: int
    done: int
    stats: dict[str, int]         # counts by outcome (users_created, requests_patch, …): keys as they happened
    reason: str | None


@dataclass(frozen=True, slots=True)
class AppStatus(AppInfo):
    """An app, what it holds and its last cycles (``GET …/{app}``, ``provisioning status``)."""

    running: bool
    users: dict[str, int]         # the users the app holds by ObjectStatus value; states none is in are left out
    groups: int
    objects_failing: int
    cycles: list[CycleInfo]

    @classmethod
    def of(cls, info: AppInfo, *, running: bool, users: dict[str, int], groups: int, objects_failing: int,
           cycles: list[CycleInfo]) -> AppStatus:
        return cls(**_app_fields(info), running=running, users=users, groups=groups,
                   objects_failing=objects_failing, cycles=cycles)


@dataclass(frozen=True, slots=True)
class RoleInfo:
    """One of an app's roles, with how many assignments hold it."""

    id: str
    display_name: str
    value: str | None
    description: str | None
    allowed_member_types: list[str]   # "User", "Group"
    enabled: bool
    built_in: bool
    assignments: int


@dataclass(frozen=True, slots=True)
class ScopeSummary:
    """Who an app provisions, and who is skipped and why (``GET …/scope``)."""

    in_scope: list[str]               # user ids
    skipped: dict[str, str]           # user id → why not
    groups_skipped: dict[str, str]    # assigned group id → why not


@dataclass(frozen=True, slots=True)
class ScopeDecision:
    """``ProvisioningService.scope``: the summary, and the roles each user holds for the cycle's mappings."""

    in_scope: list[str]                   # user ids
    skipped: dict[str, str]               # user id → why not (logged, never silent)
    groups_skipped: dict[str, str] = field(default_factory=dict)   # assigned group id → why not
    # user id → the user's app roles (directly or through a group)
    roles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # dict: appRoleAssignments as mappings read

    def summary(self) -> ScopeSummary:
        return ScopeSummary(self.in_scope, self.skipped, self.groups_skipped)


@dataclass(frozen=True, slots=True)
class LogStep:
    """One step of a log entry. ``actor``: the named administrator of an admin step (``None`` otherwise)."""

    step: StepName
    result: StepResult
    detail: str
    actor: str | None = None

    def stored(self) -> dict[str, str]:
        """As ``provisioning_logs.steps`` keeps it: ``actor`` only when there is one."""
        out = {"step": self.step.value, "result": self.result.value, "detail": self.detail}
        if self.actor is not None:
            out["actor"] = self.actor
        return out

    @classmethod
    def load(cls, stored: dict[str, str]) -> LogStep:
        return cls(StepName(stored["step"]), StepResult(stored["result"]), stored["detail"], stored.get("actor"))


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of an app's provisioning log (``GET …/logs``), newest first."""

    id: int
    cycle_id: str | None
    at: str
    object_type: str                  # User | Group | App (an administrator's change, a notification)
    source_id: str | None
    display: str | None
    target_id: str | None
    action: LogAction
    result: Result
    reason: str | None
    steps: list[LogStep]


@dataclass(frozen=True, slots=True)
class OnDemandEntry:
    """A log entry as a cycle wrote it (no id yet): what provision on demand returns of its user."""

    app_id: str
    cycle_id: str | None
    at: str
    object_type: str
    source_id: str | None
    display: str | None
    target_id: str | None
    action: LogAction
    result: Result
    reason: str | None
    steps: list[LogStep]


@dataclass(frozen=True, slots=True)
class CycleReport:
    """A cycle just run (``run_cycle``; on demand, with its user's log entries)."""

    id: str
    kind: CycleKind
    status: CycleStatus
    total: int = 0
    done: int = 0
    stats: dict[str, int] = field(default_factory=dict)   # as CycleInfo.stats
    reason: str | None = None
    logs: list[OnDemandEntry] = field(default_factory=list)   # on demand: the object's log entries

    def as_dict(self) -> dict[str, Any]:  # dict: a job's result, JSON for the job engine (core.registry.Task)
        """The report without its log entries, JSON-ready."""
        out: dict[str, Any] = plain(self)
        del out["logs"]
        return out


@dataclass(frozen=True, slots=True)
class CycleStarted:
    """``POST …/run``: the cycle runs in the background."""

    status: str       # "started"
    app: str
