"""Provisioning cycles end to end: our directory (SQLite and PostgreSQL) into another Tenantry process."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import TypeAdapter

from tenantry.core.errors import Conflict, Invalid
from tenantry.provisioning.models import ProvisionedObject
from tenantry.provisioning.results import AppStatus
from tests.factories.provisioning import assign
from tests.provisioning.conftest import Peer, Source

FAST = {"backoff_seconds": 0.01}


def test_initial_cycle_creates_assigned_users_groups_and_memberships(src: Source, target, peer: Peer) -> None:
    ann, ben, cat = src.user("ann"), src.user("ben"), src.user("cat")
    outsider = src.user("dan")
    team = src.group("team", [ann, ben])
    app = src.app(target.base_url, target.token, **FAST)
    src.services.provisioning.assign(src.tenant, app, "Group", team)
    src.services.provisioning.assign(src.tenant, app, "User", cat)

    report = src.run(app)

    assert report.kind == "initial" and report.status == "succeeded", report
    assert report.stats["users_created"] == 3 and report.stats["groups_created"] == 1
    for who in ("ann", "ben", "cat"):
        user = peer.user(src.name(who))
        assert user is not None and user["active"] is True
        assert user["name"]["givenName"] == who.title()
        assert user["emails"][0]["value"] == src.name(who)
        assert user["externalId"] in (ann, ben, cat)        # the GroupTalk table: externalId ← our id
    assert peer.user(src.name("dan")) is None and outsider
    members = peer.member_ids(src.group_name("team"))
    assert members == {peer.user(src.name("ann"))["id"], peer.user(src.name("ben"))["id"]}  # type: ignore[index]


def test_every_object_is_logged_with_its_steps(src: Source, target) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token, provision_groups=False, users=[uid])
    report = src.run(app)
    logs = src.services.provisioning.logs(src.tenant, app, cycle_id=report.id)
    assert len(logs) == 1
    entry = logs[0]
    assert (entry.source_id, entry.action, entry.result) == (uid, "create", "success")
    assert [s.step for s in entry.steps] == ["import", "scope", "match", "action"]
    assert "no match on userName" in entry.steps[2].detail


def test_incremental_cycle_sends_only_the_changed_attribute_of_the_changed_user(src: Source, target,
                                                                                   peer: Peer) -> None:
    ids = [src.user(n) for n in ("ann", "ben", "cat")]
    app = src.app(target.base_url, target.token)
    assign(src.services, src.tenant, app, *ids)
    assert src.run(app).status == "succeeded"
    src.patch_user(ids[1], {"op": "replace", "path": "name.familyName", "value": "Renamed"})

    report = src.run(app)

    assert report.kind == "incremental" and report.status == "succeeded"
    assert report.stats["requests"] == 1 and report.stats["requests_patch"] == 1
    assert report.stats["users_updated"] == 1
    # The others were modified within the clock margin of the watermark, but at the version already sent:
    # not even read again.
    assert report.total == 1 and "users_unchanged" not in report.stats
    assert peer.user(src.name("ben"))["name"]["familyName"] == "Renamed"  # type: ignore[index]
    entry = src.services.provisioning.logs(src.tenant, app, cycle_id=report.id, action="update")[0]
    assert entry.source_id == ids[1] and entry.reason == "changed: name.familyName"
    # Nothing changed: nothing sent.
    assert src.run(app).stats["requests"] == 0


def test_an_attribute_removed_in_the_directory_is_removed_in_the_app(src: Source, target, peer: Peer) -> None:
    uid = src.user("ann", phoneNumbers=[{"type": "mobile", "value": "+4915112345678"}])
    app = src.app(target.base_url, target.token, users=[uid])
    src.run(app)
    assert peer.user(src.name("ann"))["phoneNumbers"][0]["value"] == "+4915112345678"  # type: ignore[index]
    src.patch_user(uid, {"op": "remove", "path": "phoneNumbers"})
    report = src.run(app)
    assert report.stats["users_updated"] == 1
    # Nothing of the mobile entry is left, so the entry goes (not a {"type": "mobile"} husk).
    assert not peer.user(src.name("ann")).get("phoneNumbers")  # type: ignore[union-attr]
    src.patch_user(uid, {"op": "add", "path": "phoneNumbers", "value": [{"type": "mobile", "value": "+4915199"}]})
    src.run(app)
    assert peer.user(src.name("ann"))["phoneNumbers"] == [{"type": "mobile", "value": "+4915199"}]  # type: ignore[index]


def test_a_user_leaving_scope_is_deactivated_and_reactivated_when_back(src: Source, target, peer: Peer) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token)
    provisioning = src.services.provisioning
    provisioning.assign(src.tenant, app, "User", uid)
    src.run(app)
    provisioning.unassign(src.tenant, app, "User", uid)

    report = src.run(app)

    assert report.stats["users_disabled"] == 1
    assert peer.user(src.name("ann"))["active"] is False  # type: ignore[index]
    entry = provisioning.logs(src.tenant, app, cycle_id=report.id)[0]
    assert (entry.action, entry.result) == ("disable", "success")
    assert "no longer assigned" in entry.reason
    assert provisioning.status(src.tenant, app).users == {"disabled": 1}

    provisioning.assign(src.tenant, app, "User", uid)
    report = src.run(app)
    assert report.stats["users_updated"] == 1
    assert peer.user(src.name("ann"))["active"] is True  # type: ignore[index]


def test_a_user_deleted_from_the_directory_is_deactivated_in_the_app(src: Source, target, peer: Peer) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token, users=[uid])
    src.run(app)
    src.services.scim.delete(src.tenant, "User", uid)
    report = src.run(app)
    assert report.stats["users_disabled"] == 1
    assert peer.user(src.name("ann"))["active"] is False  # type: ignore[index]
    assert "deleted from the directory" in src.services.provisioning.logs(src.tenant, app,
                                                                          cycle_id=report.id)[0].reason


def test_disabled_users_are_deleted_after_the_configured_period(src: Source, target, peer: Peer) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token, delete_after_days=2)
    provisioning = src.services.provisioning
    provisioning.assign(src.tenant, app, "User", uid)
    src.run(app)
    provisioning.unassign(src.tenant, app, "User", uid)
    src.run(app)
    assert src.run(app).stats.get("users_deleted") is None     # disabled one cycle ago: not yet
    with src.services.db.session() as session:                  # two days pass
        row = session.get(ProvisionedObject, (app, "User", uid))
        assert row is not None and row.disabled_at is not None
        row.disabled_at = row.disabled_at - timedelta(days=2, seconds=1)
    report = src.run(app)
    assert report.stats["users_deleted"] == 1
    assert peer.user(src.name("ann")) is None
    assert provisioning.status(src.tenant, app).users == {}


def test_delete_after_zero_days_deletes_instead_of_disabling(src: Source, target, peer: Peer) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token, delete_after_days=0, users=[uid])
    src.run(app)
    src.services.provisioning.unassign(src.tenant, app, "User", uid)
    assert src.run(app).stats["users_deleted"] == 1
    assert peer.user(src.name("ann")) is None


def test_scoping_filters_keep_users_out_and_disable_users_who_stop_matching(src: Source, target,
                                                                            peer: Peer) -> None:
    ann = src.user("ann", title="Engineer")
    ben = src.user("ben", title="Sales")
    app = src.app(target.base_url, target.token, scoping_filters=[
        [{"attribute": "title", "operator": "EQUALS", "value": "Engineer"}]])
    assign(src.services, src.tenant, app, ann, ben)
    report = src.run(app)
    assert report.stats["users_created"] == 1 and report.stats["users_excluded"] == 1
    assert peer.user(src.name("ben")) is None
    skipped = src.services.provisioning.logs(src.tenant, app, source_id=ben)[0]
    assert skipped.result == "skipped" and "no scoping filter holds" in skipped.reason

    src.patch_user(ann, {"op": "replace", "path": "title", "value": "Manager"})
    report = src.run(app)
    assert report.stats["users_disabled"] == 1
    assert peer.user(src.name("ann"))["active"] is False  # type: ignore[index]
    src.patch_user(ben, {"op": "replace", "path": "title", "value": "Engineer"})
    assert src.run(app).stats["users_created"] == 1
    assert peer.user(src.name("ben"))["active"] is True  # type: ignore[index]


def test_default_access_users_are_not_provisioned_and_the_log_says_why(src: Source, target, peer: Peer) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token)
    src.services.provisioning.assign(src.tenant, app, "User", uid, role="Default Access")
    report = src.run(app)
    assert report.stats["users_skipped"] == 1 and report.stats["requests"] == 0
    assert peer.user(src.name("ann")) is None
    entry = src.services.provisioning.logs(src.tenant, app)[0]
    assert entry.steps[-1].stored() == {"step": "scope", "result": "skipped",
                                         "detail": "not effectively entitled: the only role is Default Access"}


def test_an_existing_app_user_is_matched_not_duplicated(src: Source, target, peer: Peer) -> None:
    existing = peer.create_user(src.name("ann"), name={"givenName": "Old", "familyName": "Name"})
    uid = src.user("ann")
    app = src.app(target.base_url, target.token, users=[uid])
    report = src.run(app)
    assert report.stats["users_updated"] == 1 and report.stats.get("users_created") is None
    user = peer.user(src.name("ann"))
    assert user is not None and user["id"] == existing["id"] and user["name"]["givenName"] == "Ann"
    log = src.services.provisioning.logs(src.tenant, app)[0]
    assert f"matched on userName eq '{src.name('ann')}'" in log.steps[2].detail


def test_matching_falls_back_to_the_next_attribute_in_precedence(src: Source, target, peer: Peer) -> None:
    uid = src.user("ann")
    existing = peer.create_user(f"other-{src.tag}@contoso.com", externalId=uid)
    app = src.app(target.base_url, target.token)
    mappings = src.services.provisioning.config(src.tenant, app).model_dump(mode="json")["user_mappings"]
    for m in mappings:
        if m["target"] == "externalId":
            m["matching_precedence"] = 2
    src.services.provisioning.configure(src.tenant, app, {"user_mappings": mappings})
    src.services.provisioning.assign(src.tenant, app, "User", uid)
    report = src.run(app)
    assert report.stats["users_updated"] == 1
    assert peer.user(src.name("ann"))["id"] == existing["id"]  # type: ignore[index]   # userName was updated


@pytest.mark.parametrize("switched_off", ["create", "update", "disable"])
def test_each_action_kind_can_be_switched_off(src: Source, target, peer: Peer, switched_off: str) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token, actions={switched_off: False} if switched_off == "create"
                  else {})
    provisioning = src.services.provisioning
    provisioning.assign(src.tenant, app, "User", uid)
    report = src.run(app)
    if switched_off == "create":
        assert report.stats["users_skipped"] == 1 and peer.user(src.name("ann")) is None
        assert "create is switched off" in provisioning.logs(src.tenant, app)[0].reason
        return
    provisioning.configure(src.tenant, app, {"actions": {switched_off: False}})
    if switched_off == "update":
        src.patch_user(uid, {"op": "replace", "path": "name.familyName", "value": "Changed"})
        report = src.run(app)
        assert report.stats["users_skipped"] == 1
        assert peer.user(src.name("ann"))["name"]["familyName"] == "Tester"  # type: ignore[index]
    else:
        provisioning.unassign(src.tenant, app, "User", uid)
        report = src.run(app)
        assert report.stats["users_skipped"] == 1
        assert peer.user(src.name("ann"))["active"] is True  # type: ignore[index]
    assert f"{switched_off} is switched off" in provisioning.logs(src.tenant, app, cycle_id=report.id)[0].reason


def test_the_deletion_threshold_stops_a_cycle_before_anything_is_sent(src: Source, target, peer: Peer) -> None:
    ids = [src.user(n) for n in ("ann", "ben", "cat")]
    app = src.app(target.base_url, target.token, deletion_threshold=1)
    provisioning = src.services.provisioning
    assign(src.services, src.tenant, app, *ids)
    src.run(app)
    provisioning.unassign(src.tenant, app, "User", ids[0])
    provisioning.unassign(src.tenant, app, "User", ids[1])

    report = src.run(app)

    assert report.status == "threshold_exceeded" and report.stats["requests"] == 0
    assert "over the accidental-deletion threshold of 1" in (report.reason or "")
    assert peer.user(src.name("ann"))["active"] is True  # type: ignore[index]
    assert provisioning.status(src.tenant, app).health == "threshold"
    # Still stopped next time, until an administrator allows it.
    assert src.run(app).status == "threshold_exceeded"
    report = src.run(app, allow_deletions=True)
    assert report.status == "succeeded" and report.stats["users_disabled"] == 2
    assert peer.user(src.name("ann"))["active"] is False  # type: ignore[index]
    assert provisioning.status(src.tenant, app).health == "healthy"


def test_group_members_are_patched_in_batches_and_removed(src: Source, target, peer: Peer) -> None:
    ids = [src.user(f"u{i}") for i in range(5)]
    team = src.group("team", ids)
    app = src.app(target.base_url, target.token, member_batch=2)
    provisioning = src.services.provisioning
    provisioning.assign(src.tenant, app, "Group", team)
    report = src.run(app)
    assert report.stats["members_added"] == 5
    assert report.stats["requests_patch"] == 3                      # 2 + 2 + 1
    assert len(peer.member_ids(src.group_name("team"))) == 5
    # A member leaves the group: removed from the app's group (and, no longer in scope, disabled).
    src.patch_group(team, {"op": "remove", "path": f'members[value eq "{ids[0]}"]'})
    report = src.run(app)
    assert report.stats["members_removed"] == 1 and report.stats["users_disabled"] == 1
    assert len(peer.member_ids(src.group_name("team"))) == 4
    entry = provisioning.logs(src.tenant, app, cycle_id=report.id, action="members")[0]
    assert entry.reason == "added 0, removed 1 member(s)"


def test_a_group_renamed_is_patched_and_a_group_unassigned_is_deleted(src: Source, target, peer: Peer) -> None:
    team = src.group("team", [src.user("ann")])
    app = src.app(target.base_url, target.token)
    provisioning = src.services.provisioning
    provisioning.assign(src.tenant, app, "Group", team)
    src.run(app)
    src.patch_group(team, {"op": "replace", "path": "displayName", "value": src.group_name("renamed")})
    assert src.run(app).stats["groups_updated"] == 1
    assert peer.group(src.group_name("renamed")) is not None and peer.group(src.group_name("team")) is None
    provisioning.unassign(src.tenant, app, "Group", team)
    report = src.run(app)
    assert report.stats["groups_deleted"] == 1 and report.stats["users_disabled"] == 1
    assert peer.group(src.group_name("renamed")) is None


def test_on_demand_provisions_one_user_and_returns_each_step(src: Source, target, peer: Peer) -> None:
    ann, ben = src.user("ann"), src.user("ben")
    app = src.app(target.base_url, target.token)
    assign(src.services, src.tenant, app, ann, ben)
    report = src.services.provisioning.provision_on_demand(src.tenant, app, ann)
    assert report.kind == "on_demand" and report.status == "succeeded"
    assert [e.action for e in report.logs] == ["create"]
    assert [s.step for s in report.logs[0].steps] == ["import", "scope", "match", "action"]
    assert peer.user(src.name("ann")) is not None and peer.user(src.name("ben")) is None
    # On-demand does not stand in for the initial cycle: that one still covers everybody.
    report = src.run(app)
    assert report.kind == "initial" and report.stats["users_created"] == 1
    with pytest.raises(Exception, match="no user"):
        src.services.provisioning.provision_on_demand(src.tenant, app, "no-such-user")


def test_a_second_cycle_of_the_same_app_is_refused_while_one_runs(src: Source, target) -> None:
    app = src.app(target.base_url, target.token)
    progress_calls = []

    def progress(done: int, total: int) -> None:
        progress_calls.append((done, total))
        with pytest.raises(Conflict):
            src.run(app)

    src.services.provisioning.assign(src.tenant, app, "User", src.user("ann"))
    assert src.run(app, progress=progress).status == "succeeded"
    assert progress_calls and progress_calls[-1] == (1, 1)


def test_a_changed_mapping_makes_the_next_cycle_compare_everyone(src: Source, target, peer: Peer) -> None:
    ids = [src.user(n) for n in ("ann", "ben")]
    app = src.app(target.base_url, target.token)
    assign(src.services, src.tenant, app, *ids)
    src.run(app)
    config = src.services.provisioning.config(src.tenant, app).model_dump(mode="json")
    config["user_mappings"].append({"target": "title", "type": "constant", "source": "Staff"})
    src.services.provisioning.configure(src.tenant, app, {"user_mappings": config["user_mappings"]})
    report = src.run(app)
    assert report.stats["users_updated"] == 2
    assert peer.user(src.name("ben"))["title"] == "Staff"  # type: ignore[index]


def test_restart_forgets_the_state_and_rematches_without_duplicates(src: Source, target, peer: Peer) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token, users=[uid])
    src.run(app)
    first = peer.user(src.name("ann"))
    src.services.provisioning.restart(src.tenant, app)
    report = src.run(app)
    assert report.kind == "initial" and report.stats.get("users_created") is None
    assert peer.user(src.name("ann"))["id"] == first["id"]  # type: ignore[index]


def test_an_object_the_app_refuses_is_logged_and_retried_next_cycle(src: Source, target, peer: Peer) -> None:
    ok_user = src.user("ann")
    bad = src.user("ben")
    app = src.app(target.base_url, target.token, quarantine_min_attempts=100)
    config = src.services.provisioning.config(src.tenant, app).model_dump(mode="json")
    # The app has no attribute "nickName2": it refuses the create (400), the others go through.
    config["user_mappings"].append({"target": "nickName2", "type": "expression",
                                    "source": f'Switch([userName], "", "{src.name("ben")}", "x")'})
    src.services.provisioning.configure(src.tenant, app, {"user_mappings": config["user_mappings"]})
    assign(src.services, src.tenant, app, ok_user, bad)
    report = src.run(app)
    assert report.status == "completed_with_failures" and report.stats["users_failed"] == 1
    failure = src.services.provisioning.logs(src.tenant, app, result="failure")[0]
    assert failure.source_id == bad and "HTTP 400" in failure.reason
    assert src.services.provisioning.status(src.tenant, app).objects_failing == 1
    # The next incremental cycle retries it (nothing else): fixed mapping → created.
    config["user_mappings"] = config["user_mappings"][:-1]
    src.services.provisioning.configure(src.tenant, app, {"user_mappings": config["user_mappings"]})
    report = src.run(app)
    assert report.stats["users_created"] == 1 and peer.user(src.name("ben")) is not None
    assert src.services.provisioning.status(src.tenant, app).objects_failing == 0


def test_bad_configuration_is_refused_and_the_old_one_kept(src: Source, target) -> None:
    app = src.app(target.base_url, target.token)
    before = src.services.provisioning.config(src.tenant, app)
    for bad in ({"concurrency": 0}, {"scoping_filters": [[{"attribute": "title", "operator": "REGEX MATCH",
                                                            "value": "("}]]},
                {"user_mappings": [{"target": "userName", "type": "expression", "source": "Nope([x])",
                                    "matching_precedence": 1}]},
                {"user_mappings": [{"target": "userName", "source": "userName"}]},   # no matching attribute
                {"user_mappings": [{"target": "userName", "type": "expression", "matching_precedence": 1,
                                    "source": 'Switch([userName], "d", "k")'}]},       # a key without a value
                {"user_mappings": [{"target": "userName", "source": "a.b.c", "matching_precedence": 1}]},
                {"user_mappings": [{"target": "x.y.z", "source": "userName", "matching_precedence": 1}]},
                {"no_such_setting": 1}):
        with pytest.raises(Invalid):
            src.services.provisioning.configure(src.tenant, app, bad)
    assert src.services.provisioning.config(src.tenant, app) == before


def test_status_shows_progress_statistics_and_what_the_app_holds(src: Source, target) -> None:
    app = src.app(target.base_url, target.token)
    src.services.provisioning.assign(src.tenant, app, "User", src.user("ann"))
    src.run(app)
    status = src.services.provisioning.status(src.tenant, app)
    assert status.users == {"active": 1} and not status.running
    cycle = status.cycles[0]
    assert (cycle.status, cycle.done, cycle.total) == ("succeeded", 1, 1)
    assert cycle.stats["users_created"] == 1 and cycle.finished_at
    assert json.loads(TypeAdapter(AppStatus).dump_json(status))   # all JSON-able for the API


def test_a_skipped_user_is_logged_once_not_every_cycle(src: Source, target) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token)
    src.services.provisioning.assign(src.tenant, app, "User", uid, role="Default Access")
    src.run(app)
    src.run(app)
    src.run(app)
    assert len(src.services.provisioning.logs(src.tenant, app, source_id=uid)) == 1
    # On demand says why, every time it is asked.
    report = src.services.provisioning.provision_on_demand(src.tenant, app, uid)
    assert report.logs[0].result == "skipped" and "Default Access" in report.logs[0].reason


def test_a_provisioned_user_left_with_only_default_access_is_deactivated(src: Source, target, peer: Peer) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token)
    src.services.provisioning.assign(src.tenant, app, "User", uid, role="User")
    src.run(app)
    src.services.provisioning.assign(src.tenant, app, "User", uid, role="Default Access")
    report = src.run(app)
    assert report.stats["users_disabled"] == 1
    assert peer.user(src.name("ann"))["active"] is False  # type: ignore[index]
    assert "Default Access" in src.services.provisioning.logs(src.tenant, app, cycle_id=report.id)[0].reason


def test_a_default_access_user_given_a_real_role_is_provisioned_next_cycle(src: Source, target,
                                                                           peer: Peer) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token)
    src.services.provisioning.assign(src.tenant, app, "User", uid, role="Default Access")
    src.run(app)
    src.services.provisioning.assign(src.tenant, app, "User", uid, role="User")   # the user itself is unchanged
    report = src.run(app)
    assert report.kind == "incremental" and report.stats["users_created"] == 1
    assert peer.user(src.name("ann")) is not None


def test_a_group_unassigned_then_assigned_again_gets_its_members_again(src: Source, target, peer: Peer) -> None:
    ann = src.user("ann")
    team = src.group("team", [ann])
    app = src.app(target.base_url, target.token)
    provisioning = src.services.provisioning
    provisioning.assign(src.tenant, app, "Group", team)
    provisioning.assign(src.tenant, app, "User", ann)           # stays in scope on her own
    src.run(app)
    provisioning.unassign(src.tenant, app, "Group", team)
    assert src.run(app).stats["groups_deleted"] == 1
    provisioning.assign(src.tenant, app, "Group", team)
    report = src.run(app)
    assert report.stats["groups_created"] == 1 and report.stats["members_added"] == 1
    assert peer.member_ids(src.group_name("team")) == {peer.user(src.name("ann"))["id"]}  # type: ignore[index]


def test_objects_deleted_in_the_app_by_hand_are_created_again_with_their_memberships(src: Source, target,
                                                                                      peer: Peer) -> None:
    ann = src.user("ann")
    team = src.group("team", [ann])
    app = src.app(target.base_url, target.token)
    src.services.provisioning.assign(src.tenant, app, "Group", team)
    src.run(app)
    gone = peer.user(src.name("ann"))
    assert gone is not None and peer.http.delete(f"/Users/{gone['id']}").status_code == 204
    src.patch_user(ann, {"op": "replace", "path": "name.familyName", "value": "Back"})
    report = src.run(app)
    assert report.stats["users_created"] == 1 and report.stats["members_added"] == 1
    again = peer.user(src.name("ann"))
    assert again is not None and again["id"] != gone["id"]
    assert peer.member_ids(src.group_name("team")) == {again["id"]}
    # The group, deleted by hand: the member change fails once (404), then it is created again.
    group = peer.group(src.group_name("team"))
    assert group is not None and peer.http.delete(f"/Groups/{group['id']}").status_code == 204
    bob = src.user("bob")
    src.patch_group(team, {"op": "add", "path": "members", "value": [{"value": bob}]})
    report = src.run(app)
    assert report.stats["groups_failed"] == 1
    report = src.run(app)
    assert report.stats["groups_created"] == 1 and report.stats["members_added"] == 2
    assert len(peer.member_ids(src.group_name("team"))) == 2


def test_an_assigned_group_deleted_from_the_directory_is_deleted_in_the_app(src: Source, target,
                                                                            peer: Peer) -> None:
    team = src.group("team", [src.user("ann")])
    app = src.app(target.base_url, target.token)
    src.services.provisioning.assign(src.tenant, app, "Group", team)
    src.run(app)
    src.services.scim.delete(src.tenant, "Group", team)
    report = src.run(app)
    assert report.stats["groups_deleted"] == 1 and report.stats["users_disabled"] == 1
    assert peer.group(src.group_name("team")) is None


def test_with_deleting_switched_off_a_zero_day_period_still_disables(src: Source, target, peer: Peer) -> None:
    uid = src.user("ann")
    app = src.app(target.base_url, target.token, delete_after_days=0, actions={"delete": False}, users=[uid])
    src.run(app)
    src.services.provisioning.unassign(src.tenant, app, "User", uid)
    assert src.run(app).stats["users_disabled"] == 1
    assert peer.user(src.name("ann"))["active"] is False  # type: ignore[index]


def test_a_member_leaving_scope_is_removed_from_the_apps_groups_before_it_is_deleted(src: Source, target,
                                                                                    peer: Peer) -> None:
    ann, ben = src.user("ann", title="Engineer"), src.user("ben", title="Engineer")
    team = src.group("team", [ann, ben])
    app = src.app(target.base_url, target.token, delete_after_days=0, scoping_filters=[
        [{"attribute": "title", "operator": "EQUALS", "value": "Engineer"}]])
    src.services.provisioning.assign(src.tenant, app, "Group", team)
    src.run(app)
    src.patch_user(ann, {"op": "replace", "path": "title", "value": "Sales"})
    report = src.run(app)
    assert report.stats["members_removed"] == 1 and report.stats["users_deleted"] == 1
    assert peer.member_ids(src.group_name("team")) == {peer.user(src.name("ben"))["id"]}  # type: ignore[index]


def test_a_value_removed_from_a_matched_user_is_sent_again_when_it_comes_back(src: Source, target,
                                                                              peer: Peer) -> None:
    peer.create_user(src.name("ann"), phoneNumbers=[{"type": "mobile", "value": "+4915100"}])
    uid = src.user("ann")
    app = src.app(target.base_url, target.token, users=[uid])
    src.run(app)                                   # matched; the app's mobile is not ours: removed
    assert not peer.user(src.name("ann")).get("phoneNumbers")  # type: ignore[union-attr]
    src.patch_user(uid, {"op": "add", "path": "phoneNumbers", "value": [{"type": "mobile", "value": "+4915100"}]})
    assert src.run(app).stats["users_updated"] == 1
    assert peer.user(src.name("ann"))["phoneNumbers"][0]["value"] == "+4915100"  # type: ignore[index]


def test_scope_all_provisions_every_user_and_group(src: Source, target, peer: Peer) -> None:
    ann, ben = src.user("ann"), src.user("ben")
    src.group("team", [ann])
    app = src.app(target.base_url, target.token)
    src.services.provisioning.update_app(src.tenant, app, scope="all")
    report = src.run(app)
    assert report.stats["users_created"] == 2 and report.stats["groups_created"] == 1
    assert peer.user(src.name("ben")) is not None and ben
    assert peer.member_ids(src.group_name("team")) == {peer.user(src.name("ann"))["id"]}  # type: ignore[index]


def test_a_cycle_cut_off_by_a_dead_process_is_marked_interrupted_by_the_next(src: Source, target) -> None:
    from datetime import UTC, datetime

    from tenantry.provisioning.models import ProvisioningCycle

    app = src.app(target.base_url, target.token)
    with src.services.db.session() as session:
        session.add(ProvisioningCycle(id="dead-cycle", app_id=app, kind="initial", trigger="schedule",
                                      status="running", started_at=datetime.now(UTC), total=10, done=3,
                                      stats="{}"))
    src.run(app)
    cycles = {c.id: c for c in src.services.provisioning.status(src.tenant, app).cycles}
    assert cycles["dead-cycle"].status == "interrupted" and "process" in cycles["dead-cycle"].reason


def test_scoping_filters_or_between_filters_and_and_within_one_in_a_cycle(src: Source, target,
                                                                          peer: Peer) -> None:
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    users = {
        "ann": src.user("ann", title="Engineer"),                                  # filter 1
        "ben": src.user("ben", title="Engineer", userType="Guest"),                # filter 1 fails on userType
        "cat": src.user("cat", **{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", enterprise],
                                  enterprise: {"costCenter": "4711"}}),            # filter 2
        "dan": src.user("dan"),                                                    # neither
    }
    app = src.app(target.base_url, target.token, scoping_filters=[
        [{"attribute": "title", "operator": "EQUALS", "value": "Engineer"},
         {"attribute": "userType", "operator": "IS NULL"},
         {"attribute": 'emails[type eq "work"].value', "operator": "ENDS_WITH", "value": "@contoso.com"}],
        [{"attribute": f"{enterprise}:costCenter", "operator": "Greater_Than", "value": "4000"}]])
    assign(src.services, src.tenant, app, *users.values())
    report = src.run(app)
    assert report.stats["users_created"] == 2 and report.stats["users_excluded"] == 2
    assert {n for n in users if peer.user(src.name(n)) is not None} == {"ann", "cat"}


def test_administrators_changes_are_in_the_apps_log(src: Source, target) -> None:
    provisioning = src.services.provisioning
    app = src.app(target.base_url, target.token)
    uid = src.user("ann")
    provisioning.assign(src.tenant, app, "User", uid)
    provisioning.configure(src.tenant, app, {"concurrency": 2})
    provisioning.update_app(src.tenant, app, token="rotated-" + src.tag)
    provisioning.set_enabled(src.tenant, app, True)
    provisioning.unassign(src.tenant, app, "User", uid)
    entries = [(e.action, e.reason) for e in provisioning.logs(src.tenant, app) if e.object_type == "App"]
    assert entries == [("unassign", f"User {uid} unassigned"), ("start", "provisioning status On"),
                       ("update_app", "changed: token (rotated)"), ("configure", "changed: concurrency"),
                       ("assign", f"User {uid} assigned with role 'User'")]
    assert "rotated-" not in str(provisioning.logs(src.tenant, app))   # the secret itself is never logged


GROUPTALK_GROUP = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group"


def test_a_groups_grouptalk_description_reaches_the_app_and_follows_changes(src: Source, target,
                                                                            peer: Peer) -> None:
    """Seed 003's group table maps the GroupTalk ``description``: the default group mappings carry it."""
    team = src.services.scim.create(src.tenant, "Group", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", GROUPTALK_GROUP],
        "displayName": src.group_name("team"), GROUPTALK_GROUP: {"description": "Night shift"}})["id"]
    app = src.app(target.base_url, target.token)
    src.services.provisioning.assign(src.tenant, app, "Group", team)
    assert src.run(app).stats["groups_created"] == 1
    assert peer.group(src.group_name("team"))[GROUPTALK_GROUP] == {"description": "Night shift"}  # type: ignore[index]

    src.patch_group(team, {"op": "replace", "path": f"{GROUPTALK_GROUP}:description", "value": "Day shift"})
    report = src.run(app)
    assert report.stats["groups_updated"] == 1
    assert peer.group(src.group_name("team"))[GROUPTALK_GROUP] == {"description": "Day shift"}  # type: ignore[index]


