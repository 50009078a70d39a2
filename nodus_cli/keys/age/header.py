"""The age header: encodings, recipient stanzas and identities, and the header itself.

Everything before the payload (``stream.py``): the version line, one stanza per
recipient (``mlkem768x25519``, ``X25519``, ``scrypt``) wrapping the file key, and the
header MAC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from nodus_cli.errors import InputError
from nodus_cli.keys import xwing
from nodus_cli.keys.errors import (
    AgeHeaderError,
    AgeHmacError,
    AgeNoMatch,
    NotAgeFile,
)

if TYPE_CHECKING:
    pass

VERSION_LINE = b"age-encryption.org/v1"
HYBRID_TYPE = "mlkem768x25519"
HYBRID_INFO = b"age-encryption.org/mlkem768x25519"
X25519_TYPE = "X25519"
X25519_INFO = b"age-encryption.org/v1/X25519"
SCRYPT_TYPE = "scrypt"
SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
SCRYPT_MAX_WORK_FACTOR = 22
RECIPIENT_HRP = "age1pq"
X25519_RECIPIENT_HRP = "age"
IDENTITY_HRP = "AGE-SECRET-KEY-PQ-"
X25519_IDENTITY_HRP = "AGE-SECRET-KEY-"
FILE_KEY_SIZE = 16
NONCE_SIZE = 16
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
BODY_COLUMNS = 64
MAX_HEADER_LINE = 8192
MAX_STANZAS = 1024
WHITESPACE = b" \t\r\n"
ARGUMENT = re.compile(rb"^[\x21-\x7e]+$")
BASE64_RAW = re.compile(rb"^[A-Za-z0-9+/]*$")

Progress = Callable[[int], None] | None


# --- encodings ----------------------------------------------------------------------


def b64_raw_decode(text: bytes) -> bytes:
    """Canonical unpadded base64 (age's rule), or AgeHeaderError."""
    if not BASE64_RAW.match(text) or len(text) % 4 == 1:
        raise AgeHeaderError("invalid base64 in the header")
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise AgeHeaderError("invalid base64 in the header") from None
    if b64_raw_encode(data) != text:
        raise AgeHeaderError("non-canonical base64 in the header")
    return data


def b64_raw_encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values: Iterable[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            checksum ^= generator[i] if (top >> i) & 1 else 0
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Iterable[int], source: int, target: int, pad: bool) -> list[int]:
    accumulator, bits, result = 0, 0, []
    maximum = (1 << target) - 1
    for value in data:
        accumulator = (accumulator << source) | value
        bits += source
        while bits >= target:
            bits -= target
            result.append((accumulator >> bits) & maximum)
    if pad and bits:
        result.append((accumulator << (target - bits)) & maximum)
    elif not pad and (bits >= source or (accumulator << (target - bits)) & maximum):
        raise ValueError("invalid padding")
    return result


def bech32_encode(hrp: str, data: bytes) -> str:
    """BIP 173 Bech32 without the 90-character limit, as age uses it."""
    lower = hrp.lower()
    words = _convert_bits(data, 8, 5, True)
    polymod = _bech32_polymod([*_hrp_expand(lower), *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    text = lower + "1" + "".join(_BECH32_CHARSET[w] for w in words + checksum)
    return text.upper() if hrp.isupper() else text


def bech32_decode(text: str) -> tuple[str, bytes]:
    """``(hrp, data)``; the string must be all lower or all upper case."""
    if text.lower() != text and text.upper() != text:
        raise ValueError("mixed case")
    lower = text.lower()
    position = lower.rfind("1")
    if position < 1 or position + 7 > len(lower):
        raise ValueError("no separator")
    hrp, rest = lower[:position], lower[position + 1 :]
    if any(c not in _BECH32_CHARSET for c in rest):
        raise ValueError("invalid character")
    words = [_BECH32_CHARSET.index(c) for c in rest]
    if _bech32_polymod([*_hrp_expand(hrp), *words]) != 1:
        raise ValueError("bad checksum")
    data = bytes(_convert_bits(words[:-6], 5, 8, False))
    return (hrp.upper() if text.isupper() else hrp), data


def encode_recipient(public: bytes) -> str:
    """The ``age1pq1...`` string of an X-Wing public key."""
    return bech32_encode(RECIPIENT_HRP, public)


def encode_identity(seed: bytes) -> str:
    """The ``AGE-SECRET-KEY-PQ-1...`` string of an X-Wing seed: a secret."""
    return bech32_encode(IDENTITY_HRP, seed)


# --- stanzas, recipients, identities ------------------------------------------------


@dataclass
class Stanza:
    type: str
    args: list[str]
    body: bytes

    def encode(self) -> bytes:
        lines = [b"-> " + " ".join([self.type, *self.args]).encode()]
        encoded = b64_raw_encode(self.body)
        for start in range(0, len(encoded), BODY_COLUMNS):
            lines.append(encoded[start : start + BODY_COLUMNS])
        if len(encoded) % BODY_COLUMNS == 0:
            lines.append(b"")
        return b"\n".join(lines) + b"\n"


class Identity(Protocol):
    label: str  # names the identity in messages (a key id, a file and line)

    def unwrap(self, stanza: Stanza) -> bytes | None:
        """The file key, None when the stanza is not for this identity; raises on a bad one."""
        ...


class Recipient(Protocol):
    def wrap(self, file_key: bytes) -> Stanza: ...


def _hpke_suite() -> Any:
    from cryptography.hazmat.primitives import hpke

    return hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


@dataclass
class HybridRecipient:
    """An ``age1pq1...`` recipient (X-Wing public key)."""

    public: bytes

    def wrap(self, file_key: bytes) -> Stanza:
        sealed = _hpke_suite().encrypt(file_key, xwing.public_key(self.public), HYBRID_INFO)
        enc, body = sealed[: xwing.CIPHERTEXT_SIZE], sealed[xwing.CIPHERTEXT_SIZE :]
        return Stanza(HYBRID_TYPE, [b64_raw_encode(enc).decode()], body)


def _decode_stanza_arg(stanza: Stanza, expected_size: int) -> bytes:
    if len(stanza.args) != 1:
        raise AgeHeaderError(f"invalid {stanza.type} stanza: wrong number of arguments")
    value = b64_raw_decode(stanza.args[0].encode())
    if len(value) != expected_size:
        raise AgeHeaderError(f"invalid {stanza.type} stanza: argument has the wrong size")
    if len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
        raise AgeHeaderError(f"invalid {stanza.type} stanza: the file key is not 16 bytes")
    return value


class HybridIdentity:
    """An X-Wing seed (``AGE-SECRET-KEY-PQ-1...``); ``label`` names it in messages."""

    def __init__(self, seed: bytes, label: str = "") -> None:
        self._private = xwing.private_key(seed)
        self._x25519 = hashlib.shake_256(seed).digest(96)[64:]
        self.label = label

    def unwrap(self, stanza: Stanza) -> bytes | None:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.asymmetric import x25519

        if stanza.type != HYBRID_TYPE:
            return None
        enc = _decode_stanza_arg(stanza, xwing.CIPHERTEXT_SIZE)
        try:  # an all-zero X25519 share is malformed, not merely someone else's
            x25519.X25519PrivateKey.from_private_bytes(self._x25519).exchange(
                x25519.X25519PublicKey.from_public_bytes(enc[1088:])
            )
        except ValueError:
            raise AgeHeaderError("invalid mlkem768x25519 stanza: low-order X25519 share") from None
        try:
            return bytes(_hpke_suite().decrypt(enc + stanza.body, self._private, HYBRID_INFO))
        except (InvalidTag, ValueError):  # sealed to someone else
            return None


class X25519Identity:
    """A classic ``AGE-SECRET-KEY-1...`` identity."""

    def __init__(self, secret: bytes, label: str = "") -> None:
        from cryptography.hazmat.primitives.asymmetric import x25519

        self._private = x25519.X25519PrivateKey.from_private_bytes(secret)
        self.label = label

    def unwrap(self, stanza: Stanza) -> bytes | None:
        from cryptography.hazmat.primitives.asymmetric import x25519

        if stanza.type != X25519_TYPE:
            return None
        share = _decode_stanza_arg(stanza, 32)
        try:
            shared = self._private.exchange(x25519.X25519PublicKey.from_public_bytes(share))
        except ValueError:
            raise AgeHeaderError("invalid X25519 stanza: low-order share") from None
        ours = self._private.public_key().public_bytes_raw()
        key = hkdf(shared, share + ours, X25519_INFO)
        return _open_file_key(key, stanza.body)


class ScryptIdentity:
    """A passphrase (``scrypt`` stanzas)."""

    def __init__(self, passphrase: bytes, label: str = "passphrase") -> None:
        self._passphrase = passphrase
        self.label = label

    def unwrap(self, stanza: Stanza) -> bytes | None:
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        if stanza.type != SCRYPT_TYPE:
            return None
        if len(stanza.args) != 2:
            raise AgeHeaderError("invalid scrypt stanza: wrong number of arguments")
        salt = b64_raw_decode(stanza.args[0].encode())
        if len(salt) != 16 or not re.fullmatch(r"[1-9][0-9]?", stanza.args[1]):
            raise AgeHeaderError("invalid scrypt stanza: bad salt or work factor")
        work_factor = int(stanza.args[1])
        if work_factor > SCRYPT_MAX_WORK_FACTOR:
            raise AgeHeaderError(f"scrypt work factor {work_factor} is too high")
        if len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
            raise AgeHeaderError("invalid scrypt stanza: the file key is not 16 bytes")
        key = Scrypt(salt=SCRYPT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1).derive(
            self._passphrase
        )
        return _open_file_key(key, stanza.body)


def hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt=salt, info=info).derive(secret)


def _open_file_key(key: bytes, body: bytes) -> bytes | None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    try:
        return ChaCha20Poly1305(key).decrypt(bytes(12), body, None)
    except InvalidTag:
        return None


def parse_recipient(text: str) -> HybridRecipient:
    """An ``age1pq1...`` string."""
    try:
        hrp, data = bech32_decode(text.strip())
    except ValueError as exc:
        raise InputError(f"not an age recipient: {text[:20]}... ({exc})") from None
    if hrp != RECIPIENT_HRP:
        raise InputError(
            "nodus seals only to post-quantum age recipients (age1pq1...); "
            f"{text[:12]}... is not one"
        )
    xwing.public_key(data)  # validates (ML-KEM modulus check)
    return HybridRecipient(data)


def _decode_identity(line: str, where: str) -> tuple[str, bytes]:
    """``(hrp, key bytes)`` of one identity line, checked for type and size."""
    try:
        hrp, data = bech32_decode(line)
    except ValueError:
        raise InputError(f"{where}: not an age identity (AGE-SECRET-KEY-...)") from None
    if hrp in (RECIPIENT_HRP, X25519_RECIPIENT_HRP):
        raise InputError(
            f"{where}: a recipient (public key), not an identity: give the AGE-SECRET-KEY file"
        )
    if hrp == IDENTITY_HRP and len(data) == xwing.SEED_SIZE:
        return hrp, data
    if hrp == X25519_IDENTITY_HRP and len(data) == 32:
        return hrp, data
    raise InputError(f"{where}: unsupported age identity type")


def parse_identities(text: str, source: str = "identity file") -> list[Identity]:
    """``AGE-SECRET-KEY-PQ-1...`` and ``AGE-SECRET-KEY-1...`` lines; ``#`` comments."""
    identities: list[Identity] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{source}:{number}"
        hrp, data = _decode_identity(stripped, where)
        if hrp == IDENTITY_HRP:
            identities.append(HybridIdentity(data, where))
        else:
            identities.append(X25519Identity(data, where))
    if not identities:
        raise InputError(f"{source}: no age identity in the file")
    return identities


def hybrid_identity_seeds(text: str, source: str = "identity file") -> list[bytes]:
    """The X-Wing seeds of the ``AGE-SECRET-KEY-PQ-1...`` lines of ``text`` (other lines,
    such as public keys and comments, are not looked at)."""
    seeds = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped.upper().startswith(X25519_IDENTITY_HRP):
            continue
        hrp, data = _decode_identity(stripped, f"{source}:{number}")
        if hrp != IDENTITY_HRP:
            raise InputError(
                f"{source}:{number}: a classic X25519 identity (AGE-SECRET-KEY-1...): the "
                "keyring holds post-quantum keys only ('nodus keys open -i' still reads it)"
            )
        seeds.append(data)
    return seeds


# --- header -------------------------------------------------------------------------


@dataclass
class Header:
    stanzas: list[Stanza]
    mac: bytes
    mac_input: bytes  # the header bytes up to and including "---"

    def check_mac(self, file_key: bytes) -> None:
        if not hmac.compare_digest(header_mac(file_key, self.mac_input), self.mac):
            raise AgeHmacError("header MAC mismatch: the header was edited")


def header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    return hmac.new(hkdf(file_key, b"", b"header"), mac_input, "sha256").digest()


def _read_line(source: IO[bytes]) -> bytes:
    line = source.readline(MAX_HEADER_LINE)
    if len(line) == MAX_HEADER_LINE and not line.endswith(b"\n"):
        raise AgeHeaderError(f"a header line is longer than {MAX_HEADER_LINE} bytes")
    if not line.endswith(b"\n"):
        raise AgeHeaderError("the file ends inside the age header: it is truncated")
    return line


# What a file given by mistake starts with, to say what it is instead.
FORMAT_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data", "gunzip"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data", "unzstd"),
    (b"\xfd7zXZ\x00", "xz-compressed data", "unxz"),
    (b"BZh", "bzip2-compressed data", "bunzip2"),
    (b"PK\x03\x04", "a zip archive", "unzip"),
)


