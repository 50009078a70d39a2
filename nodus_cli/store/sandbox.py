"""Run SQL that a user or a file supplied where it cannot change or reach anything.

The defence is the connection, not a reading of the statement: user SQL runs on a
DuckDB database opened read-only, with file and network access off, extension
install and load off, and the configuration locked before the first user statement,
so that no statement (``EXPLAIN ANALYZE`` of a ``COPY``, a ``SET``, an ``INSTALL``)
can undo the settings. Reading the user's own files is an explicit opt-in
(``--allow-files``), and the workspace itself (secret key, keyring, settings, the
store's files) is never readable as a file, whatever is allowed.

``check_read_only`` still refuses statements that write, so that an ``INSERT`` gets a
friendly one-line refusal instead of DuckDB's read-only error, and so that nothing
can write into a directory the user allowed for reading.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodus_cli.errors import InputError, NotFoundError, UsageError

# Set when the database starts: a locked configuration cannot switch them back on.
SANDBOX_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_persistent_secrets": False,
    "allow_extension_repositories": "forbidden",
}
READ_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})
ALLOW_FILES_HINT = "pass --allow-files PATH to let SQL read your own files"


@dataclass(frozen=True)
class FileAllowance:
    """Absolute, resolved paths SQL may read: whole directories and single files."""

    directories: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


NO_FILES = FileAllowance()


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def allow_files(paths: Iterable[Path], *, protected: Sequence[Path]) -> FileAllowance:
    """The allowance for ``--allow-files`` paths, minus every ``protected`` folder.

    A path inside a protected folder is refused (exit 2). A directory that contains
    one is allowed around it: its other entries are allowed one by one, down to the
    protected folder, which is left out (DuckDB's allow-list has no exclusions).
    """
    guarded = [p.resolve() for p in protected]
    directories: list[str] = []
    files: list[str] = []
    expanded: set[Path] = set()

    def add(path: Path) -> None:  # ``path`` is resolved: DuckDB compares resolved paths
        if not any(_within(g, path) for g in guarded):
            (directories if path.is_dir() else files).append(str(path) + os.sep * path.is_dir())
            return
        if path in expanded:  # a link back up the tree
            return
        expanded.add(path)
        try:
            entries = sorted(path.iterdir())
        except OSError as exc:
            raise UsageError(f"--allow-files {path}: {exc.strerror}") from None
        for entry in entries:
            real = entry.resolve()
            if real.exists() and not any(_within(real, g) for g in guarded):
                add(real)

    for given in paths:
        try:
            path = given.resolve(strict=True)
        except (OSError, RuntimeError):
            raise NotFoundError(f"--allow-files {given}: no such file or directory") from None
        hidden = next((g for g in guarded if _within(path, g)), None)
        if hidden is not None:
            raise UsageError(
                f"--allow-files {given}: inside the workspace {hidden}, "
                "which SQL may never read as files"
            )
        add(path)
    return FileAllowance(tuple(dict.fromkeys(directories)), tuple(dict.fromkeys(files)))


def _sql_list(items: Sequence[str]) -> str:
    return "[" + ", ".join("'" + item.replace("'", "''") + "'" for item in items) + "]"


def lock_down(con: Any, allowance: FileAllowance = NO_FILES) -> None:
    """Turn file access off (but for ``allowance``) and lock the configuration.

    Call on a connection opened with ``SANDBOX_CONFIG``, after nodus's own setup
    statements and before the first user statement.
    """
    con.execute("SET TimeZone = 'UTC'")
    if allowance.directories:
        con.execute(f"SET allowed_directories = {_sql_list(allowance.directories)}")
    if allowance.files:
        con.execute(f"SET allowed_paths = {_sql_list(allowance.files)}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def is_locked_down(con: Any) -> bool:
    row = con.execute(
        "SELECT current_setting('lock_configuration'), current_setting('enable_external_access')"
    ).fetchone()
    return bool(row[0]) and not bool(row[1])


def sql_error_text(exc: Exception) -> str:
    """DuckDB's message on one line, without the caret diagram of a parser error."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(("LINE ", "^"))]
    return " ".join(kept) or type(exc).__name__


def sql_input_error(exc: Exception) -> InputError | UsageError:
    """A DuckDB error of user SQL as one line; a refused file access says how to allow it."""
    import duckdb

    text = f"SQL error: {sql_error_text(exc)}"
    if isinstance(exc, duckdb.PermissionException):
        text += f" ({ALLOW_FILES_HINT})"
    elif "read-only mode" in text:  # a write inside a read (nextval, a CTE that deletes)
        return _read_only("the SQL would change the store")
    return InputError(text)


def _refuse(kind: str, explained: bool = False) -> UsageError:
    wrapped = " inside EXPLAIN" if explained else ""
    return _read_only(f"refusing a {kind} statement{wrapped}")


def _read_only(what: str) -> UsageError:
    return UsageError(
        f"nodus query is read-only: {what} "
        "(use nodus load or the command that owns the table to change data)"
    )


def _explained(con: Any, text: str) -> str:
    """The type of the statement an ``EXPLAIN [ANALYZE] [(options)]`` wraps."""
    import duckdb

    tokens = [
        (offset, kind)
        for offset, kind in duckdb.tokenize(text)
        if kind != duckdb.token_type.comment
    ]
    bounds = [offset for offset, _ in tokens] + [len(text)]
    words = [text[bounds[i] : bounds[i + 1]].strip() for i in range(len(tokens))]
    operator = duckdb.token_type.operator

    def parens(i: int) -> int:
        return words[i].count("(") - words[i].count(")") if tokens[i][1] == operator else 0

    position = 1  # past EXPLAIN
    if position < len(words) and words[position].upper() in ("ANALYZE", "ANALYSE"):
        position += 1
    if position < len(words) and parens(position) > 0:
        depth = 0
        while position < len(words):
            depth += parens(position)
            position += 1
            if depth <= 0:
                break
    if position >= len(words):
        return "EXPLAIN"
    try:
        inner = con.extract_statements(text[bounds[position] :])
    except duckdb.Error:
        return "EXPLAIN"
    return str(inner[0].type.name) if len(inner) == 1 else "EXPLAIN"


def check_read_only(con: Any, sql: str) -> list[Any]:
    """Split ``sql`` into statements and refuse any that is not a plain read.

    An ``EXPLAIN`` is judged by the statement it explains (``EXPLAIN ANALYZE`` runs it).
    """
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise sql_input_error(exc) from None
    if not statements:
        raise UsageError("no SQL statement given")
    for statement in statements:
        kind = statement.type.name
        if kind == "EXPLAIN":
            inner = _explained(con, statement.query)
            if inner != "SELECT":
                raise _refuse(inner, explained=inner != "EXPLAIN")
        elif kind not in READ_STATEMENTS:
            raise _refuse(kind)
    return list(statements)


def one_read_statement(con: Any, sql: str, what: str) -> Any:
    """``check_read_only``, and exactly one statement: ``what`` (a command) runs one.

    Running all but the last and dropping their rows unseen would hide them; being
    reads, they could change nothing anyway.
    """
    statements = check_read_only(con, sql)
    if len(statements) > 1:
        raise UsageError(f"the SQL holds {len(statements)} statements; {what} runs one")
    return statements[0]


def connect_file(path: Path, allowance: FileAllowance = NO_FILES) -> Any:
    """A locked-down read-only connection to a DuckDB file that is not the store."""
    import duckdb

    if not path.is_file():
        raise NotFoundError(f"{path}: no such database file")
    try:
        con = duckdb.connect(str(path), read_only=True, config=SANDBOX_CONFIG)
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot open as DuckDB: {sql_error_text(exc)}") from None
    try:
        lock_down(con, allowance)
    except BaseException:
        con.close()
        raise
    return con
