"""Errors of the keyring and of sealed files, each mapped to its documented exit code."""

from __future__ import annotations

from nodus_cli.errors import EXIT_USAGE, CannotVerify, CheckFailed, InputError, UsageError


class WrongPassphrase(InputError):
    """The passphrase does not unlock the keyring (exit 2)."""


class KeyringTampered(CheckFailed):
    """The keyring file or the key log was edited, truncated or reordered (exit 1)."""


class KeyUnusable(UsageError):
    """The key's state or dates forbid this use (expired, revoked, retired, destroyed)."""


class SignatureInvalid(CheckFailed):
    """A signature does not verify, or was made outside its key's validity (exit 1)."""


class UnknownSigner(CannotVerify):
    """No trusted key has the signature's key id (exit 3)."""


class AgeError(CheckFailed):
    """An age file cannot be opened; ``kind`` names the class of failure (exit 1)."""

    kind = "header failure"


class AgeHeaderError(AgeError):
    """The header is malformed or a stanza is invalid."""


class NotAgeFile(AgeHeaderError):
    """The input is not an age file at all (empty, compressed, another format): exit 2."""

    exit_code = EXIT_USAGE


class AgeNoMatch(AgeError):
    """No identity matches any recipient stanza; ``recipients`` says whom the file is for."""

    kind = "no match"

    def __init__(self, message: str, *, recipients: str = "") -> None:
        super().__init__(message)
        self.recipients = recipients


class AgeHmacError(AgeError):
    """The header MAC does not match: the header was edited."""

    kind = "HMAC failure"


class AgePayloadError(AgeError):
    """A payload chunk fails authentication, is truncated or has trailing data."""

    kind = "payload failure"


class AgeArmorError(AgeError):
    """The ASCII armor is malformed."""

    kind = "armor failure"
