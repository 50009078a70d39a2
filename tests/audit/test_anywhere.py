"""An audit verifier any CI job can run anywhere (issue 18, items 6-10)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT, Invoke, nodus_command


def _tree(base: Path) -> Path:
    release = base / "release"
    (release / "bin").mkdir(parents=True)
    (release / "bin" / "app").write_bytes(b"\x7fELF" + bytes(range(256)))
    (release / "notes.txt").write_text("v1.2\n")
    return release


# --- 18.6: build from any directory -----------------------------------------------------


def test_build_works_from_any_directory_and_verify_uses_the_recorded_root(
    run_nodus, signer: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    release = _tree(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bundle = tmp_path / "release.bundle"
    built = run_nodus("audit", "build", str(release), "-o", str(bundle), "--json", cwd=elsewhere)
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["files_root"] == str(release)
    assert (
        str(release)
        in run_nodus("audit", "build", str(release), "-o", str(bundle), cwd=elsewhere).stderr
    )  # the chosen root is printed
    header = json.loads(bundle.read_bytes().split(b"\n")[1])
    assert header["root"] == str(release) and header["inputs"] == ["."]

    trust = ("--trust", str(signer))
    other = tmp_path / "other"
    other.mkdir()
    ok = run_nodus("audit", "verify", str(bundle), *trust, "--json", cwd=other)
    assert ok.returncode == 0, ok.stdout
    assert json.loads(ok.stdout)["files_root"] == str(release)
    (release / "notes.txt").write_text("v1.3\n")
    bad = run_nodus("audit", "verify", str(bundle), *trust, "--json", cwd=other)
    assert bad.returncode == 1 and json.loads(bad.stdout)["entries"]["changed"] == ["notes.txt"]


def test_several_paths_are_recorded_under_their_deepest_common_parent(
    cli: Invoke, signer: Path, tmp_path: Path
) -> None:
    release = _tree(tmp_path / "project")
    bundle = tmp_path / "two.bundle"
    built = cli(
        "audit", "build", str(release / "bin"), str(release / "notes.txt"), "-o", str(bundle),
        "--json",
    )  # fmt: skip
    assert built.exit_code == 0, built.stderr
    assert built.json()["files_root"] == str(release)  # type: ignore[index]
    paths = [json.loads(line)["path"] for line in bundle.read_bytes().split(b"\n")[2:4]]
    assert paths == ["bin/app", "notes.txt"]


def test_a_moved_tree_is_verified_with_root_or_from_the_current_directory(
    run_nodus, signer: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """On another machine the recorded root does not exist: --root, or the current dir."""
    release = _tree(tmp_path / "build-machine")
    bundle = tmp_path / "release.bundle"
    assert run_nodus("audit", "build", str(release), "-o", str(bundle)).returncode == 0
    checkout = tmp_path / "checkout"
    release.rename(checkout)
    trust = ("--trust", str(signer))
    assert (
        run_nodus("audit", "verify", str(bundle), "--root", str(checkout), *trust).returncode == 0
    )
    assert run_nodus("audit", "verify", str(bundle), *trust, cwd=checkout).returncode == 0


# --- 18.7: an empty bundle is valid -----------------------------------------------------


def test_an_empty_bundle_verifies_and_chains(cli: Invoke, signer: Path, tmp_path: Path) -> None:
    from nodus_cli.audit.merkle import EMPTY_ROOT

    quiet = tmp_path / "quiet.bundle"
    assert cli("audit", "seal", "logs", "-o", str(quiet)).exit_code == 0
    result = cli("audit", "verify", str(quiet), "--trust", str(signer))
    assert result.exit_code == 0, result.stdout
    assert "0 entries" in result.stdout
    report = cli("audit", "verify", str(quiet), "--trust", str(signer), "--json").json()
    assert report["size"] == 0 and report["root"] == EMPTY_ROOT.hex()  # type: ignore[index]

    from nodus_cli.store import open_store
    from nodus_cli.workspace import find_workspace

    with open_store(find_workspace()) as store:
        store.con.execute("INSERT INTO logs (level, message) VALUES ('info', 'busy day')")
    busy = tmp_path / "busy.bundle"
    assert cli("audit", "seal", "logs", "-o", str(busy)).exit_code == 0
    chained = cli("audit", "chain", str(quiet), str(busy), "--trust", str(signer))
    assert chained.exit_code == 0, chained.stdout
    empty_dir = tmp_path / "nothing-today"
    empty_dir.mkdir()
    files = tmp_path / "files.bundle"
    assert cli("audit", "build", str(empty_dir), "-o", str(files)).exit_code == 0
    assert cli("audit", "verify", str(files), "--trust", str(signer)).exit_code == 0


# --- 18.8: --store compares rows by identity --------------------------------------------


def test_store_comparison_names_exactly_the_changed_and_the_deleted_row(
    cli: Invoke, signer: Path, tmp_path: Path
) -> None:
    from nodus_cli.store import open_store
    from nodus_cli.workspace import find_workspace

    with open_store(find_workspace()) as store:
        store.con.execute(
            "INSERT INTO logs (level, message) SELECT 'info', 'line ' || i FROM range(30) t(i)"
        )
    bundle = tmp_path / "logs.bundle"
    assert cli("audit", "seal", "logs", "-o", str(bundle)).exit_code == 0
    with open_store(find_workspace()) as store:
        store.con.execute("UPDATE logs SET message = 'rewritten' WHERE message = 'line 4'")
        store.con.execute("DELETE FROM logs WHERE message = 'line 11'")
    result = cli("audit", "verify", str(bundle), "--store", "--json")
    assert result.exit_code == 1
    entries = result.json()["entries"]  # type: ignore[index]
    assert entries["changed"] == ["4"] and entries["missing"] == ["11"], entries
    assert entries["added"] == [] and entries["appended_since"] == 0


def test_row_alignment_by_content() -> None:
    from nodus_cli.audit.verify import align_rows

    sealed = [bytes([i]) for i in range(10)]
    assert align_rows(sealed, sealed).changed == []
    appended = align_rows(sealed, [*sealed, b"new"])
    assert appended.appended == 1 and not (appended.changed or appended.missing)
    inserted = align_rows(sealed, [*sealed[:3], b"forged", *sealed[3:]])
    assert inserted.inserted == [3] and not (inserted.changed or inserted.missing)
    both = align_rows(sealed, [*sealed[:2], b"x", *sealed[3:7], *sealed[8:]])
    assert both.changed == [2] and both.missing == [7]


# --- 18.9: no signing key; no temporary file left ---------------------------------------


def test_no_signing_key_is_a_hint_not_a_passphrase_prompt(run_nodus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "f").write_text("x\n")
    for args in (("build", str(tmp_path / "f")), ("seal", "logs")):
        result = run_nodus("audit", *args, "-o", str(tmp_path / "b"), input="")
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == (
            "nodus: error: no signing key: run `nodus keys generate --purpose sign`"
        )
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_build_leaves_no_temporary_file(
    signer: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for index in range(4):
        with (data / f"big{index}").open("wb") as handle:
            handle.truncate(1 << 30)  # sparse: hashing takes a while, the disk stays empty
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    process = subprocess.Popen(
        [*nodus_command(), "audit", "build", str(data), "-o", str(out / "b.bundle")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while not list(out.iterdir()) and process.poll() is None:
            time.sleep(0.01)  # wait until the temporary file exists, then interrupt
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert list(out.iterdir()) == []


# --- 18.10: verification anywhere -------------------------------------------------------


def _nowhere(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An empty directory and an environment in which no workspace can be found."""
    empty = tmp_path / "nowhere"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODUS_")}
    env.update(HOME=str(empty / "home"), XDG_DATA_HOME=str(empty / "xdg"))
    env.update(XDG_CONFIG_HOME=str(empty / "config"), XDG_CACHE_HOME=str(empty / "cache"))
    env["PYTHONPATH"] = str(PROJECT)
    return empty, env


