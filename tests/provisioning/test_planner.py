"""Planning a cycle without HTTP or a database: a snapshot of the directory and the app's state in, work out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tenantry.directory.reads import StoredResource
from tenantry.provisioning.config import AppConfig
from tenantry.provisioning.planner import (
    GroupSnapshot,
    MemberSnapshot,
    Planner,
    Scope,
    State,
    UserSnapshot,
    Work,
    member_batches,
)
from tenantry.provisioning.roles import fingerprint

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
NOT_ENTITLED = "assigned with Default Access only"
SALES_ONLY = [[{"attribute": "title", "operator": "EQUALS", "value": "Sales"}]]


def user(uid: str, version: int = 1, **values: Any) -> StoredResource:
    return StoredResource(uid, {"id": uid, "userName": f"{uid}@contoso.com", "active": True, **values}, version)


def group(gid: str, version: int = 1, **values: Any) -> StoredResource:
    return StoredResource(gid, {"id": gid, "displayName": f"Team {gid}", **values}, version)


def held(target_id: str | None = "t-1", status: str = "active", *, sent: Mapping[str, Any] | None = None,
         version: int | None = 1, error: str | None = None, disabled_at: datetime | None = None,
         roles: str | None = None) -> State:
    return State(target_id, status, json.dumps(sent or {}), error, disabled_at, version, roles)


def planner(in_scope: Iterable[str] = (), *, full: bool = True, only_user: str | None = None, **config: Any,
            ) -> Planner:
    scope_keys = {"skipped", "roles", "all", "assigned_groups", "groups_skipped"}
    scope = Scope(frozenset(in_scope), **{k: config.pop(k) for k in list(config) if k in scope_keys})
    return Planner(AppConfig(**config), scope, NOW, full=full, only_user=only_user)


def kinds(work: Iterable[Work]) -> dict[str, str]:
    return {w.source_id: w.kind for w in work}


class TestUsers:
    def test_a_new_user_in_scope_is_upserted_with_its_mapped_values(self) -> None:
        work = planner({"u1"}).plan_users(UserSnapshot({}, [user("u1", name={"givenName": "Kim"})]))
        [w] = work
        assert (w.kind, w.display, w.version, w.state) == ("upsert", "u1@contoso.com", 1, None)
        assert w.create is not None and w.create["userName"] == "u1@contoso.com"
        assert w.create["name.givenName"] == "Kim" and w.create["externalId"] == "u1"
        assert [s.step for s in w.steps] == ["import", "scope"]

    def test_a_user_the_app_holds_is_compared_with_what_was_sent(self) -> None:
        old = held("t-9", sent={"userName": "u1@contoso.com"})
        [w] = planner({"u1"}).plan_users(UserSnapshot({"u1": old}, [user("u1", version=2)]))
        assert (w.kind, w.state, w.version) == ("upsert", old, 2)   # the sender diffs w.update against old.sent

    def test_an_unassigned_user_the_app_holds_active_is_disabled(self) -> None:
        state = {"u1": held(sent={"userName": "kim@contoso.com"})}
        [w] = planner().plan_users(UserSnapshot(state, [], present=frozenset({"u1"})))
        assert (w.kind, w.display) == ("disable", "kim@contoso.com")
        assert w.reason == "left scope: no longer assigned to the app"

    def test_a_user_deleted_from_the_directory_is_disabled_and_says_so(self) -> None:
        [w] = planner().plan_users(UserSnapshot({"u1": held()}, []))
        assert (w.kind, w.reason) == ("disable", "left scope: deleted from the directory")

    def test_a_user_never_created_in_the_app_is_forgotten_when_it_leaves(self) -> None:
        state = {"u1": held(None, "excluded"), "u2": held(None, "pending", error="boom")}
        assert kinds(planner().plan_users(UserSnapshot(state, []))) == {"u1": "forget", "u2": "forget"}

    def test_a_user_disabled_long_enough_and_still_out_of_scope_is_deleted(self) -> None:
        long_ago, lately = NOW - timedelta(days=31), NOW - timedelta(days=29)
        state = {"old": held("t-1", "disabled", disabled_at=long_ago),
                 "new": held("t-2", "disabled", disabled_at=lately)}
        [w] = planner(delete_after_days=30).plan_users(UserSnapshot(state, []))
        assert (w.source_id, w.kind, w.reason) == ("old", "delete", "disabled for 30 days and still out of scope")

    def test_never_deleting_keeps_disabled_users(self) -> None:
        state = {"u1": held("t-1", "disabled", disabled_at=NOW - timedelta(days=3650))}
        assert planner(delete_after_days=None).plan_users(UserSnapshot(state, [])) == []

    def test_no_waiting_period_deletes_instead_of_disabling(self) -> None:
        assert kinds(planner(delete_after_days=0).plan_users(UserSnapshot({"u1": held()}, []))) == {"u1": "delete"}
        with_delete_off = planner(delete_after_days=0, actions={"delete": False})
        assert kinds(with_delete_off.plan_users(UserSnapshot({"u1": held()}, []))) == {"u1": "disable"}

    def test_a_mapping_that_fails_is_planned_as_a_failure_not_raised(self) -> None:
        maps = [{"target": "userName", "source": "userName", "matching_precedence": 1},
                {"target": "displayName", "type": "expression", "source": "ToLower([a..b])"}]   # saved; fails on read
        [w] = planner({"u1"}, user_mappings=maps).plan_users(UserSnapshot({}, [user("u1")]))
        assert w.kind == "fail" and w.reason.startswith("mapping failed:")


class TestIncremental:
    def test_only_users_changed_since_the_version_last_seen_are_read(self) -> None:
        state = {"same": held(version=3), "moved": held(version=3), "quiet": held(version=3)}
        look = planner({"same", "moved", "quiet", "new"}, full=False).users_to_read(
            state, {"same": 3, "moved": 4})
        assert look == {"moved", "new"}

    def test_failed_disabled_and_skipped_users_are_read_again(self) -> None:
        state = {"failed": held(error="503"), "disabled": held(status="disabled"),
                 "skipped": held(None, "skipped"), "fine": held()}
        look = planner(set(state), full=False).users_to_read(state, {})
        assert look == {"failed", "disabled", "skipped"}

    def test_a_role_change_is_a_change_when_the_mappings_read_roles(self) -> None:
        roles = {"u1": [{"id": "r1", "displayName": "Owner", "value": "owner", "direct": True}]}
        single = {"target": 'roles[primary eq "True"].value', "type": "expression",
                  "source": "SingleAppRoleAssignment([appRoleAssignments])"}
        state = {"u1": held(roles=fingerprint([]))}
        assert planner({"u1"}, full=False, roles=roles).users_to_read(state, {}) == set()
        with_roles = planner({"u1"}, full=False, roles=roles,
                             user_mappings=[*AppConfig().model_dump()["user_mappings"], single])
        assert with_roles.users_to_read(state, {}) == {"u1"}

    def test_a_full_cycle_reads_everyone_in_scope(self) -> None:
        assert planner({"a", "b"}).users_to_read({"a": held()}, None) == {"a", "b"}

    def test_on_demand_reads_the_one_user_if_it_is_in_scope(self) -> None:
        assert planner({"a", "b"}, only_user="a").users_to_read({}, None) == {"a"}
        assert planner({"b"}, only_user="a").users_to_read({}, None) == set()
        assert planner({"b"}, only_user="a").users_leaving({"a": held(), "c": held()}) == ["a"]


class TestDefaultAccessAndScoping:
    def test_a_user_assigned_with_default_access_only_is_logged_once_as_skipped(self) -> None:
        p = planner(skipped={"u1": NOT_ENTITLED})
        [w] = p.plan_users(UserSnapshot({}, []))
        assert (w.kind, w.reason, w.steps[-1].result) == ("skip", NOT_ENTITLED, "skipped")
        incremental = planner(skipped={"u1": NOT_ENTITLED}, full=False)
        assert incremental.plan_users(UserSnapshot({"u1": held(None, "skipped")}, [])) == []

    def test_a_user_the_app_holds_that_lost_its_entitlement_is_disabled(self) -> None:
        [w] = planner(skipped={"u1": NOT_ENTITLED}).plan_users(UserSnapshot({"u1": held()}, []))
        assert (w.kind, w.reason) == ("disable", f"left scope: {NOT_ENTITLED}")

    def test_a_user_no_scoping_filter_holds_is_excluded_once(self) -> None:
        p = planner({"u1", "u2"}, scoping_filters=SALES_ONLY)
        work = p.plan_users(UserSnapshot({}, [user("u1", title="Sales"), user("u2", title="Ops")]))
        assert kinds(work) == {"u1": "upsert", "u2": "exclude"}
        again = p.plan_users(UserSnapshot({"u2": held(None, "excluded")}, [user("u2", title="Ops")]))
        assert again == []

    def test_a_user_filtered_out_of_scope_is_disabled_then_deleted_in_its_time(self) -> None:
        p = planner({"u1"}, scoping_filters=SALES_ONLY)
        [w] = p.plan_users(UserSnapshot({"u1": held()}, [user("u1", title="Ops")]))
        assert (w.kind, w.reason) == ("disable", "left scope: no scoping filter holds any more")
        disabled = held(status="disabled", disabled_at=NOW - timedelta(days=40))
        [w] = p.plan_users(UserSnapshot({"u1": disabled}, [user("u1", title="Ops")]))
        assert w.kind == "delete"

    def test_single_role_says_which_role_it_sends(self) -> None:
        roles = {"u1": [{"id": "r2", "displayName": "Reader", "value": "reader", "direct": False},
                        {"id": "r1", "displayName": "Owner", "value": "owner", "direct": False}]}
        single = {"target": 'roles[primary eq "True"].value', "type": "expression",
                  "source": "SingleAppRoleAssignment([appRoleAssignments])"}
        p = planner({"u1"}, roles=roles, user_mappings=[*AppConfig().model_dump()["user_mappings"], single])
        [w] = p.plan_users(UserSnapshot({}, [user("u1")]))
        assert w.steps[-1].step == "roles" and "'owner'" in w.steps[-1].detail
        assert w.roles == fingerprint(roles["u1"])

    def test_a_group_assigned_with_default_access_only_is_not_created(self) -> None:
        p = planner(assigned_groups=["g1", "g2"], groups_skipped={"g1": NOT_ENTITLED})
        assert p.entitled_groups() == ["g2"]
        upserts, deletes = p.plan_groups(GroupSnapshot({}, frozenset({"g2"}), [group("g1")], [group("g2")]))
        assert kinds(upserts) == {"g1": "skip", "g2": "upsert"} and deletes == []
        upserts, deletes = p.plan_groups(GroupSnapshot({"g1": held("tg")}, frozenset({"g2"}), [group("g1")], []))
        assert upserts == [] and kinds(deletes) == {"g1": "delete"}


class TestGroups:
    def test_groups_that_left_scope_are_deleted_or_forgotten(self) -> None:
        state = {"kept": held("t1"), "gone": held("t2", sent={"displayName": "Old"}), "never": held(None, "excluded")}
        upserts, deletes = planner().plan_groups(GroupSnapshot(state, frozenset({"kept"}), [], [group("kept")]))
        assert kinds(upserts) == {"kept": "upsert"}
        assert kinds(deletes) == {"gone": "delete", "never": "forget"}
        assert [w.display for w in deletes] == ["Old", None]

    def test_a_group_no_group_filter_holds_is_deleted_from_the_app(self) -> None:
        p = planner(group_scoping_filters=[[{"attribute": "displayName", "operator": "ENDS_WITH", "value": "a"}]])
        snapshot = GroupSnapshot({"g1": held("t1")}, frozenset({"g1", "g2"}), [], [group("g1"), group("g2")])
        upserts, deletes = p.plan_groups(snapshot)
        assert kinds(upserts) == {"g2": "exclude"} and kinds(deletes) == {"g1": "delete"}

    def test_an_incremental_cycle_reads_changed_and_new_groups(self) -> None:
        state = {"a": held(version=1), "b": held(version=1), "c": held(None, "skipped")}
        assert planner(full=False).groups_to_read(state, {"a", "b", "c", "d"}, {"a": 2, "b": 1}) == {"a", "c", "d"}


class TestMembers:
    def test_members_are_the_directory_members_the_app_holds_active(self) -> None:
        users = {"u1": held("t-u1"), "u2": held("t-u2"), "u3": held("t-u3", "disabled"), "u4": held("t-u4")}
        groups = {"g1": held("t-g1"), "g2": held("t-g2"), "g3": held(None, "excluded")}
        snapshot = MemberSnapshot(users, groups, wanted={"g1": {"u1", "u2", "u3", "u4", "nobody"}},
                                  held={"g1": {"u1", "u5"}, "g2": set(), "old": {"u1"}})
        work, gone = planner().plan_members(snapshot, deleting={"u4"})
        [w] = work
        assert (w.source_id, w.add, w.remove) == ("g1", [("u2", "t-u2")], [("u5", None)])
        assert gone == ["old"]

    def test_member_changes_go_in_batches_adds_first(self) -> None:
        w = Work("members", "Group", "g1", add=[(f"u{i}", f"t{i}") for i in range(5)],
                 remove=[("x1", "tx1"), ("x2", None), ("x3", "tx3")])
        batches = member_batches(w, 2)
        assert [len(b.operations) for b in batches] == [1, 1, 1, 0, 2]
        assert [b.added for b in batches] == [["u0", "u1"], ["u2", "u3"], ["u4"], [], []]
        assert [b.removed for b in batches] == [[], [], [], ["x2"], ["x1", "x3"]]
        assert batches[0].operations == [{"op": "add", "path": "members", "value": [{"value": "t0"}, {"value": "t1"}]}]
        assert batches[-1].operations == [{"op": "remove", "path": 'members[value eq "tx1"]'},
                                          {"op": "remove", "path": 'members[value eq "tx3"]'}]


class TestDeletionThreshold:
    @pytest.mark.parametrize(("threshold", "over"), [(None, False), (3, False), (2, True)])
    def test_the_threshold_counts_disables_and_deletes(self, threshold: int | None, over: bool) -> None:
        p = planner(deletion_threshold=threshold)
        work = [Work("disable", "User", "a"), Work("delete", "User", "b"), Work("delete", "Group", "c"),
                Work("upsert", "User", "d"), Work("forget", "User", "e")]
        assert p.removals(work) == 3
        assert p.over_threshold(p.removals(work)) is over

    def test_removals_switched_off_do_not_count(self) -> None:
        p = planner(actions={"disable": False})
        assert p.removals([Work("disable", "User", "a"), Work("delete", "User", "b")]) == 1
