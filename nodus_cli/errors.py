"""Typed errors shared by every library package.

Library code raises these and never prints; the CLI turns each into one line on
stderr and its exit code (see the exit-code table in README.md).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PROBLEM = 1  # a check found a problem: tamper, mismatch, anomaly, changes
EXIT_USAGE = 2  # bad usage or bad input
EXIT_UNVERIFIABLE = 3  # cannot verify: unknown key or algorithm


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line, for a one-line ``nodus: error:``."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# What went wrong with a file, in a user's words, by errno (os.strerror is close but
# says "No such file or directory" of a missing file).
_OS_ERRORS = {
    "ENOENT": "no such file",
    "EACCES": "permission denied",
    "EPERM": "operation not permitted",
    "EISDIR": "is a directory",
    "ENOTDIR": "a part of the path is not a directory",
    "ENOSPC": "no space left on the device",
    "EDQUOT": "disk quota exceeded",
    "EROFS": "read-only file system",
    "EEXIST": "already exists",
    "ELOOP": "too many levels of symbolic links",
    "ENAMETOOLONG": "name too long",
    "EMFILE": "too many open files",
    "EIO": "input/output error",
}


def describe_os_error(exc: OSError) -> str:
    """``PATH: no such file``: an OSError as one line in the user's terms."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    reason = _OS_ERRORS.get(name) or (exc.strerror or type(exc).__name__).lower()
    return f"{exc.filename}: {reason}" if exc.filename is not None else reason


class NodusError(Exception):
    """Base class: a message for the user and the exit code it maps to."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class UsageError(NodusError):
    """The command was called wrongly (conflicting options, bad values)."""


class InputError(NodusError):
    """An input file, query or value cannot be read or parsed."""


class NotFoundError(NodusError):
    """A named thing (series, table, key, generation) does not exist."""


class WorkspaceError(NodusError):
    """The workspace cannot be found, created or used."""


class StoreError(NodusError):
    """The store cannot be opened or is in a state this nodus refuses to touch."""


class StoreLockedError(StoreError):
    """Another process holds the store's write lock past the lock timeout."""


class CheckFailed(NodusError):
    """A check ran and found a problem (exit 1)."""

    exit_code = EXIT_PROBLEM


class CannotVerify(NodusError):
    """A check could not decide: unknown key, untrusted signer, unknown algorithm (exit 3)."""

    exit_code = EXIT_UNVERIFIABLE
