"""The age v1 file format (c2sp.org/age), streaming, with the post-quantum recipient.

Recipients and identities:

- ``mlkem768x25519`` (age 1.3, ``age1pq1...`` / ``AGE-SECRET-KEY-PQ-1...``): HPKE base
  mode, KEM MLKEM768-X25519 (X-Wing, 0x647a), HKDF-SHA256, ChaCha20-Poly1305, info
  ``age-encryption.org/mlkem768x25519``; the stanza argument is ``enc``, the body the
  sealed 16-byte file key. nodus seals only to these.
- ``X25519`` and ``scrypt`` are read too (other tools' files, the conformance vectors).

A file is the header (version line, stanzas, ``--- MAC``), a 16-byte nonce, and the
payload in 64 KiB ChaCha20-Poly1305 chunks (STREAM: 11-byte counter and a last-chunk
flag as nonce). Everything here streams: memory stays flat whatever the file size.
ASCII-armored files (``-----BEGIN AGE ENCRYPTED FILE-----``) are read and written, also
streaming.

The header (encodings, stanzas, recipients, identities) is ``header``, the armor
``armor``, the payload and the whole-file operations ``stream``; this package is
what the rest of nodus uses.
"""

from nodus_cli.keys.age.armor import ARMOR_BEGIN, ARMOR_END, ARMOR_WRITE_SIZE, unarmored
from nodus_cli.keys.age.header import (
    FORMAT_MAGIC,
    IDENTITY_HRP,
    VERSION_LINE,
    X25519_IDENTITY_HRP,
    HybridIdentity,
    HybridRecipient,
    Identity,
    ScryptIdentity,
    bech32_decode,
    bech32_encode,
    encode_identity,
    encode_recipient,
    hybrid_identity_seeds,
    parse_identities,
    parse_recipient,
    read_header,
    unwrap_file_key,
)
from nodus_cli.keys.age.stream import open_file, rewrap, seal

__all__ = [
    "ARMOR_BEGIN",
    "ARMOR_END",
    "ARMOR_WRITE_SIZE",
    "FORMAT_MAGIC",
    "IDENTITY_HRP",
    "VERSION_LINE",
    "X25519_IDENTITY_HRP",
    "HybridIdentity",
    "HybridRecipient",
    "Identity",
    "ScryptIdentity",
    "bech32_decode",
    "bech32_encode",
    "encode_identity",
    "encode_recipient",
    "hybrid_identity_seeds",
    "open_file",
    "parse_identities",
    "parse_recipient",
    "read_header",
    "rewrap",
    "seal",
    "unarmored",
    "unwrap_file_key",
]
