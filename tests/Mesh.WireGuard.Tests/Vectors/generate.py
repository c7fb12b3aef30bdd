#!/usr/bin/env python3
"""Regenerates the computed known-answer files in this folder.

Run from anywhere: `python3 tests/Mesh.WireGuard.Tests/Vectors/generate.py`.

Everything here is computed by implementations independent of MeshOperator's code:
  * BLAKE2s, keyed BLAKE2s, HMAC: CPython's hashlib.blake2s (CPython's bundled copy of the BLAKE2
    reference code) and the stdlib hmac module.
  * ChaCha20-Poly1305 and X25519: the `cryptography` package (OpenSSL).
  * HChaCha20 (for XChaCha20-Poly1305): the short pure-Python function below, written from
    draft-irtf-cfrg-xchacha-03 section 2.2 and checked here against that draft's section 2.2.1
    vector before use.
The RFC files (x25519-rfc7748.txt, chacha20poly1305-rfc8439.txt, xchacha20poly1305-draft.txt,
blake2s-rfc7693.txt) are transcribed from the documents; this script re-checks them against
the same independent implementations and fails loudly on any mismatch.
"""
import hashlib
import hmac
import os
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "Python %d.%d.%d" % sys.version_info[:3]


def blake2s(data, key=b"", size=32):
    return hashlib.blake2s(data, key=key, digest_size=size).digest()


def hmac_blake2s(key, data):
    return hmac.new(key, data, hashlib.blake2s).digest()


def kdf(chaining_key, data):
    # WireGuard whitepaper section 5.4 (HKDF with HMAC-BLAKE2s).
    t0 = hmac_blake2s(chaining_key, data)
    t1 = hmac_blake2s(t0, b"\x01")
    t2 = hmac_blake2s(t0, t1 + b"\x02")
    t3 = hmac_blake2s(t0, t2 + b"\x03")
    return t1, t2, t3


def pattern(n, start=0):
    return bytes((start + i) & 0xFF for i in range(n))


def rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def hchacha20(key, nonce16):
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_seal(key, nonce24, plaintext, aad):
    subkey = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(subkey).encrypt(b"\0\0\0\0" + nonce24[16:], plaintext, aad)


def x25519(scalar, u):
    private = X25519PrivateKey.from_private_bytes(scalar)
    return private.exchange(X25519PublicKey.from_public_bytes(u))


def x25519_public(scalar):
    return X25519PrivateKey.from_private_bytes(scalar).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# ---- file helpers ----

def read_records(name):
    records, current = [], {}
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("#"):
                continue
            if not line:
                if current:
                    records.append(current)
                    current = {}
                continue
            k, _, v = line.partition("=")
            current[k.strip()] = v.strip()
    if current:
        records.append(current)
    return records


def write_records(name, header, records):
    with open(os.path.join(HERE, name), "w", encoding="utf-8", newline="\n") as f:
        for line in header.strip("\n").split("\n"):
            f.write(("# " + line).rstrip() + "\n")
        for r in records:
            f.write("\n")
            for k, v in r.items():
                v = v.hex() if isinstance(v, (bytes, bytearray)) else str(v)
                f.write(("%s = %s" % (k, v)).rstrip() + "\n")


def h(s):
    return bytes.fromhex(s)


def check(ok, what):
    if not ok:
        sys.exit("MISMATCH: " + what)


# ---- re-check the transcribed RFC files ----

