"""One scheduler for every part (issue #11): domains register their jobs and due work; periodic work (the daily
retention, the SCIM log's sweep) is claimed in the database, so any number of schedulers run it once a day."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path
from typing import Any

from tenantry.core.clock import utcnow
from tenantry.core.schedule import claim_periodic
from tenantry.domains import registry
from tenantry.jobs import InlineJobs, Scheduler
from tests.conftest import periodic_work_due

SRC = Path(__file__).resolve().parents[1] / "src"


class CountingJobs(InlineJobs):
    """Records what is submitted without running it (the retention of every tenant is not this test's work)."""

    def __init__(self, services: Any) -> None:
        super().__init__(services)
        self.submitted: list[tuple[str, dict[str, Any]]] = []

    def submit(self, name: str, **kwargs: Any) -> str:
        self.submitted.append((name, kwargs))
        return str(len(self.submitted))


def test_periodic_work_is_claimed_once_across_schedulers_and_again_after_its_interval(
        backend, tenant: str) -> None:  # noqa: ANN001
    periodic_work_due(backend)
    now = utcnow()
    one, two = CountingJobs(backend), CountingJobs(backend)
    Scheduler(backend, one, interval=1).tick(now)
    Scheduler(backend, two, interval=1).tick(now)   # a second process's scheduler, the same moment
    daily = {"retention.apply", "scim_log.purge"}
    assert {name for name, _ in one.submitted} >= daily
    assert not {name for name, _ in two.submitted} & daily
    tenants = {row.id for row in backend.directory.list_tenants()}
    assert {kw["tenant"] for name, kw in one.submitted if name == "retention.apply"} == tenants
    Scheduler(backend, two, interval=1).tick(now + timedelta(hours=23))
    assert not {name for name, _ in two.submitted} & daily
    Scheduler(backend, two, interval=1).tick(now + timedelta(days=1))
    assert {name for name, _ in two.submitted} >= daily


def test_claim_periodic_answers_true_once_per_interval(backend) -> None:  # noqa: ANN001
    now = utcnow()
    name = f"test.{now.timestamp()}"
    assert claim_periodic(backend.db, name, timedelta(hours=1), now) is True
    assert claim_periodic(backend.db, name, timedelta(hours=1), now) is False
    assert claim_periodic(backend.db, name, timedelta(hours=1), now + timedelta(minutes=59)) is False
    assert claim_periodic(backend.db, name, timedelta(hours=1), now + timedelta(hours=1)) is True


def test_every_job_the_scheduler_hands_out_is_a_registered_task(backend) -> None:  # noqa: ANN001
    reg = registry()
    named = {name for p in reg.periodic for name, _ in p.jobs(backend)}
    assert named <= set(reg.tasks)
    assert {"connector.run", "provisioning.run", "retention.apply", "scim_log.purge"} <= set(reg.tasks)
    assert {"retention.apply", "ediscovery.export"} <= set(reg.tracked)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The tenantry modules ``path`` imports, at the top or inside functions (not under TYPE_CHECKING)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    full = f"{child.module}.{alias.name}"
                    found.add(full if full in modules else child.module)
            elif isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found & modules


def test_no_module_of_tenantry_imports_itself_back_through_others() -> None:
    paths = {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
             for p in SRC.rglob("*.py")}
    graph = {name: _imports(path, set(paths)) - {name} for name, path in paths.items()}
    cycles = []

    def walk(node: str, trail: list[str], done: set[str]) -> None:
        for nxt in graph[node]:
            if nxt in trail:
                cycles.append(" → ".join([*trail[trail.index(nxt):], nxt]))
            elif nxt not in done:
                walk(nxt, [*trail, nxt], done)
        done.add(node)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            walk(name, [name], done)
    assert not cycles, "import circles:\n" + "\n".join(sorted(set(cycles))[:20])
