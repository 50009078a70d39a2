"""``nodus audit``: seal files or store rows into signed, chained bundles; verify them."""

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodus_cli.cli import state
from nodus_cli.cli.options import (
    JsonOption,
    PassphraseFileOption,
    RequiredOutputOption,
    TrustRootOption,
    since_option,
    until_option,
)
from nodus_cli.cli.output import emit_json, say, write_text
from nodus_cli.cli.passphrase import read_passphrase
from nodus_cli.cli.progressbar import progress
from nodus_cli.interrupts import terminate_as_interrupt
from nodus_cli.timeparse import parse_time

if TYPE_CHECKING:
    from nodus_cli.audit.seal import SealResult
    from nodus_cli.audit.verify import Report
    from nodus_cli.keys.signing import SigningKey, SigningPublicKey

app = typer.Typer(
    name="audit",
    help="Signed, Merkle-chained audit bundles of files or store rows, verified offline.\n\n"
    "Examples:\n\n"
    "  nodus audit build samples/ -o samples.bundle && nodus audit verify samples.bundle\n"
    "  nodus audit seal logs -o logs.bundle",
    no_args_is_help=True,
)

OriginOption = Annotated[
    str | None,
    typer.Option(
        "--origin",
        help="Log name in the checkpoint; bundles of one origin form one chain "
        "(default: nodus/files, or nodus/TABLE).",
        show_default=False,
    ),
]
PrevOption = Annotated[
    Path | None,
    typer.Option(
        "--prev",
        help="The previous bundle of the chain (default: the workspace's last checkpoint "
        "for this origin).",
        show_default=False,
        dir_okay=False,
    ),
]
TrustOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--trust",
        help="Public key file written by 'nodus keys export --purpose sign' (repeatable; "
        "default: the signing keys this workspace's key log vouches for).",
        show_default=False,
        dir_okay=False,
    ),
]
ChainRootOption = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Also re-hash the files of every files bundle under this directory "
        "(default: check signatures, manifests, roots and links only).",
        show_default=False,
        file_okay=False,
    ),
]
RootOption = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Directory the bundle's file paths are relative to (default: the root the "
        "bundle records when its files are there, else the current directory; only the "
        "embedded copies when the bundle has them).",
        show_default=False,
        file_okay=False,
    ),
]


def _signing_key(passphrase_file: Path | None) -> "SigningKey":
    from nodus_cli.keys.keyring import Keyring

    keyring = Keyring(state.workspace())
    keyring.check_can_sign()  # before any passphrase prompt
    return keyring.primary_signing_key(read_passphrase(passphrase_file))


def _trusted(files: list[Path] | None, trust_root: str | None) -> "list[SigningPublicKey]":
    from nodus_cli.keys.keyring import trusted_signing_keys

    return trusted_signing_keys(state.workspace(), files or [], trust_root)


def _chained(
    origin: str,
    prev: Path | None,
    stage: str,
    unit: str,
    seal: Callable[[Any, Any, Any], "SealResult"],
) -> "SealResult":
    """Run ``seal(store, link, meter)`` as the next link of ``origin``'s chain (or after
    ``prev``) with a progress bar, and remember the bundle as that chain's head."""
    from nodus_cli.audit.seal import chain_link, remember

    with state.open_store() as store, terminate_as_interrupt():
        link = chain_link(store, origin, prev)
        with progress(stage, unit=unit) as meter:
            result = seal(store, link, meter)
        remember(store, result)
    return result


def _sealed(result: "SealResult", as_json: bool) -> None:
    if as_json:
        emit_json(result.to_json())
        return
    link = "first of its chain"
    if result.prev:
        link = "extends" if result.extends else "follows (no consistency proof)"
        link += f" {result.prev.digest[:16]}"
    if str(result.path) != "-":  # '-o -': the bundle itself went to stdout
        write_text(f"{result.path}\n")
    where = f" under {result.files_root}" if result.files_root else ""
    say(
        f"Sealed {result.size} {result.kind}{where} as {result.origin} "
        f"(root {result.root.hex()[:16]}, {link}), signed by {result.key_id}."
    )


