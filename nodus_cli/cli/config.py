"""``nodus config``: diff, apply, history, show and rollback of configuration files."""

import contextlib
import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodus_cli.cli import state
from nodus_cli.cli.options import FormatOption, JsonOption, resolve_format
from nodus_cli.cli.output import (
    Format,
    emit_json,
    render_rows,
    say,
    warn,
    write_bytes,
    write_text,
)
from nodus_cli.confops.formats import CONFIG_LIMIT
from nodus_cli.errors import CheckFailed, UsageError
from nodus_cli.fsutil import read_input

if TYPE_CHECKING:
    from nodus_cli.confops.apply import ApplyResult, Settled
    from nodus_cli.store import Store

config_app = typer.Typer(
    name="config",
    help="Configuration files: semantic diff, atomic apply with health check and "
    "automatic rollback, and a history you can travel back through.\n\n"
    "Examples:\n\n"
    "  nodus config apply service.toml --set pool.max=600\n"
    "  nodus config history service.toml",
    no_args_is_help=True,
)


class DiffFormat(enum.StrEnum):
    text = "text"
    json = "json"
    unified = "unified"


TargetArgument = Annotated[
    Path, typer.Argument(help="The configuration file (TOML or JSON; a symlink is followed).")
]
CheckOption = Annotated[
    str | None,
    typer.Option(
        "--check",
        help="Shell command run after the switch (TARGET's path in $NODUS_CONFIG_TARGET); "
        "when it fails or times out the previous content is restored and nodus exits 1.",
    ),
]
CheckTimeoutOption = Annotated[
    float, typer.Option("--check-timeout", min=0, help="Seconds before the check is killed.")
]
ExpectOption = Annotated[
    str | None,
    typer.Option(
        "--expect-sha256",
        help="Refuse (exit 1) unless TARGET's current content has this SHA-256.",
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print the changes; write and record nothing.")
]
ShowSecretsOption = Annotated[
    bool,
    typer.Option(
        "--show-secrets",
        help="Print the values of keys that look secret (password, token, key, ...) "
        "instead of ***.",
    ),
]


@config_app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="The old file (TOML or JSON).")],
    new: Annotated[Path, typer.Argument(help="The new file (TOML or JSON).")],
    fmt: Annotated[
        DiffFormat,
        typer.Option(
            "--format",
            "-f",
            help="text (one line per changed key), json, or unified (the textual diff).",
            case_sensitive=False,
        ),
    ] = DiffFormat.text,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when there are semantic changes.")
    ] = False,
    show_secrets: ShowSecretsOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show what changes between two configuration files, key by key.

    Examples:

      sed s/8080/8081/ service.toml > new.toml && nodus config diff service.toml new.toml
      nodus config diff service.toml new.toml --exit-code   # exit 1: the port changed
    """
    from nodus_cli.confops.diff import (
        mask_secrets,
        mask_unified,
        render_text,
        semantic_diff,
        summarize,
        unified,
    )
    from nodus_cli.confops.formats import decode, read_config

    old_bytes, old_format, old_document = read_config(old)
    new_bytes, new_format, new_document = read_config(new)
    changes = semantic_diff(old_document, new_document)
    shown = changes if show_secrets else mask_secrets(changes)
    if as_json or fmt is DiffFormat.json:
        emit_json(
            {
                "old": str(old),
                "new": str(new),
                "formats": [old_format, new_format],
                "equal": not changes,
                "summary": summarize(changes),
                "changes": [change.to_json() for change in shown],
            }
        )
    elif fmt is DiffFormat.unified:
        text = unified(decode(old_bytes, str(old)), decode(new_bytes, str(new)), str(old), str(new))
        write_text(text if show_secrets else mask_unified(text))
    else:
        write_text(render_text(shown))
    if exit_code and changes:
        raise typer.Exit(1)


@config_app.command("apply")
def apply(
    target: TargetArgument,
    new: Annotated[
        Path | None, typer.Argument(help="File whose content TARGET gets.", show_default=False)
    ] = None,
    set_values: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY.PATH=VALUE (repeatable): set a TOML value in place, typed "
            "(500 is an integer; quote strings: name='\"web\"'); other lines stay as they are.",
            show_default=False,
        ),
    ] = None,
    unset_keys: Annotated[
        list[str] | None,
        typer.Option("--unset", help="KEY.PATH (repeatable): remove a key.", show_default=False),
    ] = None,
    check: CheckOption = None,
    check_timeout: CheckTimeoutOption = 30.0,
    expect_sha256: ExpectOption = None,
    dry_run: DryRunOption = False,
    show_secrets: ShowSecretsOption = False,
    as_json: JsonOption = False,
) -> None:
    """Replace TARGET with NEW, or edit it with --set/--unset, atomically and recorded.

    Examples:

      nodus config apply service.toml --set pool.max=600 \\
        --check 'grep -q "max = 600" "$NODUS_CONFIG_TARGET"'
      sed s/8080/8081/ service.toml > new.toml && nodus config apply service.toml new.toml --dry-run
      nodus config apply service.toml --set pool.max=700 \\
        --expect-sha256 "$(sha256sum service.toml | cut -d' ' -f1)"
    """
    from nodus_cli.confops.apply import ApplyResult, apply_config, plan_config
    from nodus_cli.confops.edit import parse_set, parse_unset

    edits = [parse_set(text) for text in set_values or []]
    edits += [parse_unset(text) for text in unset_keys or []]
    if (new is None) == (not edits):
        raise UsageError("give either NEW or --set/--unset (not both)")
    content = _read_new(new) if new is not None else None
    if dry_run:
        plan = plan_config(target, content=content, edits=edits, expect_sha256=expect_sha256)
        result = ApplyResult(plan, "set" if edits else "apply", dry_run=True)
        _render(result, as_json, show_secrets)
        return
    with state.open_store() as store, _one_journal_row(store):
        result = apply_config(
            store,
            target,
            content=content,
            edits=edits,
            check=check,
            check_timeout=check_timeout,
            expect_sha256=expect_sha256,
            lock_timeout=_lock_timeout(),
        )
    _render(result, as_json, show_secrets)


@config_app.command("rollback")
def rollback(
    target: TargetArgument,
    to: Annotated[
        int | None,
        typer.Option(
            "--to",
            min=0,
            help="Generation to go back to (default: the last good content before the "
            "current one).",
            show_default=False,
        ),
    ] = None,
    check: CheckOption = None,
    check_timeout: CheckTimeoutOption = 30.0,
    expect_sha256: ExpectOption = None,
    dry_run: DryRunOption = False,
    show_secrets: ShowSecretsOption = False,
    as_json: JsonOption = False,
) -> None:
    """Apply an earlier generation again (it becomes a new generation).

    Examples:

      nodus config apply service.toml --set pool.max=900 && nodus config rollback service.toml
      nodus config rollback service.toml --to 0 --dry-run
    """
    from nodus_cli.confops.apply import rollback_config

    with _settled_store() if dry_run else state.open_store() as store, _one_journal_row(store):
        result = rollback_config(
            store,
            target,
            to=to,
            dry_run=dry_run,
            check=check,
            check_timeout=check_timeout,
            expect_sha256=expect_sha256,
            lock_timeout=_lock_timeout(),
        )
    _render(result, as_json, show_secrets)


@config_app.command("history")
def history(
    target: TargetArgument,
    fmt: FormatOption = None,
    show_secrets: ShowSecretsOption = False,
    as_json: JsonOption = False,
) -> None:
    """List TARGET's generations: when, who, source, content hash, changes, check.

    Examples:

      nodus config history service.toml
      nodus config history service.toml -f json
    """
    from nodus_cli.confops.history import list_generations, target_key

    key = target_key(target)
    with _settled_store() as store:
        generations = list_generations(store, key)
    output = resolve_format(fmt, as_json)
    if output is Format.json and as_json and fmt is None:
        documents = [g.to_json(show_secrets=show_secrets) for g in generations]
        emit_json({"target": key, "generations": documents})
        return
    render_rows(
        ["generation", "time", "user", "source", "status", "sha256", "size", "changes", "check"],
        (
            (
                g.generation,
                g.time,
                g.user,
                g.source,
                g.status,
                g.sha256,
                g.size,
                len(g.diff) if g.diff is not None else None,
                g.check_outcome,
            )
            for g in generations
        ),
        output,
        title=key if output is Format.table else None,
    )


@config_app.command("show")
def show(
    target: TargetArgument,
    generation: Annotated[
        int | None,
        typer.Option("--generation", "-g", min=0, help="Generation number.", show_default=False),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="The content in force at this time (ISO 8601, epoch seconds, or e.g. 3d ago).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Print TARGET's content of one generation (default: the current one).

    Examples:

      nodus config apply service.toml --set pool.max=600 && \\
        nodus config show service.toml -g 0    # before the change
      nodus config show service.toml --at now
    """
    from nodus_cli.confops.history import chosen_generation, content_of, target_key
    from nodus_cli.timeparse import parse_time

    if generation is not None and at is not None:
        raise UsageError("--generation and --at exclude each other")
    key = target_key(target)
    with _settled_store() as store:
        when = parse_time(at) if at is not None else None
        chosen = chosen_generation(store, key, number=generation, at=when)
        content = content_of(store, key, chosen.generation)
    if as_json:
        document = {"target": key, **chosen.to_json()}
        document["content"] = content.decode("utf-8", errors="replace")
        emit_json(document)
        return
    write_bytes(content)


