"""eDiscovery exports and retention over HTTP (issue #9, defects 5 and 8): jobs with progress, exports written only
under the data folder and downloaded as a stream, another tenant's export never found; the CLI names its folder."""

from __future__ import annotations

import hashlib
import io
import time
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tenantry.app import Services
from tenantry.archive.ediscovery import verify_export
from tenantry.cli import app as cli_app
from tests.conftest import admin_secret, stop_worker
from tests.factories.archive import NOW, deliver_items, make_case


def admin(backend: Services, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}


def case_with_custodian(client: TestClient, base: str, h: dict[str, str], name: str = "M") -> str:
    case = client.post(f"{base}/cases", headers=h, json={"name": name})
    assert case.status_code == 201, case.text
    r = client.post(f"{base}/cases/{name}/custodians", headers=h, json={"users": ["u1"]})
    assert r.status_code == 200, r.text
    return str(case.json()["id"])


def finished_export(client: TestClient, backend: Services, tenant: str, base: str, h: dict[str, str]) -> str:
    """Two items of u1, case M with u1 as custodian, an export of "merger" made as a job and finished."""
    deliver_items(backend, tenant, "u1", 2)
    case_with_custodian(client, base, h)
    export_id: str = client.post(f"{base}/cases/M/export", headers=h,
                                 json={"query": "merger"}).json()["export_id"]
    assert wait_for_job(client, base, h, export_id)["state"] == "succeeded"
    return export_id


def wait_for_job(client: TestClient, base: str, h: dict[str, str], job_id: str) -> dict[str, Any]:
    """Poll the job until it finishes; the bound is generous (a stuck job fails the test, it is no timing)."""
    deadline = time.monotonic() + 120
    while True:
        r = client.get(f"{base}/jobs/{job_id}", headers=h)
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["state"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_export_body_naming_a_server_destination_is_refused_and_nothing_is_written(
        app_client: TestClient, backend: Services, tenant: str, tmp_path: Path) -> None:
    h, base = admin(backend, tenant), f"/api/v1/tenants/{tenant}"
    deliver_items(backend, tenant, "u1", 2)
    case_with_custodian(app_client, base, h)
    target = tmp_path / "elsewhere"
    r = app_client.post(f"{base}/cases/M/export", headers=h,
                        json={"query": "merger", "destination": str(target)})
    assert r.status_code in (400, 422), r.text
    assert not target.exists()
    assert app_client.get(f"{base}/cases/M/exports", headers=h).json() == []
    assert "export" not in {e.action for e in backend.ledger.entries(tenant)}


def test_export_runs_as_a_job_under_the_data_folder_and_downloads_intact(
        app_client: TestClient, backend: Services, tenant: str, tmp_path: Path) -> None:
    h, base = admin(backend, tenant), f"/api/v1/tenants/{tenant}"
    deliver_items(backend, tenant, "u1", 5)
    deliver_items(backend, tenant, "u2", 3)  # not a custodian: not in the export
    case_id = case_with_custodian(app_client, base, h)
    r = app_client.post(f"{base}/cases/M/export", headers=h, json={"query": "merger"})
    assert r.status_code == 202, r.text
    export_id = r.json()["export_id"]
    assert r.json()["job_id"] == export_id and r.headers["location"] == f"{base}/jobs/{export_id}"

    job = wait_for_job(app_client, base, h, export_id)
    assert job["state"] == "succeeded", job
    assert job["progress"] == {"done": 5, "total": 5}
    assert job["result"]["exported"] == 5 and job["result"]["errors"] == []
    folder = backend.settings.data_dir / "exports" / tenant / export_id
    assert (folder / "manifest.sha256").is_file() and verify_export(folder) == []

    listed = app_client.get(f"{base}/cases/M/exports", headers=h).json()
    assert [(e["id"], e["state"], e["case_id"]) for e in listed] == [(export_id, "succeeded", case_id)]

    download = app_client.get(f"{base}/cases/{case_id}/exports/{export_id}/download", headers=h)
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "unzipped")
    root = tmp_path / "unzipped" / f"export-{export_id}"
    # The manifest's digests match the bytes that came over the wire, file by file.
    manifest = (root / "manifest.sha256").read_text().splitlines()
    assert len(manifest) == len(names) - 1
    for line in manifest:
        digest, _, name = line.partition("  ")
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest, name
    assert verify_export(root) == []
    assert len(list((root / "items").rglob("*.eml"))) == 5
    audit = backend.ledger.entries(tenant, action="export.download")
    assert audit[0].detail == {"export_id": export_id, "complete": True}


