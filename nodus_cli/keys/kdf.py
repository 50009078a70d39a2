"""The keyring key from the passphrase: scrypt, tuned per keyring, and its subkeys.

The scrypt cost is chosen once, when a keyring is made (at least 0.25 s here), and
stored with it; files asking for more than 2^22 are refused.
"""

from __future__ import annotations

import time

SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MIN_LOG2_N = 17  # about 0.35 s on a 2020s laptop core
SCRYPT_MAX_LOG2_N = 22  # refuse files that would make an unlock take minutes
MIN_UNLOCK_SECONDS = 0.25


def derive_master(passphrase: bytes, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(passphrase)


def subkey(master: bytes, purpose: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt=None, info=b"nodus-keyring/v1 " + purpose).derive(master)


def calibrate_log2_n(passphrase: bytes, salt: bytes) -> tuple[int, bytes]:
    """The smallest scrypt cost from the floor up that takes at least 0.25 s here."""
    log2_n = SCRYPT_MIN_LOG2_N
    while True:
        started = time.perf_counter()
        master = derive_master(passphrase, salt, log2_n, SCRYPT_R, SCRYPT_P)
        if time.perf_counter() - started >= MIN_UNLOCK_SECONDS or log2_n >= SCRYPT_MAX_LOG2_N:
            return log2_n, master
        log2_n += 1
