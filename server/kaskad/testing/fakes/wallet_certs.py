"""Test credentials for the wallet channel, made with ``cryptography``:

a root CA standing in for Apple's, the WWDR intermediate it signs, a Pass Type
ID certificate under WWDR, an APNs auth key (.p8), a TLS certificate for the
APNs stand-in, and a Google service-account key file. Everything is written
under one directory; the attributes name the files.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PASS_TYPE_ID = "pass.example.kaskad.loyalty"
TEAM_ID = "TEAM123456"
APNS_KEY_ID = "APNSKEY001"
GOOGLE_ISSUER = "3388000000012345678"
GOOGLE_EMAIL = "kaskad-wallet@example-project.iam.gserviceaccount.com"


def _name(cn: str, **extra) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if "uid" in extra:
        attrs.append(x509.NameAttribute(NameOID.USER_ID, extra["uid"]))
    if "ou" in extra:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, extra["ou"]))
    return x509.Name(attrs)


def _cert(subject, key, issuer, issuer_key, ca: bool, eku=None, san=None) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _pem_cert(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class WalletCredentials:
    dir: Path
    root_ca: Path
    wwdr: Path
    pass_certificate: Path
    pass_key: Path
    apns_key: Path
    tls_certificate: Path
    tls_key: Path
    google_service_account: Path
    google_key: rsa.RSAPrivateKey
    apns_private_key: ec.EllipticCurvePrivateKey
    pass_type_id: str = PASS_TYPE_ID
    team_id: str = TEAM_ID
    apns_key_id: str = APNS_KEY_ID
    google_issuer_id: str = GOOGLE_ISSUER
    google_email: str = GOOGLE_EMAIL


def make_wallet_credentials(directory: Path, token_url: str = "https://oauth2.googleapis.com/token") -> WalletCredentials:
    directory.mkdir(parents=True, exist_ok=True)
    root_key = rsa.generate_private_key(65537, 2048)
    root_name = _name("Test Apple Root CA", ou="Kaskad tests")
    root = _cert(root_name, root_key, root_name, root_key, ca=True)

    wwdr_key = rsa.generate_private_key(65537, 2048)
    wwdr_name = _name("Test Apple Worldwide Developer Relations Certification Authority", ou="G4")
    wwdr = _cert(wwdr_name, wwdr_key, root_name, root_key, ca=True)

    pass_key = rsa.generate_private_key(65537, 2048)
    pass_cert = _cert(
        _name(f"Pass Type ID: {PASS_TYPE_ID}", uid=PASS_TYPE_ID, ou=TEAM_ID), pass_key, wwdr_name, wwdr_key, ca=False,
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )

    tls_key = ec.generate_private_key(ec.SECP256R1())
    tls_cert = _cert(
        _name("localhost"), tls_key, root_name, root_key, ca=False, eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    apns_key = ec.generate_private_key(ec.SECP256R1())
    google_key = rsa.generate_private_key(65537, 2048)

    files = {
        "root_ca.pem": _pem_cert(root),
        "wwdr.pem": _pem_cert(wwdr),
        "pass.pem": _pem_cert(pass_cert),
        "pass.key": _pem_key(pass_key),
        f"AuthKey_{APNS_KEY_ID}.p8": _pem_key(apns_key),
        "tls.pem": _pem_cert(tls_cert) + _pem_cert(root),
        "tls.key": _pem_key(tls_key),
        "service-account.json": json.dumps(
            {
                "type": "service_account",
                "project_id": "example-project",
                "private_key_id": "key-1",
                "private_key": _pem_key(google_key).decode(),
                "client_email": GOOGLE_EMAIL,
                "token_uri": token_url,
            }
        ).encode(),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return WalletCredentials(
        dir=directory,
        root_ca=directory / "root_ca.pem",
        wwdr=directory / "wwdr.pem",
        pass_certificate=directory / "pass.pem",
        pass_key=directory / "pass.key",
        apns_key=directory / f"AuthKey_{APNS_KEY_ID}.p8",
        tls_certificate=directory / "tls.pem",
        tls_key=directory / "tls.key",
        google_service_account=directory / "service-account.json",
        google_key=google_key,
        apns_private_key=apns_key,
    )
