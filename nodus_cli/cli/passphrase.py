"""The keyring passphrase, for every command that unlocks it.

Order: ``--passphrase-file`` (first line), then ``$NODUS_PASSPHRASE``, then a prompt
when stdin is a terminal. The passphrase is never echoed, printed or logged.
"""

import os
import sys
from pathlib import Path

from nodus_cli.errors import UsageError

PASSPHRASE_ENV = "NODUS_PASSPHRASE"
MAX_PASSPHRASE_FILE = 64 << 10


def _prompt(text: str) -> bytes:
    """Ask on the terminal with echo off; the prompt appears only once echo is off,
    so whatever is typed after it is never flushed away."""
    import getpass

    return getpass.getpass(text, stream=sys.stderr).encode()


def read_passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> bytes:
    """The passphrase as bytes; ``confirm`` asks twice when prompting (new keyrings)."""
    if passphrase_file is not None:
        from nodus_cli.fsutil import read_bounded

        text = read_bounded(passphrase_file, MAX_PASSPHRASE_FILE, "the passphrase file")
        passphrase = text.splitlines()[0] if text.strip() else b""
    elif os.environ.get(PASSPHRASE_ENV):
        passphrase = os.environ[PASSPHRASE_ENV].encode()
    elif sys.stdin.isatty():
        passphrase = _prompt("Keyring passphrase: ")
        if confirm and _prompt("Repeat for confirmation: ") != passphrase:
            raise UsageError("the two passphrases do not match")
    else:
        raise UsageError(
            f"the keyring needs a passphrase: set {PASSPHRASE_ENV}, pass --passphrase-file, "
            "or run on a terminal"
        )
    if not passphrase:
        raise UsageError("the keyring passphrase is empty")
    return passphrase
