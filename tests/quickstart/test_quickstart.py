from __future__ import annotations

from pathlib import Path


def test_quickstart_runs_end_to_end(cli, tmp_path: Path) -> None:
    target = tmp_path / "qs"
    result = cli("quickstart", str(target), "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["workspace"] == str(target / ".nodus")
    titles = [s["title"] for s in doc["steps"]]
    assert titles and all(titles)
    assert (target / ".nodus" / "store.duckdb").is_file()
    assert (target / "samples" / "app.jsonl").is_file()
    counts = cli("--home", str(target / ".nodus"), "info", "--json").json()["tables"]
    assert counts["logs"] > 0 and counts["metrics"] > 0


def test_quickstart_human_output_and_refuses_existing(cli, tmp_path: Path) -> None:
    target = tmp_path / "qs"
    result = cli("quickstart", str(target))
    assert result.exit_code == 0, result.stderr
    assert "[1]" in result.stderr
    again = cli("quickstart", str(target))
    assert again.exit_code == 2 and "already exists" in again.stderr