def test_group_scoping_filters_keep_groups_out_and_delete_a_group_that_stops_matching(src: Source, target,
                                                                                       peer: Peer) -> None:
    """Group scoping filters (Entra offers them for groups too): a group out of every filter is not created
    (logged, remembered as excluded); a provisioned group that stops matching is deleted in the app, as a
    group leaving scope is; one that matches again is created again with its members."""
    ann = src.user("ann")
    sales = src.group("sales", [ann])
    ops = src.group("ops", [ann])
    app = src.app(target.base_url, target.token, group_scoping_filters=[
        [{"attribute": "displayName", "operator": "REGEX MATCH", "value": "^sales-"}]])
    provisioning = src.services.provisioning
    for gid in (sales, ops):
        provisioning.assign(src.tenant, app, "Group", gid)

    report = src.run(app)
    assert report.stats["groups_created"] == 1 and report.stats["groups_excluded"] == 1
    assert peer.group(src.group_name("sales")) is not None and peer.group(src.group_name("ops")) is None
    assert report.stats["users_created"] == 1       # the filter is on groups: their members are still assigned
    skipped = provisioning.logs(src.tenant, app, source_id=ops)[0]
    assert skipped.result == "skipped" and "no group scoping filter holds" in skipped.reason
    assert src.run(app).stats.get("groups_excluded") is None     # logged once, not every cycle

    src.patch_group(sales, {"op": "replace", "path": "displayName", "value": src.group_name("closed")})
    report = src.run(app)
    assert report.stats["groups_deleted"] == 1
    assert peer.group(src.group_name("sales")) is None and peer.group(src.group_name("closed")) is None
    assert "no group scoping filter holds" in provisioning.logs(src.tenant, app, source_id=sales,
                                                                action="delete")[0].reason

    src.patch_group(ops, {"op": "replace", "path": "displayName", "value": src.group_name("sales")})
    report = src.run(app)
    assert report.stats["groups_created"] == 1
    assert peer.member_ids(src.group_name("sales")) == {peer.user(src.name("ann"))["id"]}  # type: ignore[index]


