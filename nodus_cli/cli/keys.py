"""``nodus keys``: the keyring, the key log, signatures and age-compatible sealed files."""

import contextlib
import datetime as dt
import enum
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nodus_cli.cli import state
from nodus_cli.cli.options import (
    FormatOption,
    JsonOption,
    OutputOption,
    PassphraseFileOption,
    TrustRootOption,
    resolve_format,
)
from nodus_cli.cli.output import (
    dumps,
    emit_json,
    render_rows,
    say,
    visible,
    write_text,
)
from nodus_cli.cli.passphrase import read_passphrase
from nodus_cli.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from nodus_cli.keys.keyring import Keyring, UnlockedKeyring
    from nodus_cli.keys.record import KeyRecord

keys_app = typer.Typer(
    name="keys",
    help="A keyring of hybrid post-quantum keys (ML-DSA-65+Ed25519 signing, X-Wing "
    "encryption), its signed key log, and age-compatible sealed files.\n\n"
    "Examples:\n\n"
    "  nodus keys list\n"
    "  nodus keys sign samples/cpu.csv && nodus keys verify samples/cpu.csv samples/cpu.csv.sig",
    no_args_is_help=True,
)


class Purpose(enum.StrEnum):
    sign = "sign"
    encrypt = "encrypt"


class ExportFormat(enum.StrEnum):
    nodus = "nodus"
    age = "age"
    json = "json"


PurposeOption = Annotated[
    Purpose | None,
    typer.Option("--purpose", help="Key purpose: sign or encrypt.", case_sensitive=False),
]
NotAfterOption = Annotated[
    str | None,
    typer.Option(
        "--not-after",
        help="Expiry: an ISO 8601 time, or a duration from now (365d, 12h). After it the "
        "key no longer signs or encrypts but still verifies and decrypts.",
        show_default=False,
    ),
]
KeyIdArgument = Annotated[str, typer.Argument(help="The key id (see 'nodus keys list').")]


def _keyring() -> "Keyring":
    from nodus_cli.keys.keyring import Keyring

    return Keyring(state.workspace())


def _unlock(passphrase_file: Path | None, *, create: bool = False) -> "UnlockedKeyring":
    keyring = _keyring()
    if not keyring.exists and not create:
        keyring.document()  # raises NotFoundError with a hint
    passphrase = read_passphrase(passphrase_file, confirm=not keyring.exists)
    return keyring.unlock(passphrase, create=create)


def _journal(summary: dict[str, Any], outcome: str = "ok") -> None:
    """Keyring changes live outside the store: the journal row is appended on its own."""
    with state.open_store() as store:
        store.record(outcome, summary)


def _not_after(text: str | None, now: dt.datetime) -> dt.datetime | None:
    from nodus_cli.timeparse import parse_duration, parse_time, shift

    if text is None:
        return None
    try:
        duration = parse_duration(text.lstrip("+"))
    except UsageError:
        return parse_time(text, now=now)
    return shift(now, duration, f"--not-after {text}")


def _describe(record: "KeyRecord") -> str:
    return f"{record.purpose} key {record.key_id} ({record.state})"


