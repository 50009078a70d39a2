"""The age payload: a nonce, then 64 KiB ChaCha20-Poly1305 chunks (STREAM), and the
whole-file operations built on it (seal, open, rewrap).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from nodus_cli.errors import InputError
from nodus_cli.keys.age.armor import (
    ARMOR_WRITE_SIZE,
    ArmorReader,
    ArmorWriter,
    buffered,
    looks_armored,
    unarmored,
)
from nodus_cli.keys.age.header import (
    CHUNK_SIZE,
    ENCRYPTED_CHUNK_SIZE,
    FILE_KEY_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    HybridRecipient,
    Identity,
    Progress,
    encode_header,
    hkdf,
    read_header,
    unwrap_file_key,
)
from nodus_cli.keys.errors import (
    AgeHeaderError,
    AgePayloadError,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305


# --- payload ------------------------------------------------------------------------


def _read_exact(source: IO[bytes], size: int) -> bytes:
    buffer = bytearray(size)
    return bytes(buffer[: _fill(source, memoryview(buffer))])


def _fill(source: IO[bytes], buffer: memoryview) -> int:
    """Read into ``buffer`` until it is full or the input ends (pipes return short reads)."""
    filled = 0
    while filled < len(buffer):
        count = source.readinto(buffer[filled:])  # type: ignore[attr-defined]
        if not count:
            break
        filled += count
    return filled


def _payload_aead(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    return ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def seal(
    source: IO[bytes],
    target: IO[bytes],
    recipients: list[HybridRecipient],
    on_progress: Progress = None,
    *,
    armor: bool = False,
) -> int:
    """Encrypt ``source`` to ``target`` for ``recipients`` (ASCII-armored with ``armor``);
    returns the plaintext size."""
    if not recipients:
        raise InputError("no recipient to seal to")
    if armor:
        armored = ArmorWriter(target)
        size = seal(source, armored, recipients, on_progress)  # type: ignore[arg-type]
        armored.finish()
        return size
    file_key = os.urandom(FILE_KEY_SIZE)
    target.write(encode_header([r.wrap(file_key) for r in recipients], file_key))
    nonce = os.urandom(NONCE_SIZE)
    target.write(nonce)
    aead = _payload_aead(file_key, nonce)
    chunks = (memoryview(bytearray(CHUNK_SIZE)), memoryview(bytearray(CHUNK_SIZE)))
    sealed = memoryview(bytearray(ENCRYPTED_CHUNK_SIZE))
    counter, total = 0, 0
    size = _fill(source, chunks[0])
    while True:  # two buffers: the next chunk is read ahead to know which one is last
        following = _fill(source, chunks[1 - counter % 2]) if size == CHUNK_SIZE else 0
        last = following == 0
        aead.encrypt_into(
            _chunk_nonce(counter, last), chunks[counter % 2][:size], None, sealed[: size + TAG_SIZE]
        )
        target.write(sealed[: size + TAG_SIZE])
        total += size
        if on_progress:
            on_progress(size)
        if last:
            return total
        size, counter = following, counter + 1


def decrypt_payload(
    source: IO[bytes], target: IO[bytes], file_key: bytes, on_progress: Progress = None
) -> int:
    """Stream the payload; every chunk is authenticated before it is written."""
    from cryptography.exceptions import InvalidTag

    nonce = _read_exact(source, NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise AgeHeaderError("the file ends after its header: the payload is missing (truncated)")
    aead = _payload_aead(file_key, nonce)
    plain = memoryview(bytearray(CHUNK_SIZE))
    total = 0
    for counter, (chunk, last) in enumerate(_with_last(_payload_chunks(source))):
        size = len(chunk)
        if size < TAG_SIZE:
            raise AgePayloadError("the payload is truncated")
        if last and counter > 0 and size == TAG_SIZE:
            raise AgePayloadError("the payload ends with an empty chunk")
        try:
            aead.decrypt_into(_chunk_nonce(counter, last), chunk, None, plain[: size - TAG_SIZE])
        except InvalidTag:
            raise AgePayloadError(f"payload chunk {counter} fails authentication") from None
        target.write(plain[: size - TAG_SIZE])
        total += size - TAG_SIZE
        if on_progress:
            on_progress(size)
    return total


def _with_last(chunks: Iterator[memoryview]) -> Iterator[tuple[memoryview, bool]]:
    """Each chunk and whether it is the last: the next one is read ahead to know.
    A payload without a single chunk is one empty (truncated) chunk."""
    current = next(chunks, memoryview(b""))
    for following in chunks:
        yield current, False
        current = following
    yield current, True


def _payload_chunks(source: IO[bytes]) -> Iterator[memoryview]:
    """The encrypted chunks: full ones, then the shorter last one."""
    raw = getattr(source, "raw", None)
    if isinstance(raw, ArmorReader):
        yield from _armored_chunks(source, raw)
        return
    buffers = (  # two: a chunk is still being decrypted while the next is read
        memoryview(bytearray(ENCRYPTED_CHUNK_SIZE)),
        memoryview(bytearray(ENCRYPTED_CHUNK_SIZE)),
    )
    for counter in itertools.count():
        buffer = buffers[counter % 2]
        size = _fill(source, buffer)
        if size:
            yield buffer[:size]
        if size < ENCRYPTED_CHUNK_SIZE:
            return


def _armored_chunks(source: IO[bytes], raw: ArmorReader) -> Iterator[memoryview]:
    """Chunks cut straight out of the decoded armor blocks (a copy only for the chunk
    that spans two blocks)."""
    leftover = source.read1(ENCRYPTED_CHUNK_SIZE)  # type: ignore[attr-defined]
    pending = memoryview(b"")
    for block in itertools.chain([memoryview(leftover)], raw.blocks()):
        view = block
        if pending:
            needed = ENCRYPTED_CHUNK_SIZE - len(pending)
            pending = memoryview(bytes(pending) + bytes(view[:needed]))
            view = view[needed:]
            if len(pending) < ENCRYPTED_CHUNK_SIZE:
                continue
            yield pending
        while len(view) >= ENCRYPTED_CHUNK_SIZE:
            yield view[:ENCRYPTED_CHUNK_SIZE]
            view = view[ENCRYPTED_CHUNK_SIZE:]
        pending = view
    if pending:
        yield pending


def open_file(
    source: IO[bytes],
    target: IO[bytes],
    identities: list[Identity],
    on_progress: Progress = None,
) -> tuple[Identity, int]:
    """Decrypt an age file (armored or not); returns the identity used and the size."""
    reader = unarmored(source)
    header = read_header(reader)
    file_key, identity = unwrap_file_key(header, identities)
    return identity, decrypt_payload(reader, target, file_key, on_progress)


def rewrap(
    source: IO[bytes],
    target: IO[bytes],
    identities: list[Identity],
    recipients: list[HybridRecipient],
) -> Identity:
    """Re-encrypt only the file key: stanzas any of ``identities`` opens are replaced by
    stanzas for ``recipients``; others are kept; the payload is copied byte for byte
    (an armored file stays armored, its decoded payload unchanged)."""
    import shutil

    given = buffered(source)
    armored = looks_armored(given)
    reader = unarmored(given)
    header = read_header(reader)
    file_key, identity = unwrap_file_key(header, identities)
    kept = [s for s in header.stanzas if not any(i.unwrap(s) for i in identities)]
    sink = ArmorWriter(target) if armored else target
    sink.write(encode_header(kept + [r.wrap(file_key) for r in recipients], file_key))
    shutil.copyfileobj(reader, sink, ARMOR_WRITE_SIZE)
    if isinstance(sink, ArmorWriter):
        sink.finish()
    return identity