# -- app roles (issue #10 item 13) ----------------------------------------------------------------------------

SINGLE_ROLE = {"target": 'roles[primary eq "True"].value', "type": "expression",
               "source": "SingleAppRoleAssignment([appRoleAssignments])"}
ALL_ROLES = {"target": "roles", "type": "expression", "source": "AppRoleAssignmentsComplex([appRoleAssignments])"}


def _user_mappings(*extra: dict[str, str]) -> list[dict[str, object]]:
    from tenantry.provisioning.config import AppConfig

    return [*(m.model_dump(mode="json") for m in AppConfig().user_mappings), *extra]


def test_a_users_app_role_reaches_the_app_and_a_role_change_is_one_patch(src: Source, target, peer: Peer) -> None:
    provisioning = src.services.provisioning
    ann = src.user("ann")
    app = src.app(target.base_url, target.token, provision_groups=False, user_mappings=_user_mappings(SINGLE_ROLE))
    provisioning.add_role(src.tenant, app, display_name="Administrator", value="admin")
    provisioning.add_role(src.tenant, app, display_name="Driver", value="driver")
    provisioning.assign(src.tenant, app, "User", ann, role="Administrator")

    assert src.run(app).stats["users_created"] == 1
    assert peer.user(src.name("ann"))["roles"] == [{"primary": True, "value": "admin"}]  # type: ignore[index]

    provisioning.assign(src.tenant, app, "User", ann, role="Driver")     # the user itself is unchanged
    report = src.run(app)
    assert report.kind == "incremental" and report.stats["users_updated"] == 1
    assert (report.stats["requests"], report.stats["requests_patch"]) == (1, 1)
    assert peer.user(src.name("ann"))["roles"] == [{"primary": True, "value": "driver"}]  # type: ignore[index]
    assert provisioning.logs(src.tenant, app, cycle_id=report.id)[0].reason == "changed: roles"
    assert src.run(app).stats["requests"] == 0                            # nothing changed: nothing sent

    provisioning.update_role(src.tenant, app, "Driver", value="drivers")  # the role's value is what is sent
    report = src.run(app)
    assert (report.stats["requests"], report.stats["requests_patch"]) == (1, 1)
    assert peer.user(src.name("ann"))["roles"] == [{"primary": True, "value": "drivers"}]  # type: ignore[index]


