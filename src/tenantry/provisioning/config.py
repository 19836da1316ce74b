"""An app's provisioning configuration: mappings, scoping filters, actions, thresholds and pace.

Stored as JSON on the app and validated here (pydantic), so a bad mapping expression, regular expression or
number is refused when it is saved, not discovered in the middle of a cycle. Defaults are Entra's where
Entra has one (40-minute cycles, deletion threshold 500, all four actions on); the quarantine thresholds are
Entra's shape scaled into numbers an administrator can reason about and tests can shrink.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tenantry.core.errors import Invalid
from tenantry.provisioning.mappings import (
    APP_ROLE_ASSIGNMENTS,
    DEFAULT_USER_MAPPINGS,
    GROUPTALK_GROUP,
    ApplyWhen,
    AttributeMapping,
    MappingType,
    matching_order,
)
from tenantry.provisioning.paths import build_resource, read_path
from tenantry.provisioning.scoping import Clause, Operator, ScopingFilter

_SIMPLE = re.compile(r"^[a-z$][\w$-]*$")


class MappingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str
    type: MappingType = MappingType.DIRECT
    source: str = ""
    apply: ApplyWhen = ApplyWhen.ALWAYS
    default_if_null: str | None = None
    matching_precedence: int | None = Field(default=None, ge=1)

    def build(self) -> AttributeMapping:
        return AttributeMapping(self.target, self.type, self.source, self.apply, self.default_if_null,
                                self.matching_precedence)

    @classmethod
    def of(cls, m: AttributeMapping) -> MappingIn:
        return cls(target=m.target, type=m.type, source=m.source, apply=m.apply, default_if_null=m.default_if_null,
                   matching_precedence=m.matching_precedence)


class ClauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attribute: str
    operator: str
    value: str | None = None

    def build(self) -> Clause:
        return Clause(self.attribute, Operator.parse(self.operator), self.value)


class Actions(BaseModel):
    """Entra's "Target Object Actions": each kind of change can be switched off."""

    model_config = ConfigDict(extra="forbid")

    create: bool = True
    update: bool = True
    disable: bool = True
    delete: bool = True


# Seed 003's GroupTalk group table: displayName (matching), members (sent by the membership pass, not a
# mapping), externalId and the vendor extension's description.
DEFAULT_GROUP_MAPPINGS: tuple[AttributeMapping, ...] = (
    AttributeMapping("displayName", MappingType.DIRECT, "displayName", matching_precedence=1),
    AttributeMapping("externalId", MappingType.DIRECT, "id"),
    AttributeMapping(f"{GROUPTALK_GROUP}:description", MappingType.DIRECT, f"{GROUPTALK_GROUP}:description"),
)


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_mappings: list[MappingIn] = Field(default_factory=lambda: [MappingIn.of(m) for m in DEFAULT_USER_MAPPINGS])
    group_mappings: list[MappingIn] = Field(
        default_factory=lambda: [MappingIn.of(m) for m in DEFAULT_GROUP_MAPPINGS])
    # Each filter is a list of clauses (ANDed); the filters are ORed; none means every assigned user.
    scoping_filters: list[list[ClauseIn]] = Field(default_factory=list)
    # The same for groups (Entra offers scoping filters on both object types), on the group's attributes.
    group_scoping_filters: list[list[ClauseIn]] = Field(default_factory=list)
    provision_groups: bool = True
    actions: Actions = Field(default_factory=Actions)
    interval_minutes: float = Field(default=40, gt=0)
    deletion_threshold: int | None = Field(default=500, ge=0,
                                           description="Stop a cycle that would disable/delete more; None: no limit")
    delete_after_days: float | None = Field(default=30, ge=0,
                                            description="Delete a user this long after it was disabled; None: never")
    rate_limit: float = Field(default=0, ge=0, description="Requests per second to the app; 0: no limit")
    concurrency: int = Field(default=4, ge=1, le=64)
    member_batch: int = Field(default=100, ge=1, le=1000)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_seconds: float = Field(default=1.0, ge=0)
    max_retry_after: float = Field(default=300, ge=0, description="Longest Retry-After honoured, in seconds")
    timeout_seconds: float = Field(default=30, gt=0)
    quarantine_min_attempts: int = Field(default=20, ge=1)
    quarantine_failure_ratio: float = Field(default=0.4, gt=0, le=1)
    quarantine_retry_minutes: float = Field(default=360, gt=0, description="First retry; doubles each time")
    quarantine_max_days: float = Field(default=28, gt=0, description="Then the app is switched off")

    @field_validator("user_mappings", "group_mappings")
    @classmethod
    def _mappings_valid(cls, value: list[MappingIn]) -> list[MappingIn]:
        built = [m.build() for m in value]   # compiles expressions: a bad one is refused here
        for m in built:                        # paths the cycle could not read or write are refused here too
            build_resource({m.target: "x"})
            if m.type is MappingType.DIRECT:
                read_path({}, m.source)
                if m.source.strip().lower() == APP_ROLE_ASSIGNMENTS.lower():
                    # As in Entra: the roles are a list of assignments, not a value the app understands.
                    raise ValueError(f"{APP_ROLE_ASSIGNMENTS} is mapped through an expression: "
                                     f"SingleAppRoleAssignment([{APP_ROLE_ASSIGNMENTS}]) (one role) or "
                                     f"AppRoleAssignmentsComplex([{APP_ROLE_ASSIGNMENTS}]) (all roles)")
        matching_order(built)
        targets = [m.target.lower() for m in built]
        if len(set(targets)) != len(targets):
            raise ValueError("two mappings write the same target attribute")
        # A whole multi-valued attribute ("roles") and an entry of it ('roles[primary eq "True"].value') would
        # each overwrite what the other sent.
        whole = {t for t in targets if _SIMPLE.match(t)}
        for t in targets:
            if "[" in t and t.split("[", 1)[0] in whole:
                raise ValueError(f"two mappings write the same target attribute ({t.split('[', 1)[0]} and {t})")
        return value

    @field_validator("scoping_filters", "group_scoping_filters")
    @classmethod
    def _filters_valid(cls, value: list[list[ClauseIn]]) -> list[list[ClauseIn]]:
        for clauses in value:
            if not clauses:
                raise ValueError("a scoping filter needs at least one clause")
            for c in clauses:
                c.build()
        return value

    def users(self) -> list[AttributeMapping]:
        return [m.build() for m in self.user_mappings]

    def groups(self) -> list[AttributeMapping]:
        return [m.build() for m in self.group_mappings]

    def filters(self) -> list[ScopingFilter]:
        return [ScopingFilter(tuple(c.build() for c in clauses)) for clauses in self.scoping_filters]

    def group_filters(self) -> list[ScopingFilter]:
        return [ScopingFilter(tuple(c.build() for c in clauses)) for clauses in self.group_scoping_filters]


def load_config(text: str | None) -> AppConfig:
    return AppConfig.model_validate_json(text or "{}")


def merge_config(current: AppConfig, changes: dict[str, Any]) -> AppConfig:
    """``current`` with ``changes`` applied (top-level keys; ``actions`` merged key by key)."""
    data = current.model_dump(mode="json")
    for key, value in changes.items():
        if key == "actions" and isinstance(value, dict):
            data["actions"].update(value)
        else:
            data[key] = value
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        raise Invalid(_explain(exc)) from exc
    except Invalid:
        raise


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "invalid provisioning configuration: " + "; ".join(parts)
