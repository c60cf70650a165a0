"""Compact JWS (JWT) signing and verification, ES256 and RS256, on ``cryptography``.

ES256 is what APNs provider tokens and VAPID use; RS256 is what Google's
service-account assertions and "Add to Google Wallet" links use.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature


class JWSError(ValueError):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def sign(claims: dict[str, Any], key, header: dict[str, Any] | None = None) -> str:
    """Sign ``claims`` with an EC P-256 key (ES256) or an RSA key (RS256)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = "ES256"
    elif isinstance(key, rsa.RSAPrivateKey):
        alg = "RS256"
    else:
        raise JWSError(f"unsupported key type {type(key).__name__}")
    head = {"alg": alg, "typ": "JWT", **(header or {})}
    signing_input = f"{_segment(head)}.{_segment(claims)}".encode()
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{b64url(signature)}"


def verify(token: str, public_key) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the signature and return ``(header, claims)``; :class:`JWSError` when it does not verify."""
    try:
        head_b64, claims_b64, sig_b64 = token.split(".")
        header = json.loads(unb64url(head_b64))
        claims = json.loads(unb64url(claims_b64))
        signature = unb64url(sig_b64)
    except ValueError as exc:
        raise JWSError(f"malformed JWT: {exc}") from exc
    signing_input = f"{head_b64}.{claims_b64}".encode()
    try:
        if header.get("alg") == "ES256" and isinstance(public_key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise JWSError("ES256 signature must be 64 bytes (r || s)")
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        elif header.get("alg") == "RS256" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise JWSError(f"alg {header.get('alg')!r} does not fit the key")
    except InvalidSignature as exc:
        raise JWSError("signature does not verify") from exc
    return header, claims
