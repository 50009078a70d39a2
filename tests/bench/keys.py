"""`nodus keys` speed as ratios to bare primitives measured in the same run.

- seal and open throughput of a file (default 1 GiB) through ``nodus_cli.keys.age``
  (file in, file out, STREAM with 64 KiB chunks) against a bare ChaCha20-Poly1305
  loop over 64 KiB chunks (target: ratio >= 0.7). Two references are measured: the
  bare loop reading the same file and writing its output the same way ("bare file",
  the like-for-like reference: it isolates what nodus adds), and the bare loop over
  one in-memory chunk ("bare memory": the cipher alone, no I/O at all);
- composite ML-DSA-65 + Ed25519 sign and verify per second against bare ML-DSA-65
  sign and verify of the same message (target: ratio >= 0.8).

Run: python tests/bench/keys.py [--size-mib 1024] [--rounds 3] [--signatures 300]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from cryptography.hazmat.primitives.asymmetric import mldsa  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: E402

from nodus_cli.keys import age, signing, xwing  # noqa: E402

CHUNK = 64 * 1024


def bare_file_encrypt(source: Path, target: Path, key: bytes) -> float:
    aead = ChaCha20Poly1305(key)
    started = time.perf_counter()
    with source.open("rb") as handle, target.open("wb") as out:
        counter = 0
        while chunk := handle.read(CHUNK):
            out.write(aead.encrypt(counter.to_bytes(12, "big"), chunk, None))
            counter += 1
    return time.perf_counter() - started


def bare_file_decrypt(source: Path, target: Path, key: bytes) -> float:
    aead = ChaCha20Poly1305(key)
    started = time.perf_counter()
    with source.open("rb") as handle, target.open("wb") as out:
        counter = 0
        while chunk := handle.read(CHUNK + 16):
            out.write(aead.decrypt(counter.to_bytes(12, "big"), chunk, None))
            counter += 1
    return time.perf_counter() - started


def bare_memory(size: int) -> float:
    aead = ChaCha20Poly1305(os.urandom(32))
    chunk = os.urandom(CHUNK)
    started = time.perf_counter()
    for counter in range(size // CHUNK):
        aead.encrypt(counter.to_bytes(12, "big"), chunk, None)
    return time.perf_counter() - started


def seal_file(source: Path, target: Path, recipient: age.HybridRecipient) -> float:
    started = time.perf_counter()
    with source.open("rb") as handle, target.open("wb") as out:
        age.seal(handle, out, [recipient])
    return time.perf_counter() - started


def open_file(source: Path, target: Path, identity: age.HybridIdentity) -> float:
    started = time.perf_counter()
    with source.open("rb") as handle, target.open("wb") as out:
        age.open_file(handle, out, [identity])
    return time.perf_counter() - started


def per_second(function, count: int) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for _ in range(count):
        function()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--signatures", type=int, default=300)
    parser.add_argument("--dir", default=None, help="Where to put the test files.")
    args = parser.parse_args()
    size = args.size_mib << 20

    seed = os.urandom(32)
    recipient = age.HybridRecipient(xwing.public_bytes(seed))
    identity = age.HybridIdentity(seed)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        plain, sealed, opened, bare_out, bare_back = (
            Path(folder) / name for name in ("plain", "sealed", "opened", "bare", "bare-back")
        )
        with plain.open("wb") as handle:
            for _ in range(size // (64 << 20) or 1):
                handle.write(os.urandom(min(size, 64 << 20)))
        size = plain.stat().st_size
        bare_key = os.urandom(32)
        times: dict[str, list[float]] = {
            name: []
            for name in ("bare memory", "bare file encrypt", "seal", "bare file decrypt", "open")
        }
        for _ in range(args.rounds):  # interleaved, so drift hits all equally
            times["bare memory"].append(bare_memory(size))
            times["bare file encrypt"].append(bare_file_encrypt(plain, bare_out, bare_key))
            times["seal"].append(seal_file(plain, sealed, recipient))
            times["bare file decrypt"].append(bare_file_decrypt(bare_out, bare_back, bare_key))
            times["open"].append(open_file(sealed, opened, identity))
        assert opened.read_bytes()[-4096:] == plain.read_bytes()[-4096:]
    median = {name: statistics.median(values) for name, values in times.items()}
    mib = size / (1 << 20)
    print(f"file size {mib:.0f} MiB, {args.rounds} rounds, medians:")
    for name, seconds in median.items():
        print(f"  {name:<18} {seconds:7.3f} s  {mib / seconds:8.1f} MiB/s")
    for ours, reference in (("seal", "bare file encrypt"), ("open", "bare file decrypt")):
        print(
            f"  {ours} ratio: {median[reference] / median[ours]:.2f} of {reference}, "
            f"{median['bare memory'] / median[ours]:.2f} of bare memory"
        )

    key = signing.SigningKey.generate()
    public = key.public()
    bare_key = mldsa.MLDSA65PrivateKey.generate()
    bare_public = bare_key.public_key()
    message = os.urandom(1024)
    composite_signature = key.sign(message)
    bare_signature = bare_key.sign(message)
    representative = signing.message_representative(hashlib.sha512(message).digest())
    ed25519_signature = key.ed25519.sign(representative)  # what the composite's half signs
    rates: dict[str, list[float]] = {
        name: []
        for name in ("bare sign", "sign", "bare verify", "verify", "Ed25519 sign", "Ed25519 verify")
    }
    count = max(1, args.signatures // args.rounds)
    for _ in range(args.rounds):
        rates["bare sign"].append(per_second(lambda: bare_key.sign(message), count))
        rates["sign"].append(per_second(lambda: key.sign(message), count))
        rates["bare verify"].append(
            per_second(lambda: bare_public.verify(bare_signature, message), count)
        )
        rates["verify"].append(
            per_second(lambda: public.verify(message, composite_signature), count)
        )
        rates["Ed25519 sign"].append(per_second(lambda: key.ed25519.sign(representative), count))
        rates["Ed25519 verify"].append(
            per_second(lambda: public.ed25519.verify(ed25519_signature, representative), count)
        )
    print(f"signatures: {count * args.rounds} per operation, medians:")
    for name in ("sign", "verify"):
        ours, theirs = statistics.median(rates[name]), statistics.median(rates["bare " + name])
        ed = statistics.median(rates["Ed25519 " + name])
        bound = 1 / (1 / theirs + 1 / ed)  # both halves back to back with zero overhead
        print(
            f"  {name:<6} {ours:8.0f}/s  bare ML-DSA-65 {theirs:8.0f}/s  ratio {ours / theirs:.2f}"
            f"  (bare Ed25519 {ed:.0f}/s: ML-DSA-65 then Ed25519 can reach at most "
            f"{bound / theirs:.2f})"
        )


if __name__ == "__main__":
    main()