# --- helpers --------------------------------------------------------------------------


def _read_new(path: Path) -> bytes:
    return read_input(path, "a configuration file", CONFIG_LIMIT)


class _MergedSteps:
    """An apply's steps (intent, apply, restore, settle) merged into its one journal row."""

    def __init__(self) -> None:
        self.summary: dict[str, Any] = {}
        self.steps: list[str] = []
        self.outcome = "ok"

    def __call__(self, outcome: str, summary: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.summary.update(summary)
        self.steps.append(str(summary.get("config", outcome)))
        if outcome != "ok":
            self.outcome = outcome
        return self.outcome, {**self.summary, "steps": self.steps}


def _one_journal_row(store: "Store") -> "contextlib.AbstractContextManager[object]":
    from nodus_cli.store.db import JournalRun

    return store.one_journal_row(JournalRun(_MergedSteps()))


def _lock_timeout() -> float:
    return state.lock_timeout(state.workspace())


def _settled_store() -> "Store":
    """A read-only store, after settling any apply a crash interrupted."""
    from nodus_cli.confops.apply import has_pending, settle_pending

    with state.open_store(read_only=True) as store:
        pending = has_pending(store)
    if pending:
        with state.open_store() as store:
            _report_settled(settle_pending(store, _lock_timeout()))
    return state.open_store(read_only=True)


def _report_settled(settled: "list[Settled]") -> None:
    for item in settled:
        if item.outcome == "cleanup":
            warn(f"removed leftover temporary files beside {item.target}: {len(item.removed)}")
        elif item.outcome == "rolled back":
            warn(
                f"an interrupted apply of {item.target} never finished its health check: "
                f"generation {item.generation} was rolled back to the previous content"
            )
        else:
            warn(
                f"an interrupted apply of {item.target} was settled from what is on disk: "
                f"generation {item.generation} {item.outcome}"
            )


def _render(result: "ApplyResult", as_json: bool, show_secrets: bool) -> None:
    from nodus_cli.confops.diff import mask_secrets, render_text, summarize

    plan = result.plan
    _report_settled(result.settled)
    if as_json:
        emit_json(result.to_json(show_secrets=show_secrets))
    else:
        write_text(render_text(plan.changes if show_secrets else mask_secrets(plan.changes)))
    counts = summarize(plan.changes)
    what = f"{counts['changed']} changed, {counts['added']} added, {counts['removed']} removed"
    if result.dry_run:
        say(f"Dry run: {plan.target} would change ({what}); nothing written.")
    elif not plan.changed:
        say(f"{plan.target} already has this content; nothing to do.")
    elif result.check_failed:
        check = result.check
        assert check is not None
        reason = (
            f"timed out after {check.seconds:.1f} s"
            if check.outcome == "timeout"
            else f"exited {check.exit_code}"
        )
        for line in check.output.rstrip().splitlines()[-20:]:
            say(f"    | {line}")
        raise CheckFailed(
            f"health check {reason}: {plan.target} was restored to its previous content "
            f"(generation {result.generation} failed, generation "
            f"{result.restored_generation} restored it)"
        )
    else:
        back = result.rolled_back_to
        verb = f"Rolled back to generation {back}: " if back is not None else ""
        checked = f"; check passed in {result.check.seconds:.2f} s" if result.check else ""
        say(f"{verb}Applied generation {result.generation} to {plan.target} ({what}){checked}.")