def test_verify_runs_with_no_workspace_and_creates_nothing(
    cli: Invoke, signer: Path, tmp_path: Path
) -> None:
    release = _tree(tmp_path / "project")
    bundle = tmp_path / "release.bundle"
    assert cli("audit", "build", str(release), "-o", str(bundle)).exit_code == 0
    document = release / "notes.txt"
    assert cli("keys", "sign", str(document), "-o", str(tmp_path / "notes.sig")).exit_code == 0
    empty, env = _nowhere(tmp_path)
    commands = [
        ["audit", "verify", str(bundle), "--trust", str(signer)],
        ["audit", "chain", str(bundle), "--trust", str(signer)],
        ["keys", "verify", str(document), str(tmp_path / "notes.sig"), "--trust", str(signer)],
    ]
    for args in commands:
        result = subprocess.run(
            [*nodus_command(), *args], cwd=empty, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, (args, result.stderr)
        assert list(empty.iterdir()) == [], args


def test_verify_imports_no_store_engine(signer: Path, tmp_path: Path, cli: Invoke) -> None:
    """Starts fast: verifying needs cryptography, never DuckDB, numpy or the rest."""
    from tests.cli.test_startup import _imported

    release = _tree(tmp_path / "project")
    bundle = tmp_path / "release.bundle"
    assert cli("audit", "build", str(release), "-o", str(bundle)).exit_code == 0
    assert (
        cli("keys", "sign", str(release / "notes.txt"), "-o", str(tmp_path / "n.sig")).exit_code
        == 0
    )
    _, env = _nowhere(tmp_path)
    trust = ["--trust", str(signer)]
    for args in (
        ["audit", "verify", str(bundle), *trust],
        ["keys", "verify", str(release / "notes.txt"), str(tmp_path / "n.sig"), *trust],
    ):
        assert set(_imported(args, env)) <= {"cryptography"}, args


def _readme_ci_step() -> str:
    readme = (PROJECT / "README.md").read_text()
    match = re.search(r"<!-- ci-verify -->\s*```sh\n(.*?)```", readme, re.S)
    assert match, "README has no ci-verify shell step"
    return match.group(1)


def test_the_readme_ci_step_passes_intact_and_fails_tampered_bundles(
    cli: Invoke, signer: Path, tmp_path: Path
) -> None:
    release = _tree(tmp_path / "project")
    bundle = tmp_path / "release.bundle"
    assert cli("audit", "build", str(release), "-o", str(bundle)).exit_code == 0
    job, env = _nowhere(tmp_path)
    env.update(AUDIT_BUNDLE=str(bundle), AUDIT_TRUST=str(signer), AUDIT_ROOT=str(release))
    env["PATH"] = str(Path(nodus_command()[0]).parent) + os.pathsep + env["PATH"]
    if nodus_command()[0] == sys.executable:  # no console script: a shim on PATH
        shim = tmp_path / "bin" / "nodus"
        shim.parent.mkdir()
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nodus_cli "$@"\n')
        shim.chmod(0o755)
        env["PATH"] = f"{shim.parent}{os.pathsep}{env['PATH']}"

    def step() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", _readme_ci_step()], cwd=job, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip

    ok = step()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (release / "notes.txt").write_text("tampered\n")
    tampered = step()
    assert tampered.returncode != 0 and "notes.txt" in tampered.stdout + tampered.stderr
    (release / "notes.txt").write_text("v1.2\n")
    env["AUDIT_TRUST"] = str(tmp_path / "stranger.pub")
    from nodus_cli.keys.signing import SigningKey, dump_public_keys

    (tmp_path / "stranger.pub").write_bytes(dump_public_keys([SigningKey.generate().public()]))
    untrusted = step()
    assert untrusted.returncode != 0 and "cannot be verified" in untrusted.stdout + untrusted.stderr
