"""Apple Wallet ``.pkpass`` bundles: pass.json, manifest.json (SHA-1 of every file), a detached
PKCS#7 signature of the manifest (DER, signed by the Pass Type ID certificate, with the
WWDR intermediate in the chain), zipped."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12


@dataclass
class Signer:
    certificate: x509.Certificate
    key: Any
    wwdr: x509.Certificate

    @classmethod
    def from_files(cls, certificate: str, key: str | None, wwdr: str, password: str | None = None) -> "Signer":
        pw = password.encode() if password else None
        data = Path(certificate).read_bytes()
        if certificate.endswith((".p12", ".pfx")):
            private, cert, _ = pkcs12.load_key_and_certificates(data, pw)
        else:
            cert = x509.load_pem_x509_certificate(data)
            if not key:
                raise ValueError("pass_key (the certificate's PEM private key) is not set")
            private = serialization.load_pem_private_key(Path(key).read_bytes(), pw)
        wwdr_bytes = Path(wwdr).read_bytes()
        intermediate = (
            x509.load_pem_x509_certificate(wwdr_bytes) if b"-----BEGIN" in wwdr_bytes else x509.load_der_x509_certificate(wwdr_bytes)
        )
        return cls(cert, private, intermediate)

    def sign(self, manifest: bytes) -> bytes:
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(manifest)
            .add_signer(self.certificate, self.key, hashes.SHA256())
            .add_certificate(self.wwdr)
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
        )


def number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def pass_json(config, *, serial: str, auth_token: str, web_service_url: str, card_number: str, holder: str | None,
              points: Decimal, tier: str | None, message: str | None) -> dict[str, Any]:
    """pass.json of a store card. Every field that changes has a ``changeMessage``, so an update shows on the lock screen."""
    barcode = {"format": "PKBarcodeFormatQR", "message": card_number, "messageEncoding": "iso-8859-1", "altText": card_number}
    card: dict[str, Any] = {
        "headerFields": [
            {"key": "points", "label": config.points_label, "value": number(points),
             "changeMessage": f"{config.points_label}: %@"}
        ],
        "primaryFields": [
            {"key": "tier", "label": config.tier_label, "value": tier or "-", "changeMessage": f"{config.tier_label}: %@"}
        ],
        "secondaryFields": [{"key": "holder", "label": "Member", "value": holder or ""}] if holder else [],
        "auxiliaryFields": [{"key": "card", "label": "Card", "value": card_number}],
        "backFields": [
            {"key": "message", "label": config.message_label, "value": message or "", "changeMessage": "%@"},
        ],
    }
    return {
        "formatVersion": 1,
        "passTypeIdentifier": config.pass_type_id,
        "serialNumber": serial,
        "teamIdentifier": config.team_id,
        "organizationName": config.organization_name,
        "description": config.program_name,
        "logoText": config.organization_name,
        "webServiceURL": web_service_url,
        "authenticationToken": auth_token,
        "barcodes": [barcode],
        "barcode": barcode,  # iOS 8 and older read only this key
        "backgroundColor": config.background_color,
        "foregroundColor": config.foreground_color,
        "labelColor": config.label_color,
        "storeCard": card,
    }


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG: the icon Wallet requires when the shop gave no images."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _rgb(text: str) -> tuple[int, int, int]:
    try:
        r, g, b = (int(x) for x in text.strip().removeprefix("rgb(").removesuffix(")").split(","))
        return r, g, b
    except ValueError:
        return 32, 48, 96


def images(config) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    if config.images_dir:
        for path in sorted(Path(config.images_dir).glob("*.png")):
            files[path.name] = path.read_bytes()
    if "icon.png" not in files:
        color = _rgb(config.background_color)
        files["icon.png"] = _png(29, 29, color)
        files["icon@2x.png"] = _png(58, 58, color)
    return files


def build(pass_data: dict[str, Any], files: dict[str, bytes], signer: Signer) -> bytes:
    """Zip pass.json, the images, manifest.json and signature into a .pkpass."""
    contents = {"pass.json": json.dumps(pass_data, ensure_ascii=False, indent=1).encode(), **files}
    manifest = json.dumps({name: hashlib.sha1(data).hexdigest() for name, data in contents.items()}, indent=1).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in contents.items():
            z.writestr(name, data)
        z.writestr("manifest.json", manifest)
        z.writestr("signature", signer.sign(manifest))
    return out.getvalue()
