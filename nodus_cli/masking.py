"""Which names look like secrets, and how their values are masked in what nodus prints.

One rule for every surface: the journal's arguments, configuration diffs and history.
A name is split into words (``db.password``, ``apiKey``, ``--token-file``); it looks
secret when a word is a secret word or contains a strong one, unless its last word says
it names where a secret lives or what it is (``--passphrase-file``, ``key_id``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MASK = "***"

# Words that mark a secret wherever they appear inside a word (dbpassword, apitoken).
_STRONG = ("password", "passwd", "passphrase", "secret", "token", "credential", "apikey")
# Words that mark a secret only as a whole word (key but not keyring or monkey).
_WORDS = frozenset(
    {"key", "pass", "pwd", "auth", "authorization", "cred", "creds", "private", "cookie"}
)
# A last word that makes the name a reference to a secret, not the secret itself.
_REFERENCE = frozenset({"file", "path", "dir", "id", "ids", "name", "type", "env"})
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_SEPARATOR = re.compile(r"[^a-z0-9]+")


def _words(name: str) -> list[str]:
    return [w for w in _SEPARATOR.split(_CAMEL.sub(r"\1_\2", name).lower()) if w]


def is_secret_name(name: str) -> bool:
    """Whether a key, key path or option name looks like it holds a secret."""
    words = _words(name)
    if not words or words[-1] in _REFERENCE:
        return False
    for word in words:
        singular = word[:-1] if word.endswith("s") else word
        if word in _WORDS or singular in _WORDS or any(s in word for s in _STRONG):
            return True
    return False


def mask_assignment(text: str) -> str:
    """``KEY=VALUE`` with VALUE masked when KEY looks secret; other text as it is."""
    key, eq, _value = text.partition("=")
    return f"{key}={MASK}" if eq and is_secret_name(key) else text


def mask_args(argv: Sequence[str]) -> list[str]:
    """Mask the values of options and ``key=value`` arguments whose name looks secret.

    ``--token X``, ``--token=X``, ``--set db.password=X`` and ``--set=db.password=X``
    all keep the name and lose the value.
    """
    masked: list[str] = []
    mask_next = False
    for arg in argv:
        if mask_next:
            masked.append(MASK)
            mask_next = False
        elif arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if is_secret_name(name):
                masked.append(f"{name}={MASK}" if eq else arg)
                mask_next = not eq
            else:
                masked.append(f"{name}={mask_assignment(value)}" if eq else arg)
        elif arg.startswith("-"):
            masked.append(arg)
        else:
            masked.append(mask_assignment(arg))
    return masked