def test_all_roles_are_sent_including_those_reached_through_a_group(src: Source, target, peer: Peer) -> None:
    provisioning = src.services.provisioning
    ann, ben = src.user("ann"), src.user("ben")
    drivers = src.group("drivers", [ann, ben])
    app = src.app(target.base_url, target.token, provision_groups=False, user_mappings=_user_mappings(ALL_ROLES))
    provisioning.add_role(src.tenant, app, display_name="Dispatcher", value="dispatch")
    provisioning.add_role(src.tenant, app, display_name="Driver", value="driver")
    provisioning.assign(src.tenant, app, "Group", drivers, role="Driver")
    provisioning.assign(src.tenant, app, "User", ann, role="Dispatcher")

    assert src.run(app).stats["users_created"] == 2

    def role(display: str, value: str) -> dict[str, object]:
        return {"primary": False, "type": "WindowsAzureActiveDirectoryRole", "display": display, "value": value}

    assert peer.user(src.name("ann"))["roles"] == [role("Dispatcher", "dispatch"), role("Driver", "driver")]  # type: ignore[index]
    assert peer.user(src.name("ben"))["roles"] == [role("Driver", "driver")]  # type: ignore[index]

    # Ann leaves the group: she keeps her own role only. Neither user was modified, only the group.
    src.patch_group(drivers, {"op": "remove", "path": f'members[value eq "{ann}"]'})
    report = src.run(app)
    assert (report.stats["requests"], report.stats["users_updated"]) == (1, 1)
    assert peer.user(src.name("ann"))["roles"] == [role("Dispatcher", "dispatch")]  # type: ignore[index]