def check_rfc_files():
    for r in read_records("x25519-rfc7748.txt"):
        kind = r["kind"]
        if kind == "scalarmult":
            check(x25519(h(r["scalar"]), h(r["u"])) == h(r["output"]), "x25519 " + r["scalar"])
        elif kind == "iterated":
            k = u = h(r["start"])
            for _ in range(int(r["iterations"])):
                k, u = x25519(k, u), k
            check(k == h(r["output"]), "x25519 iterated " + r["iterations"])
        elif kind == "dh":
            check(x25519_public(h(r["alice_private"])) == h(r["alice_public"]), "alice public")
            check(x25519_public(h(r["bob_private"])) == h(r["bob_public"]), "bob public")
            check(x25519(h(r["alice_private"]), h(r["bob_public"])) == h(r["shared"]), "shared a")
            check(x25519(h(r["bob_private"]), h(r["alice_public"])) == h(r["shared"]), "shared b")
        else:
            sys.exit("unknown kind " + kind)

    for r in read_records("chacha20poly1305-rfc8439.txt"):
        sealed = ChaCha20Poly1305(h(r["key"])).encrypt(h(r["nonce"]), h(r["plaintext"]), h(r["aad"]))
        check(sealed == h(r["ciphertext"]) + h(r["tag"]), "chacha " + r["source"])

    # draft-irtf-cfrg-xchacha-03 section 2.2.1 HChaCha20 test vector.
    check(hchacha20(pattern(32), h("000000090000004a0000000031415927"))
          == h("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"), "hchacha20 2.2.1")
    for r in read_records("xchacha20poly1305-draft.txt"):
        sealed = xchacha_seal(h(r["key"]), h(r["nonce"]), h(r["plaintext"]), h(r["aad"]))
        check(sealed == h(r["ciphertext"]) + h(r["tag"]), "xchacha " + r["source"])

    for r in read_records("blake2s-rfc7693.txt"):
        check(blake2s(h(r["in"])) == h(r["hash"]), "blake2s rfc7693")


# ---- computed files ----

GENERATED = """Generated by Vectors/generate.py with %s (%s),
an implementation independent of MeshOperator's code. Regenerate with that script; do not edit."""


