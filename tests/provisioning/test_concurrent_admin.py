"""An administrator's change made while a cycle runs is not undone when the cycle ends (both backends)."""

from __future__ import annotations

from typing import Any

from tests.provisioning.conftest import Source


def test_restart_made_while_a_cycle_runs_makes_the_next_cycle_initial(src: Source, target: Any) -> None:
    provisioning = src.services.provisioning
    ann = src.user("ann")
    app = src.app(target.base_url, target.token, provision_groups=False)
    provisioning.assign(src.tenant, app, "User", ann)
    assert src.run(app).status == "succeeded"
    src.patch_user(ann, {"op": "replace", "path": "name.familyName", "value": "Renamed"})
    restarted: list[bool] = []

    def restart_once(done: int, total: int | None) -> None:
        # Called by the running cycle after it wrote its progress: the administrator restarts now.
        if not restarted:
            provisioning.restart(src.tenant, app)
            restarted.append(True)

    report = provisioning.run_cycle(src.tenant, app, progress=restart_once)
    assert report.kind == "incremental" and report.status == "succeeded" and restarted
    status = provisioning.status(src.tenant, app)
    assert status.watermark is None           # the restart's, not overwritten by the cycle that ran
    assert src.run(app).kind == "initial"


def test_start_made_while_a_quarantined_cycle_runs_resets_the_quarantine_level(src: Source) -> None:
    provisioning = src.services.provisioning
    ann = src.user("ann")
    # Nothing listens at this address: every request fails, and the cycle ends quarantined.
    app = src.app("http://127.0.0.1:9/scim/v2", "token-of-nobody", provision_groups=False, retries=0,
                  quarantine_min_attempts=1, backoff_seconds=0.01, timeout_seconds=2)
    provisioning.assign(src.tenant, app, "User", ann)
    assert src.run(app).status == "quarantined"
    assert provisioning.status(src.tenant, app).quarantined_at is not None
    started: list[bool] = []

    def start_once(done: int, total: int | None) -> None:
        if not started:
            provisioning.set_enabled(src.tenant, app, True)     # "start" clears the quarantine
            started.append(True)

    assert provisioning.run_cycle(src.tenant, app, progress=start_once).status == "quarantined" and started
    with src.services.db.session() as session:
        from tenantry.provisioning.models import ProvisioningApp

        row = session.get(ProvisioningApp, app)
        assert row is not None
        # Counted from the administrator's reset (first quarantine again), not from the level the cycle read.
        assert row.quarantine_level == 1