def test_a_group_assigned_only_with_default_access_is_not_created(src: Source, target, peer: Peer) -> None:
    provisioning = src.services.provisioning
    ann, ben = src.user("ann"), src.user("ben")
    everyone = src.group("everyone", [ann, ben])
    team = src.group("team", [ben])
    app = src.app(target.base_url, target.token)
    provisioning.assign(src.tenant, app, "Group", everyone, role="Default Access")
    provisioning.assign(src.tenant, app, "Group", team)

    report = src.run(app)
    assert (report.stats["groups_created"], report.stats["groups_skipped"]) == (1, 1)
    assert peer.group(src.group_name("everyone")) is None and peer.group(src.group_name("team")) is not None
    assert peer.user(src.name("ann")) is None              # her only role, through the group, is Default Access
    entry = provisioning.logs(src.tenant, app, source_id=everyone)[0]
    assert (entry.object_type, entry.result, entry.display) == ("Group", "skipped",
                                                                          src.group_name("everyone"))
    assert entry.reason == "not effectively entitled: the only role is Default Access"
    assert src.run(app).stats.get("groups_skipped") is None     # logged once, not every cycle
    assert provisioning.status(src.tenant, app).groups == 1

    provisioning.assign(src.tenant, app, "Group", everyone, role="User")     # a real role: created next cycle
    report = src.run(app)
    assert (report.stats["groups_created"], report.stats["users_created"]) == (1, 1)
    assert peer.member_ids(src.group_name("everyone")) == {
        peer.user(src.name(n))["id"] for n in ("ann", "ben")}  # type: ignore[index]

    provisioning.assign(src.tenant, app, "Group", everyone, role="Default Access")   # and back: deleted
    report = src.run(app)
    assert report.stats["groups_deleted"] == 1 and report.stats["users_disabled"] == 1
    assert peer.group(src.group_name("everyone")) is None
    assert "Default Access" in provisioning.logs(src.tenant, app, source_id=everyone, action="delete")[0].reason


