"""The provisioning commands' own logic, without a database: what `config --set/--file` asks to change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from tenantry.provisioning.cli import config_changes


def test_set_values_are_json_or_plain_strings_and_actions_nest(tmp_path: Path) -> None:
    changes = config_changes(None, ["concurrency=8", "actions.delete=false", "deletion_threshold=null",
                                    "notification_email=ops@contoso.com"])
    assert changes == {"concurrency": 8, "actions": {"delete": False}, "deletion_threshold": None,
                       "notification_email": "ops@contoso.com"}


def test_set_wins_over_the_file_it_follows(tmp_path: Path) -> None:
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"concurrency": 2, "scoping_filters": []}), encoding="utf-8")
    assert config_changes(file, ["concurrency=4"]) == {"concurrency": 4, "scoping_filters": []}


@pytest.mark.parametrize(("content", "assignments", "message"), [
    ("[1, 2]", [], "must hold a JSON object"),
    ("{not json", [], "cannot read"),
    (None, ["concurrency"], "--set takes key=value"),
])
def test_bad_changes_are_refused_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                content: str | None, assignments: list[str], message: str) -> None:
    file = None
    if content is not None:
        file = tmp_path / "config.json"
        file.write_text(content, encoding="utf-8")
    with pytest.raises(typer.Exit) as exit_:
        config_changes(file, assignments)
    assert exit_.value.exit_code == 1
    assert message in capsys.readouterr().err