@keys_app.command()
def generate(
    purpose: PurposeOption = None,
    not_after: NotAfterOption = None,
    passphrase_file: PassphraseFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create keys: a signing and an encryption key by default, or one --purpose.

    The first key of a purpose becomes its primary; later ones are active (use
    'nodus keys rotate' to change the primary). A new keyring asks for its passphrase.

    Examples:

      nodus keys generate                       # one more signing and encryption key
      nodus keys generate --purpose sign --not-after 365d
    """
    from nodus_cli.keys.record import ENCRYPT, SIGN, utc_now

    now = utc_now()
    expiry = _not_after(not_after, now)  # bad usage is refused before any prompt
    unlocked = _unlock(passphrase_file, create=True)
    purposes = [purpose.value] if purpose else [SIGN, ENCRYPT]
    records = [unlocked.generate(p, not_after=expiry, now=now) for p in purposes]
    unlocked.save()
    _journal({"generated": [r.key_id for r in records]})
    if as_json:
        emit_json({"generated": [r.public_summary(now) for r in records]})
        return
    for record in records:
        say(f"Generated {_describe(record)}")


@keys_app.command()
def rotate(
    purpose: Annotated[
        Purpose, typer.Option("--purpose", help="Which primary to replace.", case_sensitive=False)
    ],
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Sealed files to rewrap (with --rewrap).", show_default=False),
    ] = None,
    rewrap: Annotated[
        bool,
        typer.Option(
            "--rewrap",
            help="Re-encrypt only the wrapped file keys of FILES to the new primary "
            "(payload bytes untouched, atomically per file).",
        ),
    ] = False,
    not_after: NotAfterOption = None,
    passphrase_file: PassphraseFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a new primary key; the old one keeps verifying or decrypting only.

    Examples:

      nodus keys rotate --purpose sign
      nodus keys rotate --purpose encrypt --rewrap cpu.csv.age
    """
    from nodus_cli.keys import age
    from nodus_cli.keys.files import check_sealed, keyring_identities, rewrap_file
    from nodus_cli.keys.record import ENCRYPT, utc_now

    if files and not rewrap:
        raise UsageError("FILES are only taken with --rewrap")
    if rewrap and (purpose.value != ENCRYPT or not files):
        raise UsageError("--rewrap takes sealed FILES and --purpose encrypt")
    now = utc_now()
    expiry = _not_after(not_after, now)  # bad usage is refused before any prompt
    unlocked = _unlock(passphrase_file)
    identities = keyring_identities(unlocked) if rewrap else []
    for path in files or []:  # every file must open before anything changes
        check_sealed(path, identities)
    old, new = unlocked.rotate(purpose.value, not_after=expiry, now=now)
    unlocked.save()
    rewrapped: list[dict[str, str]] = []
    summary = {"rotated": purpose.value, "old": old.key_id if old else None, "new": new.key_id}
    try:
        for path in files or []:
            unwrapped_by = rewrap_file(path, identities, [age.HybridRecipient(new.public)])
            rewrapped.append({"file": str(path), "was_wrapped_to": unwrapped_by})
    except BaseException:
        _journal({**summary, "rewrapped": len(rewrapped)}, "error")
        raise
    _journal({**summary, "rewrapped": len(rewrapped)})
    if as_json:
        emit_json(
            {
                "new": new.public_summary(now),
                "retired": old.public_summary(now) if old else None,
                "rewrapped": rewrapped,
            }
        )
        return
    say(f"New primary {new.purpose} key {new.key_id}")
    if old:
        verb = "verifies" if old.purpose == "sign" else "decrypts"
        say(f"Key {old.key_id} is now {old.state}: it only {verb}")
    for item in rewrapped:
        say(f"Rewrapped {item['file']} (was wrapped to {item['was_wrapped_to']})")


LIST_COLUMNS = ["id", "purpose", "state", "created", "not_after", "expired", "recipient"]


@keys_app.command("list")
def list_keys(
    purpose: PurposeOption = None,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the keys: id, purpose, state, dates, and the age1pq1 recipient of encryption keys.

    Examples:

      nodus keys list
      nodus keys list --purpose encrypt -f csv
    """
    from nodus_cli.keys.record import utc_now

    now = utc_now()
    keys = [
        r.public_summary(now)
        for r in _keyring().records()
        if purpose is None or r.purpose == purpose.value
    ]
    output = resolve_format(fmt, as_json)
    if output.value == "json" and as_json and fmt is None:
        emit_json({"keys": keys})
        return
    rows = [[key.get(column) for column in LIST_COLUMNS] for key in keys]
    render_rows(LIST_COLUMNS, rows, output)  # a terminal cuts the ~1950-character recipient


@keys_app.command()
def show(key_id: KeyIdArgument, as_json: JsonOption = False) -> None:
    """Show one key's public details (never its private part).

    Examples:

      nodus keys show "$(nodus keys list --purpose sign -f csv | sed -n 2p | cut -d, -f1)"
    """
    summary = _keyring().find(key_id).public_summary()
    if as_json:
        emit_json(summary)
        return
    for name, value in summary.items():
        write_text(f"{name + ':':<14}{'' if value is None else value}\n")


@keys_app.command()
def revoke(
    key_id: KeyIdArgument,
    passphrase_file: PassphraseFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key now: nothing signed after this moment verifies, and it no longer encrypts.

    Examples:

      nodus keys revoke "$(nodus keys list --purpose sign -f csv | sed -n 2p | cut -d, -f1)"
    """
    _change_key(
        passphrase_file,
        lambda keyring: keyring.revoke(key_id),
        "revoked",
        lambda record: f"Revoked {record.purpose} key {record.key_id} at {record.revoked_at}",
        as_json,
    )


@keys_app.command()
def destroy(
    key_id: KeyIdArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    passphrase_file: PassphraseFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase a key's private part for good (its public part stays, to verify).

    Examples:

      nodus keys destroy "$(nodus keys list --purpose encrypt -f csv | sed -n 2p | cut -d, -f1)" \\
        --yes
    """
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("destroy erases the private key for good: pass --yes to confirm")
        typer.confirm(
            f"Erase the private part of key {visible(key_id)} for good?", abort=True, err=True
        )
    _change_key(
        passphrase_file,
        lambda keyring: keyring.destroy(key_id),
        "destroyed",
        lambda record: f"Destroyed the private part of {record.purpose} key {record.key_id}",
        as_json,
    )


def _change_key(
    passphrase_file: Path | None,
    change: Callable[[Any], Any],
    verb: str,
    message: Callable[[Any], str],
    as_json: bool,
) -> None:
    """Unlock the keyring, ``change`` one key record, save, journal and report it as ``verb``."""
    unlocked = _unlock(passphrase_file)
    record = change(unlocked)
    unlocked.save()
    _journal({verb: record.key_id})
    if as_json:
        emit_json({verb: record.public_summary()})
    else:
        say(message(record))


@keys_app.command()
def export(
    key_id: Annotated[
        str | None, typer.Argument(help="Export this key only.", show_default=False)
    ] = None,
    purpose: PurposeOption = None,
    export_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            help="nodus: nodus-sign-v1 lines and age1pq1 recipients (what --trust, -r and "
            "import read); age: recipients only (an age recipients file); json.",
            case_sensitive=False,
        ),
    ] = ExportFormat.nodus,
    output: OutputOption = None,
    identity: Annotated[
        bool,
        typer.Option(
            "--identity",
            help="Instead, write the AGE-SECRET-KEY-PQ-1 identity of an encryption KEYID to "
            "-o FILE (mode 0600), for 'age -d -i FILE'. A secret: never to stdout.",
        ),
    ] = False,
    passphrase_file: PassphraseFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write public keys only, in a form --trust, -r and 'nodus keys import' accept.

    Signing keys are exported in every state (they verify old signatures); encryption
    keys only while they may encrypt (primary or active, not expired).

    Examples:

      nodus keys export --purpose sign -o team.pub    # for --trust elsewhere
      nodus keys export --format age -o recipients.txt
      nodus keys export "$(nodus keys list --purpose encrypt -f csv | sed -n 2p | cut -d, -f1)" \\
        --identity -o key.txt   # for age -d -i key.txt
    """
    from nodus_cli.keys.export import exportable, public_key_text
    from nodus_cli.keys.files import writing
    from nodus_cli.keys.record import b64, utc_now

    if key_id and purpose:
        raise UsageError("give a KEYID or --purpose, not both")
    if identity:
        _export_identity(key_id, output, passphrase_file, as_json)
        return
    now = utc_now()
    records = exportable(
        _keyring(),
        key_id,
        purpose.value if purpose else None,
        now,
        recipients_only=export_format is ExportFormat.age,
    )
    if export_format is ExportFormat.json:
        keys = [{**r.public_summary(now), "public": b64(r.public)} for r in records]
        text = dumps({"keys": keys}) + "\n"
    else:
        text = public_key_text(records)
    if output is not None and str(output) != "-":
        with writing(output) as handle:
            handle.write(text.encode())
    elif not as_json:
        write_text(text)
    if as_json:
        emit_json(
            {
                "keys": [r.public_summary(now) for r in records],
                "format": export_format.value,
                "output": str(output) if output else None,
                "text": text,
            }
        )


def _export_identity(
    key_id: str | None, output: Path | None, passphrase_file: Path | None, as_json: bool
) -> None:
    from nodus_cli.keys.export import identity_text
    from nodus_cli.keys.files import writing

    if not key_id or output is None or str(output) == "-":
        raise UsageError("--identity takes an encryption KEYID and -o FILE (never stdout)")
    unlocked = _unlock(passphrase_file)
    record, text = identity_text(unlocked, key_id)
    with writing(output, 0o600) as handle:
        handle.write(text.encode())
    _journal({"exported_identity": record.key_id})
    if as_json:
        emit_json({"identity": str(output), "key": record.key_id})
    else:
        say(f"Wrote the age identity of key {record.key_id} to {output} (keep it secret)")


@keys_app.command("import")
def import_keys(
    path: Annotated[
        Path,
        typer.Argument(
            help="A file written by 'nodus keys export', or an age identity file "
            "(AGE-SECRET-KEY-PQ-1...)."
        ),
    ],
    passphrase_file: PassphraseFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add others' public keys (signing keys to verify with, recipients to seal to by @KEYID)
    and age identities (AGE-SECRET-KEY-PQ-1..., kept sealed as encryption keys).

    Examples:

      nodus keys export -o team.pub && nodus keys import team.pub   # keys it has are skipped
    """
    from nodus_cli.keys.export import add_imported, read_import
    from nodus_cli.keys.files import read_key_file

    text = read_key_file(path, "a public key or age identity file")
    found = read_import(text, str(path))
    unlocked = _unlock(passphrase_file)
    imported, known = add_imported(unlocked, found)
    unlocked.save()
    _journal({"imported": [r.key_id for r in imported]})
    if as_json:
        emit_json({"imported": [r.public_summary() for r in imported]})
    else:
        for record in imported:
            say(f"Imported {_describe(record)}")
        if known:
            say(f"{known} key(s) were already in the keyring")


@keys_app.command()
def seal(
    files: Annotated[list[Path], typer.Argument(help="Files to seal ('-' for stdin).")],
    recipients: Annotated[
        list[str],
        typer.Option(
            "--recipient",
            "-r",
            help="age1pq1... recipient, @keyring (the primary encryption key), @KEYID, "
            "or a recipients file (repeatable).",
        ),
    ],
    output: OutputOption = None,
    armor: Annotated[
        bool,
        typer.Option(
            "--armor",
            "-a",
            help="Write the ASCII-armored form (-----BEGIN AGE ENCRYPTED FILE-----), "
            "as 'age -a' does.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Encrypt files to the age v1 format with post-quantum mlkem768x25519 recipients.

    One FILE: -o is the output (default FILE.age, or stdout for '-'). Several FILEs:
    -o is a directory (default: next to each file), each written as NAME.age.

    Examples:

      nodus keys seal samples/syslog.log -r @keyring -o syslog.log.age
      nodus keys seal samples/app.jsonl samples/node.prom -r @keyring -o .
    """
    from nodus_cli.keys import age
    from nodus_cli.keys.export import seal_targets
    from nodus_cli.keys.files import reading, resolve_recipients, writing

    keyring = _keyring()
    resolved = resolve_recipients(recipients, keyring)
    targets = seal_targets(files, output)
    sealed = []
    for source_path, target in targets:
        if target is None and as_json:
            raise UsageError("--json needs -o when sealing to stdout")
        with (
            reading(source_path) as source,
            writing(target) as sink,
            _progress_for(source_path, "sealing", to_stdout=target is None) as advance,
        ):
            size = age.seal(source, sink, resolved, advance, armor=armor)
        sealed.append(
            {"input": str(source_path), "output": str(target) if target else "-", "bytes": size}
        )
    _journal({"sealed": len(sealed), "recipients": len(resolved)})
    if as_json:
        emit_json({"sealed": sealed, "recipients": len(resolved)})
    else:
        for item in sealed:
            if item["output"] != "-":
                say(f"Sealed {item['input']} -> {item['output']}")


@contextlib.contextmanager
def _progress_for(path: Path, verb: str, *, to_stdout: bool = False) -> Iterator[Any]:
    from nodus_cli.cli.progressbar import progress

    total = None if str(path) == "-" else path.stat().st_size
    with progress(f"{verb} {path.name}", total, data_on_stdout=to_stdout) as advance:
        yield advance


@keys_app.command("open")
def open_sealed(
    file: Annotated[Path, typer.Argument(help="The sealed file ('-' for stdin; armored ok).")],
    identity: Annotated[
        Path | None,
        typer.Option(
            "--identity",
            "-i",
            help="An age identity file (AGE-SECRET-KEY-PQ-1... lines) instead of the keyring.",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = None,
    passphrase_file: PassphraseFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Decrypt an age file with the keyring (any key not destroyed) or an identity file.

    Examples:

      nodus keys open cpu.csv.age -o cpu.csv
      nodus keys open cpu.csv.age | head -3              # to stdout
    """
    from nodus_cli.keys import age
    from nodus_cli.keys.files import keyring_identities, naming, read_key_file, reading, writing

    if (output is None or str(output) == "-") and as_json:
        raise UsageError("--json needs -o FILE (the plaintext cannot share stdout)")
    if identity is not None:
        text = read_key_file(identity, "an age identity file")
        identities = age.parse_identities(text, str(identity))
        tried = f"the identities in {identity}"
    else:
        identities = keyring_identities(_unlock(passphrase_file))
        tried = "the keyring's keys"
    target = None if output is None or str(output) == "-" else output
    with (
        reading(file) as source,
        writing(target, 0o600) as sink,
        _progress_for(file, "opening", to_stdout=target is None) as advance,
        naming("stdin" if str(file) == "-" else str(file), tried),
    ):
        used, size = age.open_file(source, sink, identities, advance)
    label = used.label
    if as_json:
        emit_json({"input": str(file), "output": str(target), "bytes": size, "identity": label})
    elif target is not None:
        say(f"Opened {file} -> {target} (key {label})")


@keys_app.command()
def sign(
    file: Annotated[Path, typer.Argument(help="The file to sign ('-' for stdin).")],
    output: OutputOption = None,
    key_id: Annotated[
        str | None,
        typer.Option("--key", help="Sign with this active key instead of the primary."),
    ] = None,
    passphrase_file: PassphraseFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a detached composite signature (default FILE.sig, '-' for stdout).

    Examples:

      nodus keys sign samples/cpu.csv                    # samples/cpu.csv.sig
      nodus keys sign samples/app.jsonl -o - > app.sig
    """
    from nodus_cli.keys.files import reading, sign_stream, writing

    if output is None:
        output = Path("-") if str(file) == "-" else file.with_name(file.name + ".sig")
    if str(output) == "-" and as_json:
        raise UsageError("--json needs -o FILE (the signature cannot share stdout)")
    key = _unlock(passphrase_file).signing_key(key_id)
    with reading(file) as source, _progress_for(file, "signing") as advance:
        signature = sign_stream(key, source, on_progress=advance)
    with writing(output) as sink:
        sink.write(signature.to_text().encode())
    if as_json:
        emit_json(
            {
                "file": str(file),
                "signature": str(output),
                "key": key.key_id,
                "signed": signature.signed_at,
            }
        )
    elif str(output) != "-":
        say(f"Signed {file} with key {key.key_id} -> {output}")


@keys_app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="The signed file ('-' for stdin).")],
    signature_file: Annotated[
        Path, typer.Argument(help="The signature written by 'nodus keys sign'.")
    ],
    trust: Annotated[
        Path | None,
        typer.Option(
            "--trust",
            help="Public key file (from 'nodus keys export --purpose sign'); "
            "default: the signing keys the workspace's key log vouches for.",
            show_default=False,
        ),
    ] = None,
    trust_root: TrustRootOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a detached signature: both halves, and the key's validity at signing time.

    Examples:

      nodus keys sign samples/cpu.csv && nodus keys verify samples/cpu.csv samples/cpu.csv.sig
      nodus keys export --purpose sign -o team.pub \\
        && nodus keys verify samples/cpu.csv samples/cpu.csv.sig --trust team.pub
    """
    from nodus_cli.keys.files import DetachedSignature, read_key_file, reading, verify_stream
    from nodus_cli.keys.keyring import trusted_signing_keys

    text = read_key_file(signature_file, "a signature file")
    signature = DetachedSignature.parse(text, str(signature_file))
    trusted = trusted_signing_keys(state.workspace(), [trust] if trust else [], trust_root)
    with reading(file) as source, _progress_for(file, "verifying") as advance:
        key = verify_stream(source, signature, trusted, advance)
    if as_json:
        emit_json(
            {"file": str(file), "valid": True, "key": key.key_id, "signed": signature.signed_at}
        )
    else:
        say(f"Good signature on {file} by key {key.key_id}, made {signature.signed_at.isoformat()}")


LOG_COLUMNS = ["seq", "time", "event", "key", "purpose", "signer"]


@keys_app.command()
def log(
    check: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Check the chain, order, dates and signatures, and that the keyring "
            "agrees (exit 1 on any edit, deletion, reordering or back-dating).",
        ),
    ] = False,
    fmt: FormatOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the key log: every generate, rotate, import, revoke and destroy.

    Examples:

      nodus keys log
      nodus keys log --verify
    """
    from nodus_cli.keys import keylog
    from nodus_cli.keys.record import utc_now

    keyring = _keyring()
    if check:
        document = keyring.document()
        report = keylog.verify_log(keyring.log_path, document.log_head, document.keys, utc_now())
        if as_json:
            emit_json(
                {"ok": report.ok, "entries": len(report.entries), "problems": report.problems}
            )
        elif report.ok:
            say(f"Key log verified: {len(report.entries)} entries, chain and signatures intact")
        if not report.ok:
            raise CheckFailed("key log: " + "; ".join(report.problems))
        return
    entries = keylog.parsed_entries(keyring.log_path)
    output = resolve_format(fmt, as_json)
    if as_json and fmt is None:
        emit_json({"entries": [{c: e.get(c) for c in LOG_COLUMNS} for e in entries]})
        return
    render_rows(LOG_COLUMNS, ([e.get(c) for c in LOG_COLUMNS] for e in entries), output)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app)