def test_of_several_roles_the_directly_assigned_one_is_sent_and_the_log_says_why(src: Source, target,
                                                                                 peer: Peer) -> None:
    provisioning = src.services.provisioning
    ann = src.user("ann")
    app = src.app(target.base_url, target.token, provision_groups=False, user_mappings=_user_mappings(SINGLE_ROLE))
    provisioning.add_role(src.tenant, app, display_name="Driver", value="driver")
    provisioning.add_role(src.tenant, app, display_name="Owner", value="owner")
    provisioning.assign(src.tenant, app, "Group", src.group("drivers", [ann]), role="Driver")
    provisioning.assign(src.tenant, app, "User", ann, role="Owner")

    report = src.run(app)
    assert peer.user(src.name("ann"))["roles"] == [{"primary": True, "value": "owner"}]  # type: ignore[index]
    steps = [s.stored() for s in provisioning.logs(src.tenant, app, cycle_id=report.id)[0].steps]
    assert {"step": "roles", "result": "success", "detail": "2 roles; SingleAppRoleAssignment sends 'owner', "
            "the role assigned to the user directly"} in steps

    provisioning.unassign(src.tenant, app, "User", ann)          # still assigned through the group
    report = src.run(app)
    assert (report.stats["requests"], report.stats["users_updated"]) == (1, 1)
    assert peer.user(src.name("ann"))["roles"] == [{"primary": True, "value": "driver"}]  # type: ignore[index]
