"""``nodus audit`` through the real CLI: exit codes are the contract CI trusts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Invoke


def _tree(root: Path) -> Path:
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "a.txt").write_text("alpha\n")
    (root / "data" / "b.bin").write_bytes(bytes(range(256)) * 10)
    (root / "data" / "sub" / "c.txt").write_text("gamma\n")
    return root / "data"


def _build(cli: Invoke, root: Path, out: Path, *extra: str) -> dict[str, Any]:
    result = cli(
        "audit", "build", str(root / "data"), "--root", str(root), "-o", str(out), "--json", *extra
    )
    assert result.exit_code == 0, result.stderr
    return result.json()  # type: ignore[return-value]


def _verify(cli: Invoke, bundle: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("audit", "verify", str(bundle), "--json", *args)
    return result.exit_code, (json.loads(result.stdout) if result.stdout.strip() else {})


def _add_logs(cli: Invoke, count: int, offset: int = 0) -> None:
    from nodus_cli.store import open_store
    from nodus_cli.workspace import find_workspace

    with open_store(find_workspace()) as store:
        store.con.execute(
            "INSERT INTO logs (time, level, message) SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00'"
            " + to_seconds(i), 'info', 'line ' || i FROM range(?, ?) t(i)",
            [offset, offset + count],
        )


def test_files_bundle_verifies_and_names_every_change(
    cli: Invoke, signer: Path, tmp_path: Path
) -> None:
    _tree(tmp_path)
    bundle = tmp_path / "files.bundle"
    sealed = _build(cli, tmp_path, bundle)
    assert sealed["size"] == 3 and sealed["kind"] == "files"
    code, report = _verify(cli, bundle, "--root", str(tmp_path), "--trust", str(signer))
    assert code == 0, report
    assert report["entries"]["checked"] == 3 and report["signature"]["status"] == "ok"

    (tmp_path / "data" / "a.txt").write_text("ALPHA\n")
    (tmp_path / "data" / "sub" / "c.txt").unlink()
    (tmp_path / "data" / "new.txt").write_text("added\n")
    code, report = _verify(cli, bundle, "--root", str(tmp_path), "--trust", str(signer))
    assert code == 1
    assert report["entries"]["changed"] == ["data/a.txt"]
    assert report["entries"]["missing"] == ["data/sub/c.txt"]
    assert report["entries"]["added"] == ["data/new.txt"]


def test_embedded_bundle_is_self_contained(
    cli: Invoke, signer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    bundle = tmp_path / "embedded.bundle"
    _build(cli, tmp_path, bundle, "--embed")
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)  # no files here: only the embedded copies are checked
    code, report = _verify(cli, bundle, "--trust", str(signer))
    assert code == 0, report


def test_rows_chain_extends_and_detects_replay_and_gaps(
    cli: Invoke, signer: Path, tmp_path: Path
) -> None:
    _add_logs(cli, 50)
    bundles = []
    for step in range(3):
        out = tmp_path / f"logs{step}.bundle"
        sealed = cli("audit", "seal", "logs", "-o", str(out), "--json")
        assert sealed.exit_code == 0, sealed.stderr
        document = sealed.json()
        assert document["extends_prev"] is (step > 0)  # type: ignore[index]
        bundles.append(str(out))
        _add_logs(cli, 7, offset=50 + 7 * step)
    trust = ("--trust", str(signer))
    assert cli("audit", "chain", *bundles, *trust).exit_code == 0
    assert _verify(cli, Path(bundles[1]), "--prev", bundles[0], *trust)[0] == 0
    replay = _verify(cli, Path(bundles[0]), "--prev", bundles[2], *trust)
    assert replay[0] == 1 and replay[1]["chain"]["status"] == "broken"
    gap = cli("audit", "chain", bundles[0], bundles[2], *trust, "--json")
    assert gap.exit_code == 1 and "broken chain" in gap.stdout
    reordered = cli("audit", "chain", bundles[1], bundles[0], bundles[2], *trust)
    assert reordered.exit_code == 1


def test_journal_is_a_valid_table_and_since_filters(
    cli: Invoke, signer: Path, tmp_path: Path
) -> None:
    _add_logs(cli, 10)
    journal = tmp_path / "journal.bundle"
    assert cli("audit", "seal", "journal", "-o", str(journal)).exit_code == 0
    assert _verify(cli, journal)[0] == 0  # the workspace's own key is trusted by default
    recent = tmp_path / "recent.bundle"
    sealed = cli(
        "audit", "seal", "logs", "--since", "2024-01-01T00:00:05Z", "-o", str(recent), "--json"
    )
    assert sealed.json()["size"] == 5  # type: ignore[index]


def test_exit_codes_for_missing_empty_malformed_untrusted(
    cli: Invoke, signer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("audit", "verify", str(tmp_path / "absent.bundle")).exit_code == 2
    (tmp_path / "empty").write_bytes(b"")
    assert cli("audit", "verify", str(tmp_path / "empty")).exit_code == 2
    (tmp_path / "junk").write_text("nodus-bundle/v1\n{not json\n")
    assert cli("audit", "verify", str(tmp_path / "junk")).exit_code == 2
    (tmp_path / "future").write_text("nodus-bundle/v9\n")
    assert cli("audit", "verify", str(tmp_path / "future")).exit_code == 3

    nothing = tmp_path / "nothing.bundle"
    assert cli("audit", "seal", "logs", "-o", str(nothing)).exit_code == 0
    code, report = _verify(cli, nothing, "--trust", str(signer))
    assert code == 0 and report["size"] == 0, report  # a quiet day is a valid bundle

    _add_logs(cli, 3)
    bundle = tmp_path / "logs.bundle"
    assert (
        cli("audit", "seal", "logs", "-o", str(bundle), "--origin", "ops.example/logs").exit_code
        == 0
    )
    monkeypatch.setenv("NODUS_HOME", str(tmp_path / "stranger"))
    code, report = _verify(cli, bundle)
    assert code == 3 and report["signature"]["status"] == "untrusted"
    assert _verify(cli, bundle, "--trust", str(signer))[0] == 0


def test_proofs_round_trip_and_stay_small(cli: Invoke, signer: Path, tmp_path: Path) -> None:
    _tree(tmp_path)
    bundle = tmp_path / "files.bundle"
    _build(cli, tmp_path, bundle)
    proof = tmp_path / "b.proof"
    made = cli("audit", "prove", str(bundle), "data/b.bin", "-o", str(proof), "--json").json()
    assert made["proof_bytes"] <= 32 * math.ceil(math.log2(made["size"]))  # type: ignore[index]
    entry = tmp_path / "data" / "b.bin"
    trust = ("--trust", str(signer))
    assert cli("audit", "verify-proof", str(proof), str(entry), *trust).exit_code == 0
    assert (
        cli("audit", "verify-proof", str(proof), str(tmp_path / "data" / "a.txt"), *trust).exit_code
        == 1
    )
    assert cli("audit", "prove", str(bundle), "data/none", "-o", str(proof)).exit_code == 2

    _add_logs(cli, 40)
    rows = tmp_path / "rows.bundle"
    assert cli("audit", "seal", "logs", "-o", str(rows)).exit_code == 0
    row_proof = tmp_path / "row.proof"
    assert cli("audit", "prove", str(rows), "17", "-o", str(row_proof)).exit_code == 0
    line = rows.read_text().splitlines()[2 + 17]
    (tmp_path / "row.json").write_text(line + "\n")
    assert (
        cli("audit", "verify-proof", str(row_proof), str(tmp_path / "row.json"), *trust).exit_code
        == 0
    )


def test_ed25519_line_opens_with_a_standard_vkey(cli: Invoke, signer: Path, tmp_path: Path) -> None:
    from nodus_cli.audit import note
    from nodus_cli.audit.bundle import read_bundle

    _tree(tmp_path)
    bundle = tmp_path / "files.bundle"
    _build(cli, tmp_path, bundle)
    vkey = _verify(cli, bundle, "--root", str(tmp_path), "--trust", str(signer))[1]["signature"][
        "vkey"
    ]
    opened = note.open_note(read_bundle(bundle).checkpoint_note, [note.parse_vkey(vkey)])
    assert [v.name for v in opened.verified] == ["nodus/files"]
    assert len(opened.unverified) == 1  # the ML-DSA-65 line, unknown to a plain verifier


def test_paths_never_leave_the_root(cli: Invoke, signer: Path, tmp_path: Path, signing_key) -> None:  # type: ignore[no-untyped-def]
    from nodus_cli.audit import merkle
    from nodus_cli.audit.bundle import BundleWriter, file_entry
    from nodus_cli.audit.seal import bundle_header, finish_bundle

    outside = tmp_path / "secret.txt"
    outside.write_text("do not read\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.txt").symlink_to(outside)
    leaf = merkle.leaf_hash(b"do not read\n")
    hostile = tmp_path / "hostile.bundle"
    with hostile.open("wb") as handle:  # a correctly signed bundle naming hostile paths
        writer = BundleWriter(
            handle,
            {
                **bundle_header("files", "nodus/files", 3, None, signing_key),
                "inputs": ["."],
                "embed": False,
            },
        )
        for path in ("../secret.txt", str(outside), "link.txt"):
            writer.add(file_entry(path, 12, leaf), leaf)
        finish_bundle(
            writer, kind="files", output=hostile, origin="nodus/files", prev=None, key=signing_key
        )
    code, report = _verify(cli, hostile, "--root", str(root), "--trust", str(signer))
    assert code == 1
    assert sorted(report["entries"]["unsafe"]) == sorted(
        ["../secret.txt", str(outside), "link.txt"]
    )
    assert report["entries"]["changed"] == []

    assert (
        cli(
            "audit", "build", str(root), "--root", str(root), "-o", str(tmp_path / "x.bundle")
        ).exit_code
        == 2
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "f.txt").write_text("outside\n")
    (root / "link.txt").unlink()
    (root / "data").symlink_to(elsewhere)  # an input directory swapped for a link out
    code, report = _verify(cli, hostile, "--root", str(root), "--trust", str(signer))
    assert code == 1 and report["entries"]["added"] == []


def test_verify_exit_code_in_a_real_process(run_nodus, signer: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _tree(tmp_path)
    bundle = tmp_path / "files.bundle"
    built = run_nodus("audit", "build", "data", "-o", str(bundle), cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    ok = run_nodus("audit", "verify", str(bundle), "--trust", str(signer), cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "data" / "a.txt").write_text("tampered\n")
    bad = run_nodus("audit", "verify", str(bundle), "--trust", str(signer), "--json", cwd=tmp_path)
    assert bad.returncode == 1 and json.loads(bad.stdout)["entries"]["changed"] == ["a.txt"]


def test_store_comparison_names_changed_and_missing_rows(
    cli: Invoke, signer: Path, tmp_path: Path
) -> None:
    from nodus_cli.store import open_store
    from nodus_cli.workspace import find_workspace

    _add_logs(cli, 20)
    bundle = tmp_path / "logs.bundle"
    assert cli("audit", "seal", "logs", "-o", str(bundle)).exit_code == 0
    _add_logs(cli, 3, offset=20)  # appended later: reported, not a failure
    code, report = _verify(cli, bundle, "--store")
    assert code == 0 and report["entries"]["appended_since"] == 3
    with open_store(find_workspace()) as store:
        store.con.execute("UPDATE logs SET message = 'rewritten' WHERE message = 'line 4'")
        store.con.execute(
            "DELETE FROM logs WHERE message IN ('line 19', 'line 20', 'line 21', 'line 22')"
        )
    code, report = _verify(cli, bundle, "--store")
    assert code == 1
    assert report["entries"]["changed"] == ["4"] and report["entries"]["missing"] == ["19"]


def test_key_not_valid_at_signing_time_fails(tmp_path: Path, signing_key, trusted) -> None:  # type: ignore[no-untyped-def]
    import dataclasses
    import datetime as dt

    from nodus_cli.audit.seal import build_files
    from nodus_cli.audit.verify import verify_bundle

    _tree(tmp_path)
    bundle = tmp_path / "files.bundle"
    build_files([tmp_path / "data"], bundle, root=tmp_path, key=signing_key)
    assert verify_bundle(bundle, trusted, root=tmp_path).exit_code == 0
    long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    revoked = [dataclasses.replace(key, revoked_at=long_ago) for key in trusted]
    report = verify_bundle(bundle, revoked, root=tmp_path)
    assert report.exit_code == 1 and report.details["signature"]["status"].startswith(
        "key not valid"
    )


def test_verify_writes_nothing(
    cli: Invoke, signer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    bundle = tmp_path / "files.bundle"
    _build(cli, tmp_path, bundle)
    before = sorted(p for p in tmp_path.rglob("*"))
    stranger = tmp_path / "stranger-home"
    monkeypatch.setenv("NODUS_HOME", str(stranger))
    assert (
        cli(
            "audit", "verify", str(bundle), "--root", str(tmp_path), "--trust", str(signer)
        ).exit_code
        == 0
    )
    assert cli("audit", "chain", str(bundle), "--trust", str(signer)).exit_code == 0
    assert sorted(p for p in tmp_path.rglob("*")) == before and not stranger.exists()


def test_quickstart_seals_its_logs_into_a_verified_bundle(cli: Invoke, tmp_path: Path) -> None:
    target = tmp_path / "qs"
    result = cli("quickstart", str(target), "--json")
    assert result.exit_code == 0, result.stderr
    bundle = target / "logs.bundle"
    verified = cli("--home", str(target / ".nodus"), "audit", "verify", str(bundle), "--json")
    assert verified.exit_code == 0, verified.stdout
    assert verified.json()["size"] > 0  # type: ignore[index]


def test_a_workspace_inside_the_tree_is_neither_sealed_nor_reported_added(
    cli: Invoke, signer: Path, tmp_path: Path
) -> None:
    data = _tree(tmp_path)
    workspace = data / ".nodus"
    workspace.mkdir()
    (workspace / "nodus.toml").write_text("")
    (workspace / "secret.key").write_text("00" * 32 + "\n")
    bundle = tmp_path / "files.bundle"
    assert _build(cli, tmp_path, bundle)["size"] == 3
    (workspace / "store.duckdb").write_bytes(b"grown since the build")
    code, report = _verify(cli, bundle, "--root", str(tmp_path), "--trust", str(signer))
    assert code == 0, report
    assert report["entries"]["added"] == []
