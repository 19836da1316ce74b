"""Provisioning through the job engine (scheduler, Celery worker), the admin API and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from tenantry.cli import app as cli
from tenantry.core.clock import utcnow
from tenantry.core.settings import Settings
from tenantry.jobs import CeleryJobs, InlineJobs, Scheduler
from tenantry.provisioning.models import ProvisioningApp
from tests.conftest import admin_secret, stop_worker
from tests.connectors.test_jobs import REDIS, redis_reachable
from tests.provisioning.conftest import Peer, Source


def test_the_scheduler_runs_enabled_apps_when_due_and_not_twice(src: Source, target, peer: Peer) -> None:
    app = src.app(target.base_url, target.token)
    src.services.provisioning.assign(src.tenant, app, "User", src.user("ann"))
    jobs = InlineJobs(src.services)
    scheduler = Scheduler(src.services, jobs, interval=1)
    assert app not in str([jobs.results.get(j) for j in scheduler.tick()])   # off: never scheduled
    src.services.provisioning.set_enabled(src.tenant, app, True)
    first = [jobs.results[j] for j in scheduler.tick() if jobs.results[j].get("kind") == "initial"
             and jobs.results[j]["id"] in str(src.services.provisioning.status(src.tenant, app).cycles)]
    second = [j for j in scheduler.tick() if j in str(src.services.provisioning.status(src.tenant, app).cycles)]
    assert len(first) == 1 and first[0]["status"] == "succeeded" and not second
    assert peer.user(src.name("ann")) is not None
    status = src.services.provisioning.status(src.tenant, app)
    next_run = status.next_run_at
    assert next_run is not None and next_run > (utcnow()).isoformat()   # in 40 minutes, the default interval
    with src.services.db.session() as session:                          # 40 minutes pass
        session.execute(update(ProvisioningApp).where(ProvisioningApp.id == app).values(next_run_at=utcnow()))
    later = [jobs.results[j] for j in scheduler.tick() if jobs.results[j]["id"] in
             str(src.services.provisioning.status(src.tenant, app).cycles)]
    assert [r["kind"] for r in later] == ["incremental"]


def test_a_cycle_runs_on_a_celery_worker_over_redis(src: Source, target, peer: Peer, tmp_path: Path) -> None:
    why = redis_reachable()
    if why:
        pytest.skip(why)
    backend = src.services
    queue = f"tenantry-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TENANTRY_DATA_DIR": str(backend.settings.data_dir),
           "TENANTRY_DATABASE_URL": backend.settings.resolved_database_url,
           "TENANTRY_BROKER_URL": REDIS, "TENANTRY_BROKER_QUEUE": queue}
    app = src.app(target.base_url, target.token)
    src.services.provisioning.assign(src.tenant, app, "User", src.user("ann"))
    worker = subprocess.Popen([sys.executable, "-m", "tenantry", "worker"], env=env, stdin=subprocess.DEVNULL,
                              stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        jobs = CeleryJobs(Settings(data_dir=backend.settings.data_dir, broker_url=REDIS, broker_queue=queue))
        job_id = jobs.submit("provisioning.run", tenant=src.tenant, app_id=app, trigger="manual")
        result = jobs.app.AsyncResult(job_id).get(timeout=60)
    finally:
        stop_worker(worker)
    assert result["status"] == "succeeded" and result["stats"]["users_created"] == 1, \
        (tmp_path / "worker.log").read_text()
    assert peer.user(src.name("ann")) is not None


def test_the_admin_api_configures_runs_and_reports(app_client, src: Source, target, peer: Peer) -> None:
    token = admin_secret(src.services, src.tenant, "a")
    h = {"Authorization": f"Bearer {token}"}
    base = f"/api/v1/tenants/{src.tenant}/provisioning/apps"
    r = app_client.post(base, headers=h, json={"name": "GroupTalk", "tenant_url": target.base_url,
                                               "token": target.token})
    assert r.status_code == 201 and r.json()["test_connection"]["ok"] is True, r.text
    assert "token" not in r.text.replace("test_connection", "")
    r = app_client.patch(f"{base}/GroupTalk/config", headers=h, json={"concurrency": 0})
    assert r.status_code == 400 and "concurrency" in r.json()["message"]
    r = app_client.patch(f"{base}/GroupTalk/config", headers=h, json={"concurrency": 2, "actions": {"delete": False}})
    assert r.status_code == 200 and r.json()["actions"]["delete"] is False and r.json()["actions"]["create"]
    ann = src.user("ann")
    r = app_client.post(f"{base}/GroupTalk/assignments", headers=h, json={"principal_id": ann})
    assert r.status_code == 204
    r = app_client.post(f"{base}/GroupTalk/provision-on-demand", headers=h, json={"user_id": ann})
    assert r.status_code == 200 and r.json()["logs"][0]["action"] == "create"
    r = app_client.post(f"{base}/GroupTalk/run", headers=h, json={})
    assert r.status_code == 202
    deadline = time.monotonic() + 30
    while True:
        status = app_client.get(f"{base}/GroupTalk", headers=h).json()
        if status["cycles"] and status["cycles"][0]["kind"] == "initial" and status["cycles"][0]["finished_at"]:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["cycles"][0]["status"] == "succeeded" and status["users"] == {"active": 1}
    logs = app_client.get(f"{base}/GroupTalk/logs", headers=h, params={"user": ann}).json()
    assert [entry["action"] for entry in logs] == ["none", "create"]
    assert app_client.get(f"{base}/nope", headers=h).status_code == 404
    assert app_client.get(base, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_the_cli_runs_a_cycle_and_shows_status_and_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        target, peer: Peer) -> None:
    monkeypatch.setenv("TENANTRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TENANTRY_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str, ok: bool = True, stdin: str | None = None) -> str:
        result = runner.invoke(cli, list(args), input=stdin)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    tag = uuid.uuid4().hex[:8]
    assert "no tenant 'default'" in run("directory", "user-add", "x@contoso.com", ok=False)
    run("tenant", "create", "default")
    run("directory", "user-add", f"ann.{tag}@contoso.com", "--email", f"ann.{tag}@contoso.com",
        "--given-name", "Ann")
    assert "connected" in run("provisioning", "app-add", "GroupTalk", target.base_url, "--token-stdin",
                              stdin=target.token + "\n")
    run("provisioning", "assign", "GroupTalk", f"ann.{tag}@contoso.com")
    assert '"concurrency": 2' in run("provisioning", "config", "GroupTalk", "--set", "concurrency=2",
                                     "--set", "actions.delete=false")
    assert "must hold" not in run("provisioning", "config", "GroupTalk")
    assert "invalid provisioning configuration" in run("provisioning", "config", "GroupTalk", "--set",
                                                       "member_batch=0", ok=False)
    out = run("provisioning", "run", "GroupTalk")
    assert "(initial): succeeded" in out and "users_created: 1" in out
    assert peer.user(f"ann.{tag}@contoso.com") is not None
    out = run("provisioning", "status", "GroupTalk")
    assert "healthy" in out and "'active': 1" in out
    out = run("provisioning", "logs", "GroupTalk", "--user", f"ann.{tag}@contoso.com", "--steps")
    assert "create" in out and "match" in out
    assert "a cycle" not in run("provisioning", "on-demand", "GroupTalk", f"ann.{tag}@contoso.com")
    assert "no provisioning app" in run("provisioning", "run", "Nope", ok=False)
