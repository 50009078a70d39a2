"""``nodus config`` through the real CLI: diff, apply, check and restore, history, time travel."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.cli.test_startup import _imported
from tests.conftest import PROJECT, nodus_command

SERVICE = """\
# service settings
[pool]
max = 100   # connections
min = 5

[log]
level = "info"
"""


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "service.toml"
    path.write_text(SERVICE)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _history(cli, path: Path) -> list[dict]:
    result = cli("config", "history", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()["generations"]


# --- diff -----------------------------------------------------------------------------


def test_diff_reports_changes_by_key_path_across_formats(cli, tmp_path: Path) -> None:
    old = tmp_path / "old.toml"
    old.write_text('[pool]\nmax = 100\nmin = 5\n[[servers]]\nhost = "a"\n[[servers]]\nhost = "b"\n')
    new = tmp_path / "new.json"
    new.write_text(
        json.dumps({"servers": [{"host": "a"}, {"host": "c", "port": 80}], "pool": {"max": "100"}})
    )
    result = cli("config", "diff", str(old), str(new), "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    by_path = {c["path"]: c for c in doc["changes"]}
    assert by_path["pool.max"]["kind"] == "changed"
    assert (by_path["pool.max"]["old_type"], by_path["pool.max"]["new_type"]) == (
        "integer",
        "string",
    )
    assert by_path["pool.min"]["kind"] == "removed" and by_path["pool.min"]["old"] == 5
    assert by_path["servers[1].host"] == {
        "path": "servers[1].host",
        "keys": ["servers", 1, "host"],
        "kind": "changed",
        "old": "b",
        "old_type": "string",
        "new": "c",
        "new_type": "string",
    }
    assert by_path["servers[1].port"]["kind"] == "added"
    assert doc["formats"] == ["toml", "json"] and doc["equal"] is False
    text = cli("config", "diff", str(old), str(new)).stdout
    assert '~ pool.max: 100 (integer) -> "100" (string)' in text
    assert "- pool.min = 5" in text and "+ servers[1].port = 80" in text


def test_diff_ignores_order_comments_and_formatting_and_exit_code(cli, tmp_path: Path) -> None:
    old = tmp_path / "a.toml"
    old.write_text('a = 1\n[t]\nx = "y"  # note\nz = [1, 2]\n')
    new = tmp_path / "b.toml"
    new.write_text('t = { z = [ 1,2 ], x = "y" }\n\n# moved\na = 1\n')
    same = cli("config", "diff", str(old), str(new), "--exit-code")
    assert same.exit_code == 0 and same.stdout == ""
    unified = cli("config", "diff", str(old), str(new), "--format", "unified")
    assert unified.exit_code == 0 and "+# moved" in unified.stdout
    new.write_text('t = { z = [2, 1], x = "y" }\na = 1.0\n')
    changed = cli("config", "diff", str(old), str(new), "--exit-code")
    assert changed.exit_code == 1
    assert "~ a: 1 (integer) -> 1.0 (float)" in changed.stdout
    assert "~ t.z: [1, 2] -> [2, 1]" in changed.stdout


def test_diff_of_invalid_or_missing_file_is_exit_2(cli, tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("a = 1\n")
    bad = tmp_path / "bad.toml"
    bad.write_text("a = = 1\n")
    result = cli("config", "diff", str(good), str(bad))
    assert result.exit_code == 2 and "invalid TOML" in result.stderr
    missing = cli("config", "diff", str(good), str(tmp_path / "nope.json"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_endless_or_piped_inputs_are_bounded_reads(cli, tmp_path: Path) -> None:
    """/dev/zero is refused after a bound (it used to end in a MemoryError, exit 70);
    a pipe, as ``diff <(ssh host cat FILE) FILE`` gives, is read."""
    good = tmp_path / "good.toml"
    good.write_text("a = 1\n")
    for args in (("diff", "/dev/zero", str(good)), ("apply", str(good), "/dev/zero")):
        result = cli("config", *args)
        assert result.exit_code == 2, result.stderr
        assert "/dev/zero: a configuration file larger than 16 MiB is not read" in result.stderr
    assert good.read_text() == "a = 1\n"
    fifo = tmp_path / "piped"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"printf 'a = 2\\n' > {fifo}"])
    result = cli("config", "diff", str(good), str(fifo))
    writer.wait()
    assert result.exit_code == 0 and "~ a: 1 -> 2" in result.stdout, result.stdout


def test_diff_imports_neither_duckdb_nor_tomlkit(tmp_path: Path) -> None:
    old = tmp_path / "a.toml"
    old.write_text("a = 1\n")
    new = tmp_path / "b.json"
    new.write_text('{"a": 2}')
    assert _imported(["config", "diff", str(old), str(new)]) == []


# --- apply ----------------------------------------------------------------------------


def test_set_keeps_every_other_line_and_records_a_generation(cli, target: Path) -> None:
    result = cli("config", "apply", str(target), "--set", "pool.max=500", "--set", 'log.file="x"')
    assert result.exit_code == 0, result.stderr
    assert target.read_text() == SERVICE.replace("max = 100 ", "max = 500 ").replace(
        'level = "info"\n', 'level = "info"\nfile = "x"\n'
    )
    assert "~ pool.max: 100 -> 500" in result.stdout
    generations = _history(cli, target)
    assert [(g["generation"], g["source"], g["status"]) for g in generations] == [
        (0, "baseline", "committed"),
        (1, "set", "committed"),
    ]
    assert generations[1]["sha256"] == _sha(target)
    assert {c["path"] for c in generations[1]["diff"]} == {"pool.max", "log.file"}
    journal = cli("journal", "--json").json()
    assert any(row["command"] == "config apply" for row in journal)


def test_apply_new_file_and_unchanged_is_a_no_op(cli, target: Path, tmp_path: Path) -> None:
    new = tmp_path / "new.toml"
    new.write_text("[pool]\nmax = 1\n")
    result = cli("config", "apply", str(target), str(new), "--json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert doc["generation"] == 1 and doc["changed"] and doc["sha256"] == _sha(new)
    assert target.read_bytes() == new.read_bytes()
    again = cli("config", "apply", str(target), str(new), "--json")
    assert again.exit_code == 0 and again.json()["generation"] is None
    assert len(_history(cli, target)) == 2


def test_failing_check_restores_the_previous_bytes(cli, target: Path) -> None:
    before = target.read_bytes()
    result = cli(
        "config", "apply", str(target), "--set", "pool.max=0",
        "--check", 'grep -q "max = 0" "$NODUS_CONFIG_TARGET" && echo refused && exit 3',
        "--json",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "restored" in result.stderr and "exited 3" in result.stderr
    assert target.read_bytes() == before
    doc = result.json()
    assert doc["check"]["outcome"] == "failed" and doc["check"]["exit_code"] == 3
    assert "refused" in doc["check"]["output"]
    assert (doc["generation"], doc["restored_generation"]) == (1, 2)
    generations = _history(cli, target)
    assert [(g["source"], g["check"] and g["check"]["outcome"]) for g in generations] == [
        ("baseline", None),
        ("set", "failed"),
        ("restore", None),
    ]
    assert generations[2]["sha256"] == generations[0]["sha256"] == _sha(target)
    summaries = [json.loads(row["summary"]) if isinstance(row["summary"], str) else row["summary"]
                 for row in cli("journal", "--json").json()]  # fmt: skip
    assert any(s.get("config") == "restore" for s in summaries)
    assert any(s.get("check") == "failed" for s in summaries)


def test_check_timeout_restores_and_is_reported(cli, target: Path) -> None:
    before = target.read_bytes()
    started = time.monotonic()
    result = cli(
        "config", "apply", str(target), "--set", "pool.min=1",
        "--check", "sleep 20", "--check-timeout", "0.3",
    )  # fmt: skip
    assert time.monotonic() - started < 10
    assert result.exit_code == 1 and "timed out" in result.stderr
    assert target.read_bytes() == before
    assert _history(cli, target)[1]["check"]["outcome"] == "timeout"


def test_a_check_that_escapes_its_group_cannot_stop_the_rollback(
    run_nodus, target: Path, tmp_path: Path
) -> None:
    """Issue 23.6: ``setsid sleep 40 & sleep 100`` kept nodus waiting on the pipe."""
    before = target.read_bytes()
    escaped = tmp_path / "escaped.pid"
    check = f"setsid sh -c 'echo $$ > {escaped}; exec sleep 40' & sleep 100"
    try:
        result = run_nodus(
            "config", "apply", str(target), "--set", "pool.min=1",
            "--check", check, "--check-timeout", "2", timeout=30,
        )  # fmt: skip
    finally:
        for _ in range(100):  # the escaped process is this test's to end
            if escaped.exists() and escaped.read_text().strip():
                os.kill(int(escaped.read_text()), 9)
                break
            time.sleep(0.05)
    assert result.returncode == 1 and "timed out" in result.stderr, result.stderr
    assert target.read_bytes() == before


def test_a_check_ends_with_its_shell_and_its_group_with_it(
    cli, target: Path, tmp_path: Path
) -> None:
    """A background child left in the check's group does not outlive the check."""
    marker = tmp_path / "late"
    result = cli(
        "config", "apply", str(target), "--set", "pool.min=2",
        "--check", f"(sleep 3; touch {marker}) & true", "--check-timeout", "60",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    time.sleep(4)
    assert not marker.exists(), "the check's background child kept running"


def test_passing_check_sees_the_new_content(cli, target: Path) -> None:
    result = cli(
        "config", "apply", str(target), "--set", "pool.max=7",
        "--check", 'grep -q "max = 7" "$NODUS_CONFIG_TARGET"',
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "check passed" in result.stderr
    assert _history(cli, target)[1]["check"]["outcome"] == "passed"


def test_expect_sha256_refuses_a_changed_file(cli, target: Path) -> None:
    reviewed = _sha(target)
    target.write_text(SERVICE + "# someone was here\n")
    before = target.read_bytes()
    refused = cli(
        "config", "apply", str(target), "--set", "pool.max=1", "--expect-sha256", reviewed
    )
    assert refused.exit_code == 1 and "refusing" in refused.stderr
    assert target.read_bytes() == before
    ok = cli("config", "apply", str(target), "--set", "pool.max=1", "--expect-sha256", _sha(target))
    assert ok.exit_code == 0, ok.stderr


def test_dry_run_changes_and_records_nothing(cli, target: Path) -> None:
    before = target.read_bytes()
    result = cli("config", "apply", str(target), "--set", "pool.max=1", "--dry-run")
    assert result.exit_code == 0 and "~ pool.max: 100 -> 1" in result.stdout
    assert target.read_bytes() == before
    assert _history(cli, target) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "pool=1"], "is a table"),
        (["--set", "log.level.x=1"], "not a table"),
        (["--set", "pool.max=abc"], "not a TOML value"),
        (["--unset", "pool.nope"], "no such key"),
        (["--set", "a b=1"], "invalid key path"),
        ([], "give either NEW or --set"),
    ],
)
def test_invalid_edits_are_refused_before_anything_changes(
    cli, target: Path, args: list[str], message: str
) -> None:
    before = target.read_bytes()
    result = cli("config", "apply", str(target), *args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert target.read_bytes() == before
    assert _history(cli, target) == []


def test_new_content_that_does_not_parse_is_refused(cli, target: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[pool\nmax = 1\n")
    before = target.read_bytes()
    result = cli("config", "apply", str(target), str(bad))
    assert result.exit_code == 2 and "invalid TOML" in result.stderr
    as_json = tmp_path / "c.json"
    as_json.write_text('{"pool": {"max": 1}}')
    wrong_format = cli("config", "apply", str(target), str(as_json))
    assert wrong_format.exit_code == 2
    assert target.read_bytes() == before
    json_target = tmp_path / "t.json"
    json_target.write_text("{}")
    assert cli("config", "apply", str(json_target), "--set", "a=1").exit_code == 2


def test_symlinked_target_replaces_the_file_it_points_to(cli, target: Path, tmp_path: Path) -> None:
    link = tmp_path / "current.toml"
    link.symlink_to(target)
    result = cli("config", "apply", str(link), "--set", "pool.max=9")
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert "max = 9 " in target.read_text()
    assert [g["source"] for g in _history(cli, link)] == ["baseline", "set"]


def test_mode_and_owner_are_kept(cli, target: Path) -> None:
    target.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(target, 4321, 4321)
    result = cli("config", "apply", str(target), "--set", "pool.max=2", "--check", "false")
    assert result.exit_code == 1
    for _ in range(2):
        info = target.stat()
        assert stat.S_IMODE(info.st_mode) == 0o640
        if os.geteuid() == 0:
            assert (info.st_uid, info.st_gid) == (4321, 4321)
        assert cli("config", "apply", str(target), "--set", "pool.max=3").exit_code in (0,)


def test_a_held_lock_makes_the_second_apply_fail_clearly(cli, target: Path) -> None:
    from nodus_cli.confops.locking import directory_lock

    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from nodus_cli.confops.locking import directory_lock\n"
        "with directory_lock(Path(sys.argv[1]), 5):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(30)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(target.parent)], stdout=subprocess.PIPE, env=env
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        result = cli("--lock-timeout", "0.3", "config", "apply", str(target), "--set", "a=1")
        assert result.exit_code == 2 and "another nodus is changing" in result.stderr
        assert target.read_text() == SERVICE
    finally:
        holder.kill()
        holder.wait()
    with directory_lock(target.parent, 1), directory_lock(target.parent, 1):
        pass  # re-entrant within one process


def test_concurrent_applies_are_serialised_without_lost_updates(
    target: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    processes = []
    for index in range(4):
        home = tmp_path / f"home{index % 2}"  # two workspaces: store lock and file lock
        processes.append(
            subprocess.Popen(
                [*nodus_command(), "--lock-timeout", "60", "config", "apply", str(target),
                 "--set", f"pool.k{index}={index}", "--check", "sleep 0.2"],
                env={**env, "NODUS_HOME": str(home)},
                stderr=subprocess.PIPE,
            )
        )  # fmt: skip
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    text = target.read_text()
    assert all(f"k{index} = {index}" in text for index in range(4)), text
    assert text.startswith(SERVICE.split("\n\n")[0])


# --- history, show, rollback, time travel ---------------------------------------------


def test_time_travel_with_at_and_generation(cli, target: Path) -> None:
    original = target.read_bytes()
    assert cli("config", "apply", str(target), "--set", "pool.max=200").exit_code == 0
    between = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    version_one = target.read_bytes()
    assert cli("config", "apply", str(target), "--set", "pool.max=300").exit_code == 0
    shown = cli("config", "show", str(target), "--at", between)
    assert shown.exit_code == 0 and shown.stdout.encode() == version_one
    assert cli("config", "show", str(target), "-g", "0").stdout.encode() == original
    assert cli("config", "show", str(target)).stdout.encode() == target.read_bytes()
    as_json = cli("config", "show", str(target), "--at", "now", "--json").json()
    assert as_json["generation"] == 2 and as_json["content"] == target.read_text()
    before_history = cli("config", "show", str(target), "--at", "2000-01-01T00:00:00Z")
    assert before_history.exit_code == 2 and "before history" in before_history.stderr
    assert cli("config", "show", str(target), "-g", "9").exit_code == 2
    both = cli("config", "show", str(target), "-g", "1", "--at", "now")
    assert both.exit_code == 2


def test_baseline_time_is_when_the_file_was_last_written(cli, target: Path) -> None:
    os.utime(target, (1_700_000_000, 1_700_000_000))
    assert cli("config", "apply", str(target), "--set", "pool.max=1").exit_code == 0
    shown = cli("config", "show", str(target), "--at", "2023-11-15T00:00:00Z")
    assert shown.exit_code == 0 and shown.stdout == SERVICE


def test_rollback_default_and_to_and_external_edits(cli, target: Path) -> None:
    original = target.read_bytes()
    assert cli("config", "apply", str(target), "--set", "pool.max=1").exit_code == 0
    one = target.read_bytes()
    assert cli("config", "apply", str(target), "--set", "pool.max=2").exit_code == 0
    result = cli("config", "rollback", str(target), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["rolled_back_to"] == 1 and target.read_bytes() == one
    assert cli("config", "rollback", str(target), "--to", "0").exit_code == 0
    assert target.read_bytes() == original
    target.write_text(SERVICE.replace("min = 5", "min = 6"))  # an edit by hand
    assert cli("config", "apply", str(target), "--set", "pool.max=3").exit_code == 0
    generations = _history(cli, target)
    sources = [g["source"] for g in generations]
    assert sources == ["baseline", "set", "set", "rollback", "rollback", "external", "set"]
    assert generations[5]["diff"][0]["path"] == "pool.min"
    dry = cli("config", "rollback", str(target), "--dry-run")
    assert dry.exit_code == 0 and "~ pool.max: 3 -> 100" in dry.stdout
    assert cli("config", "rollback", str(target), "--to", "42").exit_code == 2


def test_rollback_skips_content_whose_check_failed(cli, target: Path) -> None:
    assert cli("config", "apply", str(target), "--set", "pool.max=1").exit_code == 0
    good = target.read_bytes()
    assert (
        cli("config", "apply", str(target), "--set", "pool.max=2", "--check", "false").exit_code
        == 1
    )
    assert cli("config", "apply", str(target), "--set", "pool.max=3").exit_code == 0
    assert cli("config", "rollback", str(target)).exit_code == 0
    assert target.read_bytes() == good


def test_history_formats(cli, target: Path) -> None:
    assert _history(cli, target) == []
    assert cli("config", "apply", str(target), "--set", "pool.max=1").exit_code == 0
    table = cli("config", "history", str(target))
    assert table.exit_code == 0 and "baseline" in table.stdout
    csv = cli("config", "history", str(target), "--format", "csv").stdout.splitlines()
    assert csv[0] == "generation,time,user,source,status,sha256,size,changes,check"
    assert csv[2].split(",")[5] == _sha(target)
    assert cli("config", "show", str(target.parent / "other.toml")).exit_code == 2


# --- secrets (issue 23.5) ---------------------------------------------------------------

SECRET_TOML = '[db]\nhost = "db1"\npassword = "old-pass-1"\n'


def _every_path(root: Path) -> list[Path]:
    return [root, *root.rglob("*")]


def test_the_store_of_a_secret_is_private_to_its_owner(
    run_nodus, tmp_path: Path, nodus_home: Path
) -> None:
    secret = tmp_path / "secret.toml"
    secret.write_text(SECRET_TOML)
    secret.chmod(0o600)
    result = run_nodus("config", "apply", str(secret), "--set", "db.password='\"swordfish\"'")
    assert result.returncode == 0, result.stderr
    assert (nodus_home / "store.duckdb").read_bytes().count(b"swordfish")  # kept in full
    loose = {
        str(p.relative_to(nodus_home)): oct(stat.S_IMODE(p.lstat().st_mode))
        for p in _every_path(nodus_home)
        if p.lstat().st_mode & 0o077
    }
    assert loose == {}, "readable by other users"


def test_an_older_workspace_is_made_private_on_open(run_nodus, nodus_home: Path) -> None:
    assert run_nodus("init").returncode == 0
    nodus_home.chmod(0o755)
    (nodus_home / "store.duckdb").chmod(0o644)
    (nodus_home / "nodus.toml").chmod(0o644)
    assert run_nodus("info").returncode == 0
    assert stat.S_IMODE(nodus_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((nodus_home / "store.duckdb").stat().st_mode) == 0o600
    assert stat.S_IMODE((nodus_home / "nodus.toml").stat().st_mode) == 0o600


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_set_of_a_secret_is_masked_in_journal_and_output(cli, tmp_path: Path, form: str) -> None:
    secret = tmp_path / "secret.toml"
    secret.write_text(SECRET_TOML)
    value = "db.password='swordfish'"
    args = ["--set", value] if form == "separate" else [f"--set={value}"]
    result = cli("config", "apply", str(secret), *args)
    assert result.exit_code == 0, result.stderr
    assert "swordfish" not in result.stdout + result.stderr
    assert "old-pass-1" not in result.stdout + result.stderr
    assert "~ db.password: *** -> ***" in result.stdout
    journal = cli("journal", "--json")
    assert "swordfish" not in journal.stdout and "db.password=***" in journal.stdout
    history = cli("config", "history", str(secret), "--json")
    assert "swordfish" not in history.stdout and "old-pass-1" not in history.stdout
    shown = cli("config", "history", str(secret), "--json", "--show-secrets")
    assert "swordfish" in shown.stdout and "old-pass-1" in shown.stdout


def test_diff_masks_secret_values_in_every_format(cli, tmp_path: Path) -> None:
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text(SECRET_TOML + '[api]\ntoken = "t-old"\n')
    new.write_text(
        SECRET_TOML.replace("old-pass-1", "new-pass-2")
        + '[api]\ntoken = "t-new"\n[extra]\ncredentials = {user = "u", apiKey = "k-9"}\n'
    )
    leaks = ("old-pass-1", "new-pass-2", "t-old", "t-new", "k-9")
    for fmt in ("text", "json", "unified"):
        result = cli("config", "diff", str(old), str(new), "--format", fmt)
        assert result.exit_code == 0, result.stderr
        assert not [s for s in leaks if s in result.stdout], (fmt, result.stdout)
    text = cli("config", "diff", str(old), str(new)).stdout
    assert "~ db.password: *** -> ***" in text and "extra" in text
    shown = cli("config", "diff", str(old), str(new), "--show-secrets").stdout
    assert all(s in shown for s in leaks)


def test_dry_run_masks_too(cli, tmp_path: Path) -> None:
    secret = tmp_path / "secret.toml"
    secret.write_text(SECRET_TOML)
    result = cli("config", "apply", str(secret), "--set", "db.password='x-9'", "--dry-run")
    assert result.exit_code == 0
    assert "x-9" not in result.stdout and "old-pass-1" not in result.stdout