@app.command()
def build(
    paths: Annotated[list[Path], typer.Argument(help="Files and directories to seal.")],
    output: RequiredOutputOption,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="Directory the recorded paths are relative to (default: the directory "
            "itself when one is given, else the deepest common parent of the PATHS); "
            "recorded in the bundle.",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    embed: Annotated[
        bool, typer.Option("--embed", help="Also embed every file's content in the bundle.")
    ] = False,
    origin: OriginOption = None,
    prev: PrevOption = None,
    passphrase_file: PassphraseFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Seal files (directories recursively, in a fixed order) into a signed bundle.

    A nodus workspace inside a directory is skipped: its store and secret are private.

    Examples:

      nodus audit build samples/ -o samples.bundle
      nodus audit build samples/ --embed -o samples-embedded.bundle   # content included
    """
    from nodus_cli.audit.seal import build_files

    key = _signing_key(passphrase_file)
    origin = origin or "nodus/files"
    result = _chained(
        origin,
        prev,
        "hashing files",
        "bytes",
        lambda _store, link, meter: build_files(
            paths,
            output,
            root=root,
            key=key,
            origin=origin,
            prev=link,
            embed=embed,
            on_progress=meter,
        ),
    )
    _sealed(result, as_json)


@app.command()
def seal(
    table: Annotated[str, typer.Argument(help="Table to seal (journal too).")],
    output: RequiredOutputOption,
    since: Annotated[
        str | None, since_option("Only rows with time >= this (ISO time or 1h, 2d).")
    ] = None,
    until: Annotated[str | None, until_option("Only rows with time < this.")] = None,
    origin: OriginOption = None,
    prev: PrevOption = None,
    passphrase_file: PassphraseFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Seal a table's rows, embedded in canonical form, into a signed bundle.

    Examples:

      nodus audit seal logs -o logs.bundle
      nodus audit seal journal --since 1d -o journal.bundle
    """
    from nodus_cli.audit.seal import seal_rows

    start = parse_time(since) if since else None
    end = parse_time(until) if until else None
    key = _signing_key(passphrase_file)
    origin = origin or f"nodus/{table}"
    result = _chained(
        origin,
        prev,
        "sealing rows",
        "rows",
        lambda store, link, meter: seal_rows(
            store,
            table,
            output,
            key=key,
            since=start,
            until=end,
            origin=origin,
            prev=link,
            on_progress=meter,
        ),
    )
    _sealed(result, as_json)


def _finish(report: "Report", as_json: bool) -> None:
    if as_json:
        emit_json(report.to_json())
    else:
        verdict = {0: "ok", 1: "FAILED", 3: "UNDECIDED"}[report.exit_code]
        size = report.details.get("size")
        counted = f" ({size} {'entry' if size == 1 else 'entries'})" if size is not None else ""
        write_text(f"{verdict}: {report.subject}{counted}\n")
        for line in [*report.problems, *report.undecided]:
            write_text(f"  {line}\n")
    if report.exit_code:
        raise typer.Exit(report.exit_code)


@app.command()
def verify(
    bundle: Annotated[Path, typer.Argument(help="The bundle to verify.", dir_okay=False)],
    root: RootOption = None,
    trust: TrustOption = None,
    trust_root: TrustRootOption = None,
    prev: Annotated[
        Path | None,
        typer.Option(
            "--prev",
            help="The bundle this one must follow (checks the link and consistency proof).",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    against_store: Annotated[
        bool,
        typer.Option(
            "--store",
            help="For a rows bundle: also compare every sealed row with the table in this "
            "workspace's store, naming each changed or missing row.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Recompute every leaf, the root, both signatures and the chain link.

    Exit 0 only when everything holds; 1 on any mismatch; 2 for an unreadable or
    malformed bundle; 3 when the signer is not trusted.

    Examples:

      nodus audit verify logs.bundle            # the bundle the quickstart sealed
      nodus audit verify logs.bundle --store --json
      nodus keys export --purpose sign -o team.pub && nodus audit verify logs.bundle \\
        --trust team.pub
    """
    from nodus_cli.audit.verify import verify_bundle

    trusted = _trusted(trust, trust_root)
    if not against_store:
        with progress("verifying") as meter:
            report = verify_bundle(bundle, trusted, root=root, prev=prev, on_progress=meter)
        _finish(report, as_json)
        return
    with state.open_store(read_only=True) as store, progress("verifying") as meter:
        report = verify_bundle(
            bundle, trusted, root=root, prev=prev, store=store, on_progress=meter
        )
    _finish(report, as_json)


@app.command()
def chain(
    bundles: Annotated[list[Path], typer.Argument(help="Bundles of one origin, oldest first.")],
    root: ChainRootOption = None,
    trust: TrustOption = None,
    trust_root: TrustRootOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a whole history: every bundle and every link between neighbours.

    Examples:

      nodus audit build samples/ -o mon.bundle && nodus audit build samples/ -o tue.bundle \\
        && nodus audit chain mon.bundle tue.bundle
    """
    from nodus_cli.audit.verify import verify_chain

    _finish(verify_chain(bundles, _trusted(trust, trust_root), root=root), as_json)


@app.command()
def prove(
    bundle: Annotated[Path, typer.Argument(help="The bundle holding the entry.", dir_okay=False)],
    entry: Annotated[str, typer.Argument(help="The entry's recorded path, or its index.")],
    output: RequiredOutputOption,
    as_json: JsonOption = False,
) -> None:
    """Write a stand-alone inclusion proof (C2SP tlog-proof with the signed checkpoint).

    Examples:

      nodus audit build samples/ -o samples.bundle \\
        && nodus audit prove samples.bundle cpu.csv -o cpu.proof
    """
    from nodus_cli.audit.verify import prove as write_proof

    result = write_proof(bundle, entry, output)
    if as_json:
        emit_json(result)
    else:
        write_text(f"{output}\n")
        say(f"Entry {result['index']} of {result['size']}: {result['hashes']} proof hashes.")


@app.command("verify-proof")
def verify_proof(
    proof: Annotated[Path, typer.Argument(help="A proof written by 'nodus audit prove'.")],
    entry_file: Annotated[Path, typer.Argument(help="The entry's bytes (the file, or the row).")],
    trust: TrustOption = None,
    trust_root: TrustRootOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check that ENTRY_FILE is in the signed checkpoint's tree.

    Examples:

      nodus audit build samples/ -o samples.bundle \\
        && nodus audit prove samples.bundle cpu.csv -o cpu.proof \\
        && nodus audit verify-proof cpu.proof samples/cpu.csv
    """
    from nodus_cli.audit.verify import verify_proof as check

    _finish(check(proof, entry_file, _trusted(trust, trust_root)), as_json)