def test_another_tenants_export_and_job_ids_are_not_found(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    h, base = admin(backend, tenant), f"/api/v1/tenants/{tenant}"
    export_id = finished_export(app_client, backend, tenant, base, h)

    other = f"t-{uuid.uuid4().hex[:12]}"
    backend.directory.create_tenant(other, "Other")
    oh, obase = admin(backend, other), f"/api/v1/tenants/{other}"
    deliver_items(backend, other, "u1", 1)
    case_with_custodian(app_client, obase, oh)   # a case of the same name, in the other tenant
    for path in (f"/cases/M/exports/{export_id}", f"/cases/M/exports/{export_id}/download", f"/jobs/{export_id}"):
        r = app_client.get(obase + path, headers=oh)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert r.json()["error"] == "not_found"
    assert app_client.get(f"{obase}/cases/M/exports", headers=oh).json() == []
    assert all(j["id"] != export_id for j in app_client.get(f"{obase}/jobs", headers=oh).json())
    for odd in ("x" * 300, "%00", "1%20or%201=1"):
        assert app_client.get(f"{base}/jobs/{odd}", headers=h).status_code == 404
        assert app_client.get(f"{base}/cases/M/exports/{odd}/download", headers=h).status_code == 404
    # And B's token on A's URLs is refused outright.
    assert app_client.get(f"{base}/jobs/{export_id}", headers=oh).status_code in (401, 403, 404)


def test_export_of_an_unknown_case_or_a_bad_query_is_refused_before_a_job_starts(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    h, base = admin(backend, tenant), f"/api/v1/tenants/{tenant}"
    deliver_items(backend, tenant, "u1", 1)
    case_with_custodian(app_client, base, h)
    assert app_client.post(f"{base}/cases/nope/export", headers=h,
                           json={"query": "merger"}).status_code == 404
    r = app_client.post(f"{base}/cases/M/export", headers=h, json={"query": "frm:x"})
    assert r.status_code == 400 and "frm" in r.json()["message"]
    assert app_client.get(f"{base}/jobs", headers=h).json() == []


def test_retention_apply_runs_as_a_job_that_reports_progress_and_its_counts(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    h, base = admin(backend, tenant), f"/api/v1/tenants/{tenant}"
    deliver_items(backend, tenant, "u1", 1950, words="old news", when=NOW - timedelta(days=400))
    backend.compliance.create_policy(tenant, name="one year", actor="admin", delete_after_days=365)
    r = app_client.post(f"{base}/retention/apply", headers=h)
    assert r.status_code == 202, r.text
    job = wait_for_job(app_client, base, h, r.json()["job_id"])
    assert job["state"] == "succeeded", job
    assert job["kind"] == "retention.apply"
    assert job["progress"] == {"done": 1950, "total": 1950}
    assert job["result"]["deleted"] == 1950
    assert backend.archive.count(tenant, "u1") == 0


def test_a_job_that_fails_says_why_and_its_export_cannot_be_downloaded(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    from tenantry.jobs import run_tracked

    h, base = admin(backend, tenant), f"/api/v1/tenants/{tenant}"
    deliver_items(backend, tenant, "u1", 1)
    case_id = case_with_custodian(app_client, base, h)
    queued = backend.jobstore.create(tenant, "ediscovery.export", {
        "case_id": "no-such-case", "query": "merger", "actor": "c", "include_purges": True, "deduplicate": False},
        "c", subject=case_id)
    assert app_client.get(f"{base}/jobs/{queued.id}", headers=h).json()["state"] == "queued"
    r = app_client.get(f"{base}/cases/M/exports/{queued.id}/download", headers=h)
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    run_tracked(backend, queued.id)
    job = app_client.get(f"{base}/jobs/{queued.id}", headers=h).json()
    assert job["state"] == "failed" and "no-such-case" in job["error"]
    assert app_client.get(f"{base}/cases/M/exports/{queued.id}/download", headers=h).status_code == 409


def test_deleting_an_export_removes_its_files_only_in_its_own_tenant(
        app_client: TestClient, backend: Services, tenant: str) -> None:
    h, base = admin(backend, tenant), f"/api/v1/tenants/{tenant}"
    export_id = finished_export(app_client, backend, tenant, base, h)
    folder = backend.settings.data_dir / "exports" / tenant / export_id
    assert app_client.get(f"{base}/cases/M/exports/{export_id}", headers=h).json()["available"] is True

    other = f"t-{uuid.uuid4().hex[:12]}"
    backend.directory.create_tenant(other, "Other")
    oh, obase = admin(backend, other), f"/api/v1/tenants/{other}"
    deliver_items(backend, other, "u1", 1)
    case_with_custodian(app_client, obase, oh)
    assert app_client.delete(f"{obase}/cases/M/exports/{export_id}", headers=oh).status_code == 404
    assert folder.is_dir()

    assert app_client.delete(f"{base}/cases/M/exports/{export_id}", headers=h).status_code == 204
    assert not folder.exists()
    info = app_client.get(f"{base}/cases/M/exports/{export_id}", headers=h).json()
    assert info["state"] == "succeeded" and info["available"] is False
    assert app_client.get(f"{base}/cases/M/exports/{export_id}/download", headers=h).status_code == 404
    assert backend.ledger.entries(tenant, action="export.delete")[0].detail == {"export_id": export_id}
    # A queued export is not deleted under its job's feet.
    queued = backend.jobstore.create(tenant, "ediscovery.export", {}, "c",
                                     subject=backend.ediscovery.find_case(tenant, "M"))
    assert app_client.delete(f"{base}/cases/M/exports/{queued.id}", headers=h).status_code == 409


def test_an_in_process_job_whose_process_stopped_is_reported_failed(backend: Services, tenant: str) -> None:
    import socket
    import subprocess
    import sys

    from sqlalchemy import update

    from tenantry.jobstore import JobRecord

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    job = backend.jobstore.create(tenant, "retention.apply", {}, "retention")
    with backend.db.session() as session:
        session.execute(update(JobRecord).where(JobRecord.id == job.id).values(
            state="running", runner=f"{socket.gethostname()}:{gone.pid}"))
    assert backend.jobstore.fail_orphans() >= 1
    found = backend.jobstore.get(tenant, job.id)
    assert found.state == "failed" and found.error is not None and "interrupted" in found.error


# -- the CLI: the operator names the folder ------------------------------------------------------------


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TENANTRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TENANTRY_DATABASE_URL", raising=False)
    from tenantry.app import build_services
    from tenantry.core.settings import Settings

    services = build_services(Settings())
    services.directory.create_tenant("default", "D")
    deliver_items(services, "default", "u1", 3)
    make_case(services, "default", "M", custodians=["u1"])
    services.indexer.flush()
    services.db.dispose()
    return CliRunner()


def test_cli_export_to_an_existing_file_exits_non_zero_with_a_message(cli: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me")
    result = cli.invoke(cli_app, ["case", "export", "M", "merger", str(target)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    said = " ".join(result.output.split())   # rich wraps long lines
    assert f"{target} is a file" in said and "Traceback" not in said
    assert target.read_text() == "keep me"


def test_cli_export_to_a_non_empty_folder_exits_non_zero_with_a_message(cli: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "other.txt").write_text("x")
    result = cli.invoke(cli_app, ["case", "export", "M", "merger", str(target)])
    assert result.exit_code == 1 and f"{target} is not empty" in " ".join(result.output.split()), result.output
    assert sorted(p.name for p in target.iterdir()) == ["other.txt"]


def test_cli_export_writes_the_folder_it_names_and_it_verifies(cli: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "out"
    result = cli.invoke(cli_app, ["case", "export", "M", "merger", str(target)])
    assert result.exit_code == 0, result.output
    assert "3 items exported" in result.output
    assert cli.invoke(cli_app, ["case", "verify-export", str(target)]).exit_code == 0


def test_export_job_runs_on_a_celery_worker_and_any_process_reports_it(
        app_client: TestClient, backend: Services, tenant: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tenantry.core.settings import Settings
    from tenantry.jobs import CeleryJobs
    from tests.connectors.test_jobs import REDIS, redis_reachable

    why = redis_reachable()
    if why:
        pytest.skip(why)
    h, base = admin(backend, tenant), f"/api/v1/tenants/{tenant}"
    deliver_items(backend, tenant, "u1", 4)
    case_id = case_with_custodian(app_client, base, h)
    backend.indexer.flush()
    queue = f"tenantry-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "TENANTRY_DATA_DIR": str(backend.settings.data_dir),
           "TENANTRY_DATABASE_URL": backend.settings.resolved_database_url,
           "TENANTRY_BROKER_URL": REDIS, "TENANTRY_BROKER_QUEUE": queue}
    worker = subprocess.Popen([sys.executable, "-m", "tenantry", "worker"], env=env, stdin=subprocess.DEVNULL,
                              stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        job = backend.ediscovery.start_export(tenant, case_id, "merger", "counsel")
        celery = CeleryJobs(Settings(data_dir=backend.settings.data_dir, broker_url=REDIS, broker_queue=queue))
        celery.enqueue(job.id)
        # The API of this process reports the job the worker process runs, from the jobs table.
        done = wait_for_job(app_client, base, h, job.id)
    finally:
        stop_worker(worker)
    assert done["state"] == "succeeded", (done, (tmp_path / "worker.log").read_text())
    assert done["progress"] == {"done": 4, "total": 4} and done["result"]["exported"] == 4
    r = app_client.get(f"{base}/cases/M/exports/{job.id}/download", headers=h)
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        archive.extractall(tmp_path / "unzipped")
    assert verify_export(tmp_path / "unzipped" / f"export-{job.id}") == []
