"""``-o PATH`` and every other file nodus writes go through one writer (``atomic_writer``).

A regular file (or a new path) is replaced atomically; a device, a FIFO, a link to an
open descriptor and ``-`` are written in place; a symlink is followed and its target
replaced, the link kept. The tests run as root, as CI does, so a device node can be made.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from nodus_cli.fsutil import atomic_write, atomic_writer
from nodus_cli.keys.keyring import SIGN, Keyring
from nodus_cli.workspace import Workspace

PASSPHRASE = "correct horse battery staple"


def _null_device(path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.fail("these tests make a device node with mknod: run them as root (CI does)")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the same device as /dev/null
    return path


class FifoReader:
    """Read a FIFO whole in a thread, so that the writer's open() does not block forever."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.data = b""
        self._thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self._thread.start()

    def _read(self, path: Path) -> None:
        with open(path, "rb") as handle:
            self.data = handle.read()

    def result(self) -> bytes:
        self._thread.join(timeout=60)
        return self.data


# --- the library writer ------------------------------------------------------------


def test_a_device_stays_a_device(tmp_path: Path) -> None:
    device = _null_device(tmp_path / "null")
    atomic_write(device, b"discarded\n")
    assert stat.S_ISCHR(device.lstat().st_mode)
    assert device.lstat().st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]  # no temporary file left


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    reader = FifoReader(fifo)
    atomic_write(fifo, b"through the pipe\n")
    assert reader.result() == b"through the pipe\n"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_symlink_to_a_regular_file_is_kept_and_its_target_replaced(tmp_path: Path) -> None:
    target = tmp_path / "real.txt"
    target.write_bytes(b"old\n")
    target.chmod(0o644)
    link = tmp_path / "link.txt"
    link.symlink_to("real.txt")
    atomic_write(link, b"new\n")
    assert link.is_symlink() and os.readlink(link) == "real.txt"
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # a replaced file keeps its mode


def test_a_chain_of_relative_symlinks_through_a_linked_directory(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "file").write_bytes(b"old")
    (tmp_path / "dirlink").symlink_to("real")
    (tmp_path / "dirlink" / "hop").symlink_to("../real/file")
    (tmp_path / "start").symlink_to("dirlink/hop")
    atomic_write(tmp_path / "start", b"new")
    assert (tmp_path / "real" / "file").read_bytes() == b"new"
    assert (tmp_path / "start").is_symlink() and (tmp_path / "real" / "hop").is_symlink()


def test_a_dangling_symlink_gets_its_target_created(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to("missing.txt")
    atomic_write(link, b"made\n")
    assert link.is_symlink() and (tmp_path / "missing.txt").read_bytes() == b"made\n"


def test_a_symlink_loop_is_an_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError):
        atomic_write(tmp_path / "a", b"x")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path, b"x")


def test_a_failed_write_through_a_symlink_leaves_the_target(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.write_bytes(b"old")
    (tmp_path / "link").symlink_to("real")
    with pytest.raises(RuntimeError), atomic_writer(tmp_path / "link") as handle:
        handle.write(b"half")
        raise RuntimeError
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


# --- every command with -o (keys export stands for them: no passphrase needed) ------


@pytest.fixture(scope="module")
def keyring_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keyring")
    unlocked = Keyring(Workspace(root, "test").ensure()).unlock(PASSPHRASE.encode(), create=True)
    unlocked.generate(SIGN)
    unlocked.save()
    return root / "keyring"


@pytest.fixture
def exporting(keyring_template: Path, nodus_home: Path) -> list[str]:
    workspace = Workspace(nodus_home, "test").ensure()
    shutil.rmtree(workspace.keyring_dir)
    shutil.copytree(keyring_template, workspace.keyring_dir)
    return ["keys", "export", "--purpose", "sign"]


def test_cli_output_to_a_device(run_nodus, exporting: list[str], tmp_path: Path) -> None:
    device = _null_device(tmp_path / "devtest-null")
    result = run_nodus(*exporting, "-o", str(device))
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(device.lstat().st_mode), "the device was replaced by a regular file"


def test_cli_output_to_a_fifo(run_nodus, exporting: list[str], tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    reader = FifoReader(fifo)
    result = run_nodus(*exporting, "-o", str(fifo))
    assert result.returncode == 0, result.stderr
    assert reader.result().startswith(b"# nodus signing public keys")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_cli_output_to_a_symlink_to_stdout(run_nodus, exporting: list[str], tmp_path: Path) -> None:
    link = tmp_path / "out"
    link.symlink_to("/proc/self/fd/1")
    result = run_nodus(*exporting, "-o", str(link))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# nodus signing public keys")
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


def test_cli_output_to_a_symlink_to_a_file(run_nodus, exporting: list[str], tmp_path: Path) -> None:
    (tmp_path / "keys.txt").write_text("old\n")
    link = tmp_path / "current"
    link.symlink_to("keys.txt")
    result = run_nodus(*exporting, "-o", str(link))
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert (tmp_path / "keys.txt").read_text().startswith("# nodus signing public keys")


def test_cli_output_dash_is_stdout(run_nodus, exporting: list[str], tmp_path: Path) -> None:
    result = run_nodus(*exporting, "-o", "-", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# nodus signing public keys")
    assert not (tmp_path / "-").exists()


def test_atomic_write_dash_is_stdout_not_a_file_named_dash(tmp_path: Path, monkeypatch) -> None:
    """``atomic_write`` itself takes ``-``: commands that call it need no case of their own."""
    monkeypatch.chdir(tmp_path)
    atomic_write(Path("-"), b"")
    assert not (tmp_path / "-").exists()
