"""``ingest --redact`` leaves nothing it pseudonymises in clear anywhere in the store.

Issue 23.8: redaction applies to every column nodus stores, including paths and names
derived from the input, and the journal's record of the run (its arguments, its summary).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

SECRETS = (
    "alice@corp.example.com",
    "carol@corp.example.com",
    "dave@corp.example.com",
    "10.20.30.40",
    "10.7.7.7",
    "10.1.2.3",
    "10.9.9.9",
    "2001:db8::7",
    "bob-the-user",
)


def every_stored_text(store: Path) -> str:
    """Every cell of every table of the store as text (what a reader of the file sees)."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        ]
        cells: list[str] = []
        for table in tables:
            columns = [
                row[0]
                for row in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'main' AND table_name = ?",
                    [table],
                ).fetchall()
            ]
            # BLOBs as their bytes decoded, everything else as DuckDB's text of it
            texts = ", ".join(
                f'CASE WHEN typeof("{c}") = \'BLOB\' THEN decode("{c}"::BLOB) '
                f'ELSE CAST("{c}" AS VARCHAR) END'
                for c in columns
            )
            for row in con.execute(f'SELECT {texts} FROM "{table}"').fetchall():
                cells.extend(f"{table}: {cell}" for cell in row if cell is not None)
        return "\n".join(cells)
    finally:
        con.close()


def test_a_redacted_ingest_keeps_no_secret_in_any_table(
    tmp_path: Path, nodus_home: Path, run_nodus
) -> None:
    folder = tmp_path / "10.20.30.40"
    folder.mkdir()
    path = folder / "alice@corp.example.com.jsonl"
    lines = [
        {"ts": "2026-01-01T00:00:00Z", "msg": "login 10.1.2.3 by carol@corp.example.com"},
        {"ts": "2026-01-01T00:00:01Z", "msg": "login 2001:db8::7", "user": "bob-the-user"},
        {"ts": "2026-01-01T00:00:02Z", "msg": "login 10.1.2.3 by carol@corp.example.com"},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines) + "broken from 10.9.9.9\n"
    path.write_text(text)
    missing = tmp_path / "dave@corp.example.com.log"
    result = run_nodus(
        "ingest",
        str(path),
        str(missing),
        "--redact",
        "email,ip",
        "--redact",
        "user",
        "--source",
        "feed-10.7.7.7",
    )
    assert result.returncode == 2, result.stderr  # the missing file fails, the other goes in
    assert "dave@corp.example.com.log" in result.stderr  # the user is told in clear
    stored = every_stored_text(nodus_home / "store.duckdb")
    assert "ingest" in stored and "anon:" in stored
    leaks = [line for line in stored.splitlines() if any(s in line for s in SECRETS)]
    assert not leaks, "\n".join(leaks)
    for command in (["sources"], ["quarantine"], ["journal"], ["patterns"]):
        listing = run_nodus(*command, "--json")
        assert listing.returncode == 0, listing.stderr
        assert not [s for s in SECRETS if s in listing.stdout], (command, listing.stdout)


def test_the_library_journals_a_redacted_ingest_redacted(tmp_path: Path) -> None:
    from nodus_cli.ingest.engine import IngestOptions, ingest
    from nodus_cli.ingest.redact import pseudonym
    from nodus_cli.store import Invocation, open_store
    from nodus_cli.workspace import Workspace

    workspace = Workspace(tmp_path / "ws", "test").ensure()
    path = tmp_path / "alice@corp.example.com.log"
    path.write_text("2026-01-01T00:00:00Z hello from 10.1.2.3\n")
    invocation = Invocation("ingest", [str(path), "--source", "10.7.7.7"])
    secret = workspace.secret()
    with open_store(workspace, invocation=invocation) as store:
        options = IngestOptions(format="text", redact=["email,ip"], source="10.7.7.7")
        ingest(store, [str(path)], options, secret=secret)
        args, summary = store.con.execute(
            "SELECT args, summary FROM journal WHERE command = 'ingest'"
        ).fetchone()
        (stored,) = store.con.execute("SELECT path FROM ingest_files").fetchone()
    # the journal names the file as ingest_files does: same rule, same pseudonyms
    assert json.loads(args) == [stored, "--source", pseudonym(secret, "10.7.7.7")]
    assert json.loads(summary)["path"] == stored
    assert not [s for s in SECRETS if s in args + summary]
