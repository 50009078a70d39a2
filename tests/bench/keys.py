"""`nodus keys` speed as ratios to bare primitives measured in the same run.

- seal and open throughput of a file (default 1 GiB) through ``nodus_cli.keys.age``
  (file in, file out, STREAM with 64 KiB chunks) against a bare ChaCha20-Poly1305
  loop over 64 KiB chunks that reads the same file and writes its output the same
  way ("bare file": it isolates what nodus adds; required ratio >= 0.9). The loop
  over one in-memory chunk ("bare memory": the cipher alone, no I/O) is shown too;
- armored open against binary open of the same plaintext (required ratio >= 0.7);
- composite ML-DSA-65 + Ed25519 sign and verify per second against the sequential
  ceiling ``1 / (1/v_mldsa + 1/v_ed25519)``: bare ML-DSA-65 and bare Ed25519 back to
  back with zero overhead, each measured here (required ratio >= 0.95). A composite
  must run both halves, so bare ML-DSA-65 alone is no reachable bar.

Exits 1 when a ratio is below its requirement.

Run: nice -n 10 python tests/bench/keys.py [--size-mib 1024] [--rounds 3] [--signatures 3000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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


def seal_armored(source: Path, target: Path, recipient: age.HybridRecipient) -> float:
    started = time.perf_counter()
    with source.open("rb") as handle, target.open("wb") as out:
        age.seal(handle, out, [recipient], armor=True)
    return time.perf_counter() - started


def interleaved(operations: dict[str, Callable[[], object]], count: int) -> dict[str, float]:
    """Operations per CPU second, the operations called in turn, one call at a time, each
    call timed on its own: load, clock drift and cache state hit them all alike, and CPU
    time leaves out the other processes on a shared machine."""
    spent = dict.fromkeys(operations, 0.0)
    clock = time.process_time
    for _ in range(count):
        for name, operation in operations.items():
            started = clock()
            operation()
            spent[name] += clock() - started
    return {name: count / seconds for name, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--signatures", type=int, default=3000)
    parser.add_argument("--dir", default=None, help="Where to put the test files.")
    args = parser.parse_args()
    size = args.size_mib << 20

    seed = os.urandom(32)
    recipient = age.HybridRecipient(xwing.public_bytes(seed))
    identity = age.HybridIdentity(seed)
    verdicts: list[tuple[str, float, float]] = []  # name, ratio, required
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        plain, sealed, armored, opened, bare_out, bare_back = (
            Path(folder) / name
            for name in ("plain", "sealed", "armored", "opened", "bare", "bare-back")
        )
        with plain.open("wb") as handle:
            for _ in range(size // (64 << 20) or 1):
                handle.write(os.urandom(min(size, 64 << 20)))
        size = plain.stat().st_size
        bare_key = os.urandom(32)
        names = ("bare memory", "bare file encrypt", "seal", "bare file decrypt", "open")
        times: dict[str, list[float]] = {name: [] for name in (*names, "armored open")}
        seal_armored(plain, armored, recipient)
        for _ in range(args.rounds):  # interleaved, so drift hits all equally
            times["bare memory"].append(bare_memory(size))
            times["bare file encrypt"].append(bare_file_encrypt(plain, bare_out, bare_key))
            times["seal"].append(seal_file(plain, sealed, recipient))
            times["bare file decrypt"].append(bare_file_decrypt(bare_out, bare_back, bare_key))
            times["open"].append(open_file(sealed, opened, identity))
            times["armored open"].append(open_file(armored, opened, identity))
        assert opened.read_bytes()[-4096:] == plain.read_bytes()[-4096:]
    median = {name: statistics.median(values) for name, values in times.items()}
    mib = size / (1 << 20)
    print(f"file size {mib:.0f} MiB, {args.rounds} rounds, medians:")
    for name, seconds in median.items():
        print(f"  {name:<18} {seconds:7.3f} s  {mib / seconds:8.1f} MiB/s")
    for ours, reference, required in (
        ("seal", "bare file encrypt", 0.9),
        ("open", "bare file decrypt", 0.9),
        ("armored open", "open", 0.7),
    ):
        ratio = median[reference] / median[ours]
        verdicts.append((f"{ours} / {reference}", ratio, required))
        print(
            f"  {ours} ratio: {ratio:.2f} of {reference} (required >= {required}), "
            f"{median['bare memory'] / median[ours]:.2f} of bare memory"
        )

    key = signing.SigningKey.generate()
    public = key.public()
    bare_mldsa = mldsa.MLDSA65PrivateKey.generate()
    bare_mldsa_public = bare_mldsa.public_key()
    message = os.urandom(1024)
    composite_signature = key.sign(message)
    representative = signing.message_representative(hashlib.sha512(message).digest())
    # each bare half gets what the composite's half gets: M' (with the label as context)
    bare_signature = bare_mldsa.sign(representative, signing.LABEL)
    ed25519_signature = key.ed25519.sign(representative)
    rates = interleaved(
        {
            "bare sign": lambda: bare_mldsa.sign(representative, signing.LABEL),
            "Ed25519 sign": lambda: key.ed25519.sign(representative),
            "sign": lambda: key.sign(message),
        },
        args.signatures,
    )
    rates |= interleaved(
        {
            "bare verify": lambda: bare_mldsa_public.verify(
                bare_signature, representative, signing.LABEL
            ),
            "Ed25519 verify": lambda: public.ed25519.verify(ed25519_signature, representative),
            "verify": lambda: public.verify(message, composite_signature),
        },
        args.signatures,
    )
    print(f"signatures: {args.signatures} per operation, interleaved call by call, CPU time:")
    for name in ("sign", "verify"):
        rate, mldsa_rate, ed25519_rate = (
            rates[n] for n in (name, "bare " + name, "Ed25519 " + name)
        )
        ceiling = 1 / (1 / mldsa_rate + 1 / ed25519_rate)  # both halves, zero overhead
        verdicts.append((f"composite {name} / sequential ceiling", rate / ceiling, 0.95))
        print(
            f"  {name:<6} {rate:8.0f}/s  ceiling {ceiling:8.0f}/s  ratio {rate / ceiling:.2f} "
            f"(required >= 0.95; bare ML-DSA-65 {mldsa_rate:.0f}/s, Ed25519 {ed25519_rate:.0f}/s)"
        )
    failed = [name for name, ratio, required in verdicts if ratio < required]
    print("all ratios met" if not failed else f"below requirement: {', '.join(failed)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
