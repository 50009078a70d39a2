"""X-Wing / MLKEM768-X25519 keys from their 32-byte seed (draft-connolly-cfrg-xwing-kem).

``SHAKE256(seed, 96)``: bytes 0..64 are the ML-KEM-768 seed ``d || z``, bytes 64..96
the X25519 scalar. The public key is ``pkM (1184) || pkX (32)``. The same seed is the
HPKE KEM 0x647a private key and the age ``mlkem768x25519`` identity.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from nodus_cli.errors import InputError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.hpke import (
        MLKEM768X25519PrivateKey,
        MLKEM768X25519PublicKey,
    )

ALGORITHM = "MLKEM768-X25519"
SEED_SIZE = 32
MLKEM_PUBLIC_SIZE = 1184
PUBLIC_KEY_SIZE = MLKEM_PUBLIC_SIZE + 32
CIPHERTEXT_SIZE = 1088 + 32
XWING_LABEL = bytes.fromhex("5c2e2f2f5e5c")


def private_key(seed: bytes) -> MLKEM768X25519PrivateKey:
    """The HPKE private key for a 32-byte X-Wing seed."""
    from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
    from cryptography.hazmat.primitives.hpke import MLKEM768X25519PrivateKey

    if len(seed) != SEED_SIZE:
        raise InputError(f"an X-Wing seed is {SEED_SIZE} bytes, not {len(seed)}")
    expanded = hashlib.shake_256(seed).digest(96)
    return MLKEM768X25519PrivateKey(
        mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        x25519.X25519PrivateKey.from_private_bytes(expanded[64:]),
    )


def public_bytes(seed: bytes) -> bytes:
    """``pkM || pkX`` for a seed."""
    from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

    expanded = hashlib.shake_256(seed).digest(96)
    mlkem_public = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]).public_key()
    x25519_public = x25519.X25519PrivateKey.from_private_bytes(expanded[64:]).public_key()
    return mlkem_public.public_bytes_raw() + x25519_public.public_bytes_raw()


def public_key(raw: bytes) -> MLKEM768X25519PublicKey:
    """The HPKE public key from ``pkM || pkX`` (the ML-KEM modulus check applies)."""
    from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
    from cryptography.hazmat.primitives.hpke import MLKEM768X25519PublicKey

    if len(raw) != PUBLIC_KEY_SIZE:
        raise InputError(f"an X-Wing public key is {PUBLIC_KEY_SIZE} bytes, not {len(raw)}")
    try:
        return MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:MLKEM_PUBLIC_SIZE]),
            x25519.X25519PublicKey.from_public_bytes(raw[MLKEM_PUBLIC_SIZE:]),
        )
    except ValueError:
        raise InputError("invalid X-Wing public key") from None


def decapsulate(seed: bytes, ciphertext: bytes) -> bytes:
    """The X-Wing shared secret ``SHA3-256(ssM || ssX || ctX || pkX || label)``."""
    from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

    if len(ciphertext) != CIPHERTEXT_SIZE:
        raise InputError(f"an X-Wing ciphertext is {CIPHERTEXT_SIZE} bytes")
    expanded = hashlib.shake_256(seed).digest(96)
    mlkem_key = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
    x25519_key = x25519.X25519PrivateKey.from_private_bytes(expanded[64:])
    shared_m = mlkem_key.decapsulate(ciphertext[:1088])
    ct_x = ciphertext[1088:]
    shared_x = x25519_key.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    pk_x = x25519_key.public_key().public_bytes_raw()
    return hashlib.sha3_256(shared_m + shared_x + ct_x + pk_x + XWING_LABEL).digest()