def not_age(start: bytes) -> NotAgeFile:
    """The error for input that is not an age file, saying what it looks like instead."""
    if not start:
        return NotAgeFile("the file is empty, not an age file")
    for magic, kind, tool in FORMAT_MAGIC:
        if start.startswith(magic):
            return NotAgeFile(
                f"{kind}, not an age file (if the sealed file was compressed, {tool} it first)"
            )
    if start.startswith(b"-----BEGIN "):
        label = start[11:].split(b"-----")[0][:40].decode("ascii", "replace")
        return NotAgeFile(f"an armored {label!r} file, not an age file")
    if start.startswith(b"age-encryption.org/"):
        version = start.split(b"\n")[0][:40].decode("ascii", "replace")
        return NotAgeFile(f"unsupported age format {version!r} (this nodus reads v1)")
    return NotAgeFile(f"not an age file: it does not begin with {VERSION_LINE.decode()!r}")


def read_header(source: IO[bytes]) -> Header:
    """Parse the header strictly; raises AgeHeaderError (wrong version, bad grammar)."""
    raw = bytearray()
    first = source.readline(MAX_HEADER_LINE)
    if first != VERSION_LINE + b"\n":
        if first and (VERSION_LINE + b"\n").startswith(first):
            raise AgeHeaderError("the file ends inside the age header: it is truncated")
        if first == VERSION_LINE + b"\r\n":
            raise AgeHeaderError("the header's line ends were converted to CRLF: it is damaged")
        raise not_age(first)
    raw += first
    stanzas: list[Stanza] = []
    line = _read_line(source)
    while line.startswith(b"-> "):
        if len(stanzas) >= MAX_STANZAS:
            raise AgeHeaderError("too many stanzas")
        raw += line
        args = line[3:-1].split(b" ")
        if not all(ARGUMENT.match(arg) for arg in args):
            raise AgeHeaderError("invalid stanza arguments")
        body = bytearray()
        while True:
            body_line = _read_line(source)
            raw += body_line
            content = body_line[:-1]
            if len(content) > BODY_COLUMNS:
                raise AgeHeaderError("stanza body line longer than 64 columns")
            body += content
            if len(content) < BODY_COLUMNS:
                break
        decoded_args = [arg.decode() for arg in args]
        stanzas.append(Stanza(decoded_args[0], decoded_args[1:], b64_raw_decode(bytes(body))))
        line = _read_line(source)
    if not line.startswith(b"--- "):
        raise AgeHeaderError("invalid header: expected a stanza or the MAC line")
    raw += b"---"
    mac = b64_raw_decode(line[4:-1])
    if len(mac) != 32:
        raise AgeHeaderError("invalid header MAC length")
    if not stanzas:
        raise AgeHeaderError("the header has no recipient stanza")
    return Header(stanzas, mac, bytes(raw))


