"""Conformance: every vector in ../shared/vectors/pq that the installed cryptography can check.

Not checkable (README of the vectors): the ML-KEM half of X-Wing encapsulation and the
accumulated CCTV hashes (no derandomised APIs), deterministic ML-DSA signatures
(signing is hedged), the CCTV strcmp vector (expanded dk only), the SHAKE256 HPKE key
schedule, and composite-OID PKCS#8.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import (
    load_der_private_key,
    load_der_public_key,
)

from nodus_cli.keys import age, signing, xwing
from nodus_cli.keys.errors import AgeError
from tests.conftest import shared_path

VECTORS = shared_path() / "vectors" / "pq"


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text())


def vectors(name: str) -> list[dict[str, Any]]:
    if not (VECTORS / name).exists():  # the `shared` fixture reports the missing folder
        return [{"id": "missing"}]
    return load(name)["vectors"]


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [f"{item['id']}-{n}" for n, item in enumerate(items)]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.fixture(autouse=True)
def _require_vectors(shared: Path) -> None:
    assert (shared / "vectors" / "pq").is_dir()


# --- X-Wing -------------------------------------------------------------------------

XWING = vectors("xwing_draft.json")


@pytest.mark.parametrize("vector", XWING, ids=ids(XWING))
def test_xwing_keygen_decapsulation_and_x25519_encapsulation(vector: dict[str, Any]) -> None:
    seed = h(vector["seed"])
    assert xwing.public_bytes(seed) == h(vector["pk"])
    assert xwing.decapsulate(seed, h(vector["ct"])) == h(vector["ss"])
    ephemeral = x25519.X25519PrivateKey.from_private_bytes(h(vector["eseed"])[32:64])
    assert ephemeral.public_key().public_bytes_raw() == h(vector["ct"])[1088:]
    assert age.HybridIdentity(seed)  # the age identity accepts the same seed


# --- HPKE MLKEM768-X25519 -----------------------------------------------------------

HPKE = vectors("hpke_pq_mlkem768x25519.json")


def _hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, "sha256").digest()


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    output, block, counter = b"", b"", 1
    while len(output) < length:
        block = hmac.new(prk, block + info + bytes([counter]), "sha256").digest()
        output += block
        counter += 1
    return output[:length]


@pytest.mark.parametrize("vector", HPKE, ids=ids(HPKE))
def test_hpke_keys_decapsulation_and_aead(vector: dict[str, Any]) -> None:
    sk = h(vector["skRm"])
    assert xwing.public_bytes(sk) == h(vector["pkRm"])
    assert xwing.decapsulate(sk, h(vector["enc"])) == h(vector["shared_secret"])
    key, base_nonce = h(vector["key"]), h(vector["base_nonce"])
    for seq, encryption in enumerate(vector["encryptions"]):
        nonce = bytes(a ^ b for a, b in zip(base_nonce, seq.to_bytes(12, "big"), strict=True))
        assert nonce == h(encryption["nonce"])
        plain = ChaCha20Poly1305(key).decrypt(nonce, h(encryption["ct"]), h(encryption["aad"]))
        assert plain == h(encryption["pt"])


@pytest.mark.parametrize(
    "vector", [v for v in HPKE if str(v.get("kdf_id")) == "1"], ids=lambda v: v["id"]
)
def test_hpke_rfc9180_key_schedule_with_hkdf_sha256(vector: dict[str, Any]) -> None:
    suite = b"HPKE" + h(vector["suite_id"])[4:]
    assert suite == h(vector["suite_id"])

    def extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return _hkdf_extract(salt, b"HPKE-v1" + suite + label + ikm)

    def expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
        return _hkdf_expand(
            prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length
        )

    context = (
        b"\x00" + extract(b"", b"psk_id_hash", b"") + extract(b"", b"info_hash", h(vector["info"]))
    )
    secret = extract(h(vector["shared_secret"]), b"secret", b"")
    assert expand(secret, b"key", context, 32) == h(vector["key"])
    assert expand(secret, b"base_nonce", context, 12) == h(vector["base_nonce"])
    exporter = expand(secret, b"exp", context, 32)
    assert exporter == h(vector["exporter_secret"])
    for item in vector["exports"]:
        value = expand(exporter, b"sec", h(item["exporter_context"]), item["L"])
        assert value == h(item["exported_value"])


# --- composite ML-DSA ---------------------------------------------------------------

COMPOSITE = vectors("composite_mldsa_draft.json")
PURE = {"id-ML-DSA-44": mldsa.MLDSA44PrivateKey, "id-ML-DSA-65": mldsa.MLDSA65PrivateKey,
        "id-ML-DSA-87": mldsa.MLDSA87PrivateKey}  # fmt: skip


@pytest.mark.parametrize("vector", COMPOSITE, ids=ids(COMPOSITE))
def test_composite_draft_vectors(vector: dict[str, Any]) -> None:
    message, context = vector["m_text"].encode(), vector["ctx_text"].encode()
    sk, pk = h(vector["sk"]), h(vector["pk"])
    if vector["id"] in PURE:
        private = PURE[vector["id"]].from_seed_bytes(sk)
        assert private.public_key().public_bytes_raw() == pk
        private.public_key().verify(h(vector["s"]), message)
        private.public_key().verify(h(vector["s_with_ctx"]), message, context)
        loaded = load_der_private_key(h(vector["sk_pkcs8"]), None)
        assert loaded.public_key().public_bytes_raw() == pk  # type: ignore[union-attr]
        return
    if vector["id"] == "id-MLDSA65-Ed25519-SHA512":
        assert vector["label_text"].encode() == signing.LABEL
        key = signing.SigningKey.from_private_bytes("v", sk)
        assert key.public().to_bytes() == pk
        public = signing.SigningPublicKey.from_bytes("v", pk)
        assert public.verify(message, h(vector["s"]))
        assert public.verify(message, h(vector["s_with_ctx"]), context)
        assert not public.verify(message, h(vector["s"]), context)
        return
    # MLDSA44-Ed25519: the same construction with the ML-DSA-44 label and sizes
    label = vector["label_text"].encode()
    mldsa_key = mldsa.MLDSA44PrivateKey.from_seed_bytes(sk[:32])
    ed_key = ed25519.Ed25519PrivateKey.from_private_bytes(sk[32:])
    mldsa_pk = mldsa_key.public_key().public_bytes_raw()
    assert mldsa_pk + ed_key.public_key().public_bytes_raw() == pk
    for signature, ctx in ((h(vector["s"]), b""), (h(vector["s_with_ctx"]), context)):
        representative = (
            signing.PREFIX + label + bytes([len(ctx)]) + ctx + hashlib.sha512(message).digest()
        )
        mldsa_key.public_key().verify(signature[:-64], representative, label)
        ed_key.public_key().verify(signature[-64:], representative)


# --- ML-KEM-768 ---------------------------------------------------------------------

CCTV_MLKEM = vectors("cctv_mlkem768.json")


@pytest.mark.parametrize("vector", [v for v in CCTV_MLKEM if v.get("d")], ids=lambda v: v["id"])
def test_cctv_ipd_vectors_are_a_negative_control_with_consistent_dk(vector: dict[str, Any]) -> None:
    ek, dk, z = h(vector["ek"]), h(vector["dk"]), h(vector["z"])
    key = mlkem.MLKEM768PrivateKey.from_seed_bytes(h(vector["d"]) + z)
    assert key.public_key().public_bytes_raw() != ek  # FIPS 203 final, not the draft
    assert dk[1152 : 1152 + 1184] == ek
    assert dk[-64:-32] == hashlib.sha3_256(ek).digest()
    assert dk[-32:] == z


DECAPS = vectors("wycheproof_mlkem768_decaps.json")


@pytest.mark.parametrize("vector", DECAPS, ids=ids(DECAPS))
def test_wycheproof_mlkem768_decapsulation(vector: dict[str, Any]) -> None:
    if vector["expect"] == "valid":
        key = mlkem.MLKEM768PrivateKey.from_seed_bytes(h(vector["seed"]))
        assert key.public_key().public_bytes_raw() == h(vector["ek"])
        assert key.decapsulate(h(vector["c"])) == h(vector["K"])
        return
    with pytest.raises(ValueError):
        key = mlkem.MLKEM768PrivateKey.from_seed_bytes(h(vector["seed"]))
        key.decapsulate(h(vector["c"]))


KEYGEN = vectors("wycheproof_mlkem768_keygen.json")


@pytest.mark.parametrize("vector", KEYGEN, ids=ids(KEYGEN))
def test_wycheproof_mlkem768_keygen(vector: dict[str, Any]) -> None:
    ek, dk, seed = h(vector["ek"]), h(vector["dk"]), h(vector["seed"])
    key = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    assert key.public_key().public_bytes_raw() == ek
    assert dk[1152:] == ek + hashlib.sha3_256(ek).digest() + seed[32:]


ENCAPS = vectors("wycheproof_mlkem768_encaps_invalid.json")


@pytest.mark.parametrize("vector", ENCAPS, ids=ids(ENCAPS))
def test_wycheproof_mlkem768_invalid_encapsulation_keys_are_rejected(
    vector: dict[str, Any],
) -> None:
    assert vector["expect"] == "invalid"
    with pytest.raises(ValueError):
        mlkem.MLKEM768PublicKey.from_public_bytes(h(vector["ek"]))
    with pytest.raises(Exception, match="X-Wing"):  # nodus refuses it as a recipient half
        xwing.public_key(h(vector["ek"]) + bytes(32))


# --- ML-DSA-65 ----------------------------------------------------------------------

VERIFY = (
    load("wycheproof_mldsa65_verify.json")
    if (VECTORS / "wycheproof_mldsa65_verify.json").exists()
    else {"vectors": [], "keys": {}}
)


@pytest.mark.parametrize("vector", VERIFY["vectors"], ids=ids(VERIFY["vectors"]))
def test_wycheproof_mldsa65_verify(vector: dict[str, Any]) -> None:
    raw = h(VERIFY["keys"][vector["key"]]["pk"])
    message, context = h(vector.get("msg", "")), h(vector.get("ctx", ""))
    try:
        public = mldsa.MLDSA65PublicKey.from_public_bytes(raw)
        public.verify(h(vector["sig"]), message, context or None)
        verdict = "valid"
    except (InvalidSignature, ValueError):
        verdict = "invalid"
    assert verdict == vector["expect"]


def test_wycheproof_mldsa65_spki_loading() -> None:
    key = VERIFY["keys"]["g0"]
    loaded = load_der_public_key(h(key["pk_spki_der"]))
    assert loaded.public_bytes_raw() == h(key["pk"])  # type: ignore[union-attr]


SIGN = (
    load("wycheproof_mldsa65_sign_seed.json")
    if (VECTORS / "wycheproof_mldsa65_sign_seed.json").exists()
    else {"vectors": [], "keys": {}}
)


@pytest.mark.parametrize("name", sorted(SIGN["keys"]))
def test_wycheproof_mldsa65_keygen_and_pkcs8(name: str) -> None:
    key = SIGN["keys"][name]
    if len(key["seed"]) != 64:
        with pytest.raises(ValueError):
            mldsa.MLDSA65PrivateKey.from_seed_bytes(h(key["seed"]))
        return
    private = mldsa.MLDSA65PrivateKey.from_seed_bytes(h(key["seed"]))
    assert private.public_key().public_bytes_raw() == h(key["pk"])
    if key["sk_pkcs8"]:
        loaded = load_der_private_key(h(key["sk_pkcs8"]), None)
        assert loaded.public_key().public_bytes_raw() == h(key["pk"])  # type: ignore[union-attr]


@pytest.mark.parametrize("vector", SIGN["vectors"], ids=ids(SIGN["vectors"]))
def test_wycheproof_mldsa65_sign_vectors_mu_and_verify(vector: dict[str, Any]) -> None:
    key = SIGN["keys"][vector["key"]]
    context = h(vector["ctx"]) if vector.get("ctx") else None
    if vector["expect"] == "invalid":
        with pytest.raises(ValueError):
            private = mldsa.MLDSA65PrivateKey.from_seed_bytes(h(key["seed"]))
            private.sign(h(vector.get("msg", "")), context)
        return
    public = mldsa.MLDSA65PublicKey.from_public_bytes(h(key["pk"]))
    signature, mu = h(vector["sig"]), h(vector["mu"])
    public.verify_mu(signature, mu)
    if "msg" in vector:
        hasher = mldsa.MLDSAMuHasher(public, context)
        hasher.update(h(vector["msg"]))
        assert hasher.finalize() == mu
        public.verify(signature, h(vector["msg"]), context)


# --- age (CCTV) ---------------------------------------------------------------------

AGE = vectors("cctv_age.json")


@pytest.mark.parametrize("vector", AGE, ids=ids(AGE))
def test_cctv_age(vector: dict[str, Any]) -> None:
    identities: list[age.Identity] = []
    for text in vector["identities_text"]:
        identities.extend(age.parse_identities(text))
    identities.extend(age.ScryptIdentity(p.encode()) for p in vector["passphrases_text"])
    released = io.BytesIO()
    try:
        age.open_file(io.BytesIO(base64.b64decode(vector["file_b64"])), released, identities)
        outcome = "success"
    except AgeError as exc:
        outcome = exc.kind
    assert outcome == vector["expect"]
    if vector["payload_sha256"]:
        assert hashlib.sha256(released.getvalue()).hexdigest() == vector["payload_sha256"]


def test_age_hybrid_identities_round_trip_through_bech32() -> None:
    hybrid = next(v for v in AGE if v["id"] == "age-hybrid")
    text = hybrid["identities_text"][0]
    hrp, seed = age.bech32_decode(text)
    assert hrp == age.IDENTITY_HRP and age.encode_identity(seed) == text
    recipient = age.encode_recipient(xwing.public_bytes(seed))
    assert recipient.startswith("age1pq1") and age.parse_recipient(
        recipient
    ).public == xwing.public_bytes(seed)


def _hkdf(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    return _hkdf_expand(_hkdf_extract(salt, ikm), info, length)


def test_a_nodus_sealed_file_opens_by_the_age_spec_worked_by_hand() -> None:
    """age 1.3 interop, checked independently of nodus's reader: X-Wing decapsulation
    (checked against the draft vectors above), the RFC 9180 key schedule and the age
    header MAC and STREAM payload, all recomputed here from the specifications."""
    seed = bytes(range(32))
    plaintext = bytes(range(256)) * 600  # three chunks, the last one short
    sealed = io.BytesIO()
    age.seal(io.BytesIO(plaintext), sealed, [age.HybridRecipient(xwing.public_bytes(seed))])
    blob = sealed.getvalue()
    header, _, rest = blob.partition(b"\n--- ")
    lines = header.split(b"\n")
    assert lines[0] == b"age-encryption.org/v1"
    kind, enc_b64 = lines[1].split(b" ")[1:]
    assert kind == b"mlkem768x25519" and lines[1].startswith(b"-> ")
    enc = base64.b64decode(enc_b64 + b"=" * (-len(enc_b64) % 4))
    body = base64.b64decode(lines[2] + b"=" * (-len(lines[2]) % 4))
    assert len(enc) == 1120 and len(body) == 32 and len(lines) == 3

    suite = b"HPKE" + (0x647A).to_bytes(2, "big") + (1).to_bytes(2, "big") + (3).to_bytes(2, "big")

    def extract(salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return _hkdf_extract(salt, b"HPKE-v1" + suite + label + ikm)

    def expand(prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
        return _hkdf_expand(
            prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length
        )

    info = b"age-encryption.org/mlkem768x25519"
    context = b"\x00" + extract(b"", b"psk_id_hash", b"") + extract(b"", b"info_hash", info)
    secret = extract(xwing.decapsulate(seed, enc), b"secret", b"")
    key, base_nonce = (
        expand(secret, b"key", context, 32),
        expand(secret, b"base_nonce", context, 12),
    )
    file_key = ChaCha20Poly1305(key).decrypt(base_nonce, body, b"")
    assert len(file_key) == 16

    mac_line, _, payload = rest.partition(b"\n")
    expected_mac = hmac.new(_hkdf(file_key, b"", b"header"), header + b"\n---", "sha256").digest()
    assert base64.b64decode(mac_line + b"=") == expected_mac
    nonce, chunks = payload[:16], payload[16:]
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    size = 64 * 1024 + 16
    pieces = [chunks[i : i + size] for i in range(0, len(chunks), size)]
    opened = b"".join(
        aead.decrypt(n.to_bytes(11, "big") + bytes([n == len(pieces) - 1]), piece, None)
        for n, piece in enumerate(pieces)
    )
    assert opened == plaintext
