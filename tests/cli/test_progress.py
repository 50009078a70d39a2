"""Progress is shown where work takes a while on a terminal, and nowhere else (issue 15
item 5): the bar moves to 100% with the bytes and files done; in a pipe, in a file
(cron) or with -q stderr holds no trace of it; a quick command draws nothing."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from nodus_cli.progress import SILENT, reporter
from tests.conftest import nodus_command
from tests.terminal import run_with_pty, terminal_env

ESC = "\x1b"
# A delay of 0 shows the bar of a small, quick input (see progressbar.PROGRESS_DELAY).
NOW = {"NODUS_PROGRESS_DELAY": "0"}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return terminal_env({"TERM": "xterm", **(extra or {})})


def run_with_terminal_stderr(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> tuple[int, str, str]:
    """``nodus ARGS`` with stderr on a pseudo-terminal and stdout a pipe: (exit, out, err).

    ``err`` is everything the terminal received, escape sequences included.
    """
    return run_with_pty(*args, on="stderr", columns=120, env=_env(env), timeout=timeout)


def run_in_pipe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*nodus_command(), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=_env(env),
        timeout=120,
    )


def _lines(count: int, start: int = 0) -> str:
    return "".join(
        f'{{"time": "2024-01-01T00:{(i // 60) % 60:02d}:{i % 60:02d}Z", "level": "info", '
        f'"msg": "request {i} served"}}\n'
        for i in range(start, start + count)
    )


@pytest.fixture
def logs(tmp_path: Path) -> list[Path]:
    """Three small JSON-lines files, 25 kB in all."""
    files = []
    for number in range(3):
        path = tmp_path / f"app{number}.jsonl"
        path.write_text(_lines(100, number * 100))
        files.append(path)
    return files


def _total_text(paths: list[Path]) -> str:
    """The total size as the bar writes it (decimal units, like rich)."""
    from rich.filesize import decimal

    return decimal(sum(p.stat().st_size for p in paths))


# --- on a terminal ---------------------------------------------------------------------


def test_ingest_bar_reaches_100_percent_with_bytes_and_files(logs: list[Path]) -> None:
    code, out, err = run_with_terminal_stderr("ingest", *map(str, logs), env=NOW)
    assert code == 0, err
    assert "ingesting" in err
    total = _total_text(logs)
    assert re.search(rf"100%\s+{re.escape(total)}/{re.escape(total)}\s+3/3 files", err), err
    assert re.search(r"[0-2]/3 files", err), err  # it moved: not only the final state
    assert "3 file(s): 300 rows" in err
    assert out == ""


def test_the_bar_is_erased_and_messages_stay_whole(logs: list[Path]) -> None:
    _, _, err = run_with_terminal_stderr("ingest", *map(str, logs), env=NOW)
    # every summary line is printed whole after the bar (none is cut by a redraw)
    plain = re.sub(rf"{ESC}\[[0-9;?]*[A-Za-z]", "", err)
    for path in logs:
        assert f"{path}: jsonl, 100 records, 100 rows" in plain


def test_no_color_keeps_the_bar(logs: list[Path]) -> None:
    code, _, err = run_with_terminal_stderr("ingest", *map(str, logs), env={**NOW, "NO_COLOR": "1"})
    assert code == 0 and "100%" in err
    assert not re.search(rf"{ESC}\[(3\d|38;)", err)  # no colour codes


def test_quiet_draws_nothing_on_a_terminal(logs: list[Path]) -> None:
    code, _, err = run_with_terminal_stderr("-q", "ingest", *map(str, logs), env=NOW)
    assert code == 0 and err == ""


def test_a_quick_command_draws_no_bar(logs: list[Path]) -> None:
    """With the default delay (about a second) a small ingest prints only its summary."""
    env = {"NODUS_PROGRESS_DELAY": "30"}  # far longer than the run, however slow the machine
    code, _, err = run_with_terminal_stderr("ingest", *map(str, logs), env=env)
    assert code == 0
    assert "ingesting" not in err and "%" not in err and ESC not in err


def test_detect_shows_points(tmp_path: Path) -> None:
    metrics = tmp_path / "cpu.csv"
    rows = "".join(
        f"2024-01-01T{h:02d}:{m:02d}:00Z,{(h * 60 + m) % 7}\n" for h in range(4) for m in range(60)
    )
    metrics.write_text("time,value\n" + rows)
    run_in_pipe("ingest", str(metrics))
    code, _, err = run_with_terminal_stderr("detect", "cpu", env=NOW)
    assert code == 0, err
    assert re.search(r"100%\s+240/240 points", err), err


PASSPHRASE = "progress-test-passphrase"


@pytest.fixture
def keyring(nodus_home: Path) -> dict[str, str]:
    """A signing and an encryption key in this test's workspace; the env to unlock them."""
    from nodus_cli.keys.keyring import Keyring
    from nodus_cli.workspace import Workspace

    unlocked = Keyring(Workspace(nodus_home, "--home").ensure()).unlock(
        PASSPHRASE.encode(), create=True
    )
    unlocked.generate("sign")
    unlocked.generate("encrypt")
    unlocked.save()
    return {**NOW, "NODUS_PASSPHRASE": PASSPHRASE}