def encode_header(stanzas: list[Stanza], file_key: bytes) -> bytes:
    mac_input = VERSION_LINE + b"\n" + b"".join(s.encode() for s in stanzas) + b"---"
    return mac_input + b" " + b64_raw_encode(header_mac(file_key, mac_input)) + b"\n"


def unwrap_file_key(header: Header, identities: Iterable[Identity]) -> tuple[bytes, Identity]:
    """The file key and the identity that opened it; AgeNoMatch if none does."""
    if any(s.type == SCRYPT_TYPE for s in header.stanzas) and len(header.stanzas) != 1:
        raise AgeHeaderError("an scrypt stanza must be the only one in the header")
    for identity in identities:
        for stanza in header.stanzas:
            file_key = identity.unwrap(stanza)
            if file_key is not None:
                if len(file_key) != FILE_KEY_SIZE:
                    raise AgeHeaderError("the file key is not 16 bytes")
                header.check_mac(file_key)
                return file_key, identity
    recipients = sealed_to(header.stanzas)
    raise AgeNoMatch(f"no identity given opens it: {recipients}", recipients=recipients)


def sealed_to(stanzas: list[Stanza]) -> str:
    """Whom a file is sealed to, in words: 'it is sealed to 2 other recipients (...)'."""
    if any(s.type == SCRYPT_TYPE for s in stanzas):
        return "it is sealed with a passphrase (scrypt), not to a key"
    kinds = sorted({s.type[:32] for s in stanzas})[:4]  # the file's words: bounded
    count = len(stanzas)
    return f"it is sealed to {count} other recipient{'s' if count > 1 else ''} ({', '.join(kinds)})"