def generate():
    hashlib_src = "hashlib.blake2s, CPython's bundled BLAKE2 reference code"

    write_records("blake2s-unkeyed.txt", """BLAKE2s-256, unkeyed: in = 00 01 02 .. (n-1) for n = 0..255, the inputs of the
BLAKE2 reference package's blake2s-kat.txt (https://github.com/BLAKE2/BLAKE2/tree/master/testvectors).
""" + GENERATED % (PYTHON, hashlib_src),
        [{"in": pattern(n), "hash": blake2s(pattern(n))} for n in range(256)])

    key = pattern(32)
    write_records("blake2s-keyed.txt", """Keyed BLAKE2s-256: key = 00 01 .. 1f, in = 00 01 02 .. (n-1) for n = 0..255; the same
inputs and key as the BLAKE2 reference package's keyed KAT (blake2s-kat.txt, "key" entries).
""" + GENERATED % (PYTHON, hashlib_src),
        [{"key": key, "in": pattern(n), "hash": blake2s(pattern(n), key)} for n in range(256)])

    records = []
    for outlen in range(1, 33):
        for keylen in (1, 32):
            for n in (0, 1, 64, 65):
                k = pattern(keylen, 0x40 + outlen)
                m = pattern(n, outlen * 7)
                records.append({"key": k, "in": m, "outlen": outlen, "hash": blake2s(m, k, outlen)})
    write_records("blake2s-keyed-outlen.txt", """Keyed BLAKE2s with every output length 1..32 (BLAKE2s parameter block digest length),
keys of 1 and 32 bytes, inputs of 0, 1, 64 and 65 bytes (around the block boundary). Backs Blake2s.KeyedHash.
""" + GENERATED % (PYTHON, hashlib_src), records)

    records = []
    for keylen in (32, 16):
        for n in list(range(0, 130, 3)) + [148, 256]:
            k = pattern(keylen, 0xA0 + n)
            m = pattern(n, n)
            records.append({"key": k, "in": m, "mac": blake2s(m, k, 16)})
    write_records("blake2s-mac.txt", """Keyed BLAKE2s with a 16-byte output: WireGuard's MAC(key, input) (whitepaper section 5.4),
as used for mac1 (32-byte key HASH(LABEL-MAC1 || public key)) and mac2 (16-byte cookie key).
Inputs include 116 and 148 bytes, the initiation and response lengths covered by the MACs.
""" + GENERATED % (PYTHON, hashlib_src), records)

    records = []
    for keylen in (32, 0, 1, 16, 63, 64, 65, 100):
        for n in (0, 1, 32, 63, 64, 65, 150):
            k = pattern(keylen, 0x11 * (keylen % 7))
            m = pattern(n, 0x30 + n)
            records.append({"key": k, "in": m, "hmac": hmac_blake2s(k, m)})
    write_records("hmac-blake2s.txt", """HMAC-BLAKE2s-256 (RFC 2104 with BLAKE2s, 64-byte block): WireGuard's HMAC(key, input)
(whitepaper section 5.4). Keys shorter than, equal to and longer than the block size.
""" + GENERATED % (PYTHON, "stdlib hmac.new(key, msg, hashlib.blake2s)"), records)

    records = []
    for n in (0, 1, 32, 64, 100):
        for seed in (0x00, 0x5A):
            ck = blake2s(bytes([seed, n]))
            m = pattern(n, 0x80 + seed)
            t1, t2, t3 = kdf(ck, m)
            records.append({"chaining_key": ck, "in": m, "t1": t1, "t2": t2, "t3": t3})
    write_records("hkdf-blake2s.txt", """WireGuard's KDF_n(C, input) (whitepaper section 5.4, HKDF with HMAC-BLAKE2s):
  t0 = HMAC(C, input); t1 = HMAC(t0, 0x1); t2 = HMAC(t0, t1 || 0x2); t3 = HMAC(t0, t2 || 0x3)
KDF1 yields t1; KDF2 yields t1, t2; KDF3 yields t1, t2, t3 (the prefixes agree).
""" + GENERATED % (PYTHON, "stdlib hmac + hashlib.blake2s, from the formula above"), records)

    construction = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
    identifier = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
    ck = blake2s(construction)
    write_records("wireguard-constants.txt", """WireGuard handshake constants (whitepaper section 5.4.2):
  initial_chaining_key = HASH(CONSTRUCTION)
  initial_hash = HASH(initial_chaining_key || IDENTIFIER)
construction and identifier are ASCII, shown as hex.
""" + GENERATED % (PYTHON, hashlib_src),
        [{"construction": construction, "identifier": identifier,
          "initial_chaining_key": ck, "initial_hash": blake2s(ck + identifier)}])

    records = []
    for counter in (0, 1, 2, 0xFF, 0x1_0000_0000, 0x0102030405060708, 2**64 - 2**13 - 1, 2**64 - 1):
        for n in (0, 1, 16, 64, 65, 1420):
            k = blake2s(struct.pack("<QI", counter & 0xFFFFFFFF, n))
            p = pattern(n, counter & 0xFF)
            aad = b"" if n % 2 else pattern(32, 7)
            nonce = b"\0\0\0\0" + struct.pack("<Q", counter)
            sealed = ChaCha20Poly1305(k).encrypt(nonce, p, aad)
            records.append({"key": k, "counter": counter, "aad": aad, "plaintext": p,
                            "ciphertext": sealed[:-16], "tag": sealed[-16:]})
    write_records("chacha20poly1305-wireguard-nonce.txt", """ChaCha20-Poly1305 (RFC 8439 AEAD) with WireGuard's nonce: 32 zero bits || 64-bit little-endian
counter (whitepaper section 5.4). counter is decimal. Empty aad as for transport data; 32-byte aad
as for handshake fields. 1420 bytes is a full default-MTU packet.
""" + GENERATED % (PYTHON, "cryptography's ChaCha20Poly1305 (OpenSSL)"), records)

    records = []
    for n in (0, 16, 1, 64):
        k = blake2s(b"xchacha key %d" % n)
        nonce = blake2s(b"xchacha nonce %d" % n, size=24)
        p = pattern(n, 0x33)
        aad = pattern(32 if n != 1 else 0, 0x99)
        sealed = xchacha_seal(k, nonce, p, aad)
        records.append({"key": k, "nonce": nonce, "aad": aad, "plaintext": p,
                        "ciphertext": sealed[:-16], "tag": sealed[-16:]})
    write_records("xchacha20poly1305-extra.txt", """Additional XChaCha20-Poly1305 vectors; 16-byte plaintext with 32-byte aad is the shape of a
WireGuard cookie reply (cookie encrypted under HASH(LABEL-COOKIE || public key), aad = mac1).
Generated by Vectors/generate.py with %s: HChaCha20 written from draft-irtf-cfrg-xchacha-03
section 2.2 (checked against its 2.2.1 vector) feeding cryptography's ChaCha20Poly1305 (OpenSSL).
Regenerate with that script; do not edit.""" % PYTHON, records)


if __name__ == "__main__":
    generate()
    check_rfc_files()
    print("ok")