def test_audit_build_and_verify_show_bytes_and_files(
    logs: list[Path], keyring: dict[str, str], tmp_path: Path
) -> None:
    bundle = tmp_path / "logs.bundle"
    root = str(tmp_path)
    built = run_with_terminal_stderr(
        "audit", "build", *map(str, logs), "--root", root, "-o", str(bundle), env=keyring
    )
    assert built[0] == 0, built[2]
    total = re.escape(_total_text(logs))
    assert re.search(rf"hashing files.*100%\s+{total}/{total}\s+3/3 files", built[2]), built[2]
    code, out, err = run_with_terminal_stderr(
        "audit", "verify", str(bundle), "--root", root, env=keyring
    )
    assert code == 0, out + err
    assert re.search(rf"verifying.*100%\s+{total}/{total}\s+3/3 files", err), err


def test_keys_seal_and_open_show_bytes(
    logs: list[Path], keyring: dict[str, str], tmp_path: Path
) -> None:
    sealed = tmp_path / "app0.age"
    code, _, err = run_with_terminal_stderr(
        "keys", "seal", str(logs[0]), "-r", "@keyring", "-o", str(sealed), env=keyring
    )
    assert code == 0, err
    size = re.escape(_total_text(logs[:1]))
    assert re.search(rf"sealing app0.jsonl.*100%\s+{size}/{size}", err), err
    opened = tmp_path / "app0.out"
    code, _, err = run_with_terminal_stderr(
        "keys", "open", str(sealed), "-o", str(opened), env=keyring
    )
    assert code == 0, err
    assert "opening app0.age" in err and opened.read_bytes() == logs[0].read_bytes()


def test_export_shows_its_tables_and_stage(logs: list[Path], tmp_path: Path) -> None:
    run_in_pipe("ingest", *map(str, logs))
    code, _, err = run_with_terminal_stderr(
        "export", "logs", "--to", str(tmp_path / "out"), env=NOW
    )
    assert code == 0, err
    assert "exporting" in err and "1/1 tables" in err
    # the stage shown is the one running at the last redraw (a fast export skips some)
    assert re.search(r"logs: (finding new rows|writing 300 rows|publishing 3 files)", err), err


# --- in a pipe, in a file --------------------------------------------------------------


def test_nothing_in_a_pipe(logs: list[Path]) -> None:
    result = run_in_pipe("ingest", *map(str, logs), env=NOW)
    assert result.returncode == 0
    err = result.stderr.decode()
    assert ESC not in err and "ingesting" not in err and "\r" not in err
    assert err.splitlines()[-1] == "3 file(s): 300 rows, 0 quarantined, 0 failed"


@pytest.mark.parametrize("command", ["detect", "export"])
def test_nothing_in_a_pipe_for_other_commands(command: str, logs: list[Path], tmp_path) -> None:
    run_in_pipe("ingest", *map(str, logs))
    args = (
        ["export", "logs", "--to", str(tmp_path / "out")]
        if command == "export"
        else ["detect", "--sql", "SELECT time, length(message) AS value FROM logs"]
    )
    result = run_in_pipe(*args, env=NOW)
    assert result.returncode == 0, result.stderr
    assert ESC.encode() not in result.stderr and b"\r" not in result.stderr
    assert len(result.stderr.decode().splitlines()) == 1  # the summary line alone


def test_nothing_in_a_file_under_cron(logs: list[Path], tmp_path: Path) -> None:
    log = tmp_path / "cron.log"
    with log.open("wb") as handle:
        result = subprocess.run(
            [*nodus_command(), "ingest", *map(str, logs)],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=handle,
            env=_env(NOW),
            timeout=120,
        )
    assert result.returncode == 0
    text = log.read_text()
    assert ESC not in text and "ingesting" not in text and "%" not in text


# --- the library side ------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.totals: list[tuple[float | None, int | None]] = []
        self.done = 0.0
        self.items = 0
        self.stages: list[str] = []

    def total(self, amount: float | None, items: int | None = None) -> None:
        self.totals.append((amount, items))

    def advance(self, amount: float = 0, items: int = 0) -> None:
        self.done += amount
        self.items += items

    def stage(self, text: str) -> None:
        self.stages.append(text)


def test_ingest_reports_every_byte_on_disk_and_every_file(logs: list[Path], tmp_path) -> None:
    import gzip

    from nodus_cli.ingest.engine import IngestOptions, ingest
    from nodus_cli.store import open_store
    from nodus_cli.workspace import find_workspace

    packed = tmp_path / "packed.jsonl.gz"
    packed.write_bytes(gzip.compress(_lines(2000, 500).encode()))
    paths = [*logs, packed, tmp_path / "missing.jsonl"]
    size = sum(p.stat().st_size for p in paths[:-1])
    recorder = Recorder()
    with open_store(find_workspace(None)) as store:
        report = ingest(
            store, [str(p) for p in paths], IngestOptions(window_bytes=4096), on_progress=recorder
        )
    assert len(report.failed) == 1
    assert recorder.totals[0] == (size, 5)
    assert recorder.done == size and recorder.items == 5


def test_a_plain_function_still_hears_the_amounts() -> None:
    heard: list[float] = []
    progress = reporter(heard.append)
    progress.total(10, items=2)
    progress.advance(4)
    progress.advance(0, items=1)  # a file done, no bytes: the function is not called
    progress.stage("x")
    assert heard == [4]
    assert reporter(None) is SILENT
