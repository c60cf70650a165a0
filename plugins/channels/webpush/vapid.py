"""VAPID keys (RFC 8292): an EC P-256 key pair that identifies the shop to push services.

The public key, as uncompressed point bytes in urlsafe base64 without padding,
is the ``applicationServerKey`` a page passes to ``pushManager.subscribe``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from kaskad.wallet.jws import b64url, unb64url

KEY_FILE = "webpush/vapid_private.pem"


def generate() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def application_server_key(key: ec.EllipticCurvePrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(raw)


def private_raw(key: ec.EllipticCurvePrivateKey) -> str:
    """The private scalar in urlsafe base64: the form ``KASKAD_WEBPUSH_VAPID_PRIVATE_KEY`` takes."""
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def load(text: str) -> ec.EllipticCurvePrivateKey:
    """A key from PEM text or from its urlsafe-base64 private scalar."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the VAPID key must be an EC P-256 key")
        return key
    return ec.derive_private_key(int.from_bytes(unb64url(text), "big"), ec.SECP256R1())


def pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def store(home: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path = home / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem(key))
    return path


def stored(home: Path) -> ec.EllipticCurvePrivateKey | None:
    path = home / KEY_FILE
    return load(path.read_text()) if path.exists() else None


def signer(key: ec.EllipticCurvePrivateKey) -> Vapid02:
    return Vapid02(private_key=key)
