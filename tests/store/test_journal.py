"""The journal: one row per invocation, arguments once and masked, a table that fits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodus_cli.masking import is_secret_name, mask_args
from nodus_cli.store import Invocation, open_store
from nodus_cli.store.db import JournalRun
from nodus_cli.workspace import Workspace


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("db.password", True),
        ("DB_PASSWD", True),
        ("apiKey", True),
        ("api_key", True),
        ("aws.secret_access_key", True),
        ("github-token", True),
        ("auth", True),
        ("private_key", True),
        ("credentials", True),
        ("dbpassword", True),
        ("--passphrase", True),
        ("--passphrase-file", False),
        ("--keyring", False),
        ("key_id", False),
        ("monkey", False),
        ("host", False),
        ("pool.max", False),
    ],
)
def test_which_names_look_secret(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_set_with_equals_is_masked_like_set_with_a_space() -> None:
    """Issue 23.5: ``--set=db.password=x`` reached the journal in clear."""
    assert mask_args(["--set=db.password=swordfish"]) == ["--set=db.password=***"]
    assert mask_args(["--set", "db.password=swordfish"]) == ["--set", "db.password=***"]
    assert mask_args(["--set=pool.max=5"]) == ["--set=pool.max=5"]


# --- one row per invocation (issue 15.6) ---------------------------------------------


def _journal(cli) -> list[dict]:
    result = cli("journal", "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()  # type: ignore[return-value]


def _lines(first: int, count: int) -> str:
    return "".join(
        f'{{"ts":"2024-01-01T00:00:{i % 60:02d}Z","msg":"m{i}"}}\n'
        for i in range(first, first + count)
    )


def test_ingest_of_16_files_writes_one_row_with_the_arguments_once(cli, tmp_path: Path) -> None:
    files = []
    for index in range(16):
        path = tmp_path / f"f{index:02d}.jsonl"
        path.write_text(_lines(index * 10, 10))
        files.append(str(path))
    result = cli("ingest", *files)
    assert result.exit_code == 0, result.stderr
    rows = [row for row in _journal(cli) if row["command"] == "ingest"]
    assert len(rows) == 1, f"{len(rows)} journal rows for one ingest"
    assert rows[0]["args"] == ["ingest", *files]
    assert rows[0]["summary"] == {"files": 16, "rows": 160, "quarantined": 0,
                                              "records": 160, "failed": 0}  # fmt: skip
    assert rows[0]["outcome"] == "ok"
    again = cli("ingest", *files)  # nothing new: nothing changed, nothing journaled
    assert again.exit_code == 0
    assert len([row for row in _journal(cli) if row["command"] == "ingest"]) == 1


def test_ingest_with_a_failed_file_names_it_in_its_one_row(cli, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(_lines(0, 3) + "not json\n")
    result = cli("ingest", str(tmp_path / "missing.log"), str(good))
    assert result.exit_code == 2
    (row,) = [row for row in _journal(cli) if row["command"] == "ingest"]
    summary = row["summary"]
    assert row["outcome"] == "error"
    assert summary["files"] == 2 and summary["failed"] == 1
    assert summary["rows"] == 3 and summary["quarantined"] == 1
    assert summary["failed_files"] == [str(tmp_path / "missing.log")]


def test_the_row_always_describes_what_was_committed(tmp_path: Path) -> None:
    """Each change updates the row in its own transaction; a rolled-back first insert
    leaves no row id behind."""
    ws = Workspace(tmp_path / "ws", "test")
    with open_store(ws, invocation=Invocation("test", ["test"])) as store:
        count = lambda: store.con.execute(  # noqa: E731
            "SELECT count(*) FROM journal WHERE command = 'test'"
        ).fetchone()[0]
        run = JournalRun()
        with store.one_journal_row(run):
            with pytest.raises(RuntimeError), store.change({"step": 1}):
                raise RuntimeError("first change fails")
            assert count() == 1  # the error row
            with store.change({"step": 2}):
                pass
            with store.change({"step": 3}):
                pass
        assert count() == 1
        store.finish_journal_row(run, "ok", {"steps": 3})
        row = store.con.execute(
            "SELECT outcome, summary FROM journal WHERE command = 'test'"
        ).fetchall()
    assert row == [("ok", '{"steps": 3}')]


def test_journal_masks_secrets_an_older_nodus_kept(cli, nodus_home: Path) -> None:
    assert cli("init").exit_code == 0
    with open_store(Workspace(nodus_home, "test")) as store:
        store.con.execute(
            'INSERT INTO journal (time, command, args, "user", host, outcome, summary) '
            "VALUES (now(), 'config apply', ?, 'u', 'h', 'ok', '{}')",
            [json.dumps(["config", "apply", "t.toml", "--set=db.password=swordfish"])],
        )
    for fmt in ("table", "json", "csv"):
        result = cli("journal", "--format", fmt)
        assert result.exit_code == 0, result.stderr
        assert "swordfish" not in result.stdout and "db.password=***" in result.stdout


def test_journal_table_shows_short_columns(cli, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(_lines(0, 2))
    assert cli("ingest", str(path)).exit_code == 0
    result = cli("journal")
    assert result.exit_code == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "id" in line)
    names = header.split()
    assert names == ["id", "time", "user", "command", "outcome", "summary", "args"]
    assert "host" not in header
    assert "files=1 rows=2 quarantined=0 failed=0" in result.stdout
    assert "migrations=[8 items]" in result.stdout or "migrations=[" in result.stdout


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["db.password", "api_key", "auth.token", "aws.secretAccessKey", "PASS"]),
    value=st.text(min_size=1, max_size=30),
    option=st.sampled_from(["--set", "--token", "--passphrase", "--api-key"]),
)
def test_no_spelling_of_a_secret_argument_reaches_the_journal(
    name: str, value: str, option: str
) -> None:
    secret = "S3CRET" + value
    spellings = [
        ["config", "apply", "t.toml", "--set", f"{name}={secret}"],
        ["config", "apply", "t.toml", f"--set={name}={secret}"],
        ["config", "apply", "t.toml", f"{name}={secret}"],
    ]
    if option != "--set":
        spellings += [["keys", "x", option, secret], ["keys", "x", f"{option}={secret}"]]
    for argv in spellings:
        assert not any(secret in arg for arg in mask_args(argv)), argv


def test_a_failed_apply_and_its_restore_are_one_row(cli, tmp_path: Path) -> None:
    target = tmp_path / "service.toml"
    target.write_text("[pool]\nmax = 1\n")
    result = cli("config", "apply", str(target), "--set", "pool.max=2", "--check", "exit 3")
    assert result.exit_code == 1
    rows = [row for row in _journal(cli) if row["command"] == "config apply"]
    assert len(rows) == 1, rows
    summary = rows[0]["summary"]
    assert summary["steps"] == ["intent", "apply", "restore"]
    assert summary["check"] == "failed" and summary["config"] == "restore"
