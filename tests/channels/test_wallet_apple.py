"""Apple Wallet: a signed .pkpass, and a scripted device's full PassKit cycle against an HTTP/2 APNs stand-in."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7
from sqlalchemy import select

from kaskad.channels import OutboundMessage, Recipient
from kaskad.store.engine import transaction
from kaskad.store.models import Contact, Event, OutboxMessage
from kaskad.testing.fakes.apns import FakeAPNs
from kaskad.testing.fakes.wallet_certs import make_wallet_credentials
from kaskad.wallet.jobs import sync_wallet_balances
from kaskad.wallet.models import WalletRegistration
from kaskad_channels.wallet import WalletConfig

DEVICE = "a1b2c3d4e5device"
PUSH_TOKEN = "ab" * 32


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    return make_wallet_credentials(tmp_path_factory.mktemp("wallet-creds"))


@pytest.fixture
def apns_server(creds):
    with FakeAPNs(
        topic=creds.pass_type_id, tls_certificate=str(creds.tls_certificate), tls_key=str(creds.tls_key),
        team_id=creds.team_id, key_id=creds.apns_key_id, public_key=creds.apns_private_key.public_key(),
    ) as server:
        yield server


@pytest.fixture
def balances():
    return {}


@pytest.fixture
def wallet(runtime, creds, apns_server, balances):
    channel = runtime.registry.channels["wallet"]
    channel.configure(
        WalletConfig(
            organization_name="Coffee Club", program_name="Coffee Club card",
            pass_type_id=creds.pass_type_id, team_id=creds.team_id,
            pass_certificate=str(creds.pass_certificate), pass_key=str(creds.pass_key), wwdr_certificate=str(creds.wwdr),
            apns_url=apns_server.url, apns_key=str(creds.apns_key), apns_key_id=creds.apns_key_id, apns_ca_file=str(creds.root_ca),
        )
    )
    channel.bind(runtime)
    channel.balance_provider = lambda session, contact_id: balances.get(contact_id, (Decimal(0), None))
    return channel


def _contact(runtime, external_id="guest-1") -> int:
    with transaction(runtime.sessions) as session:
        contact = Contact(external_id=external_id, attributes={"name": "Ada Lovelace"}, tags=[])
        session.add(contact)
        session.flush()
        return contact.id


def _unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def _openssl_verify(files: dict[str, bytes], creds, tmp_path) -> subprocess.CompletedProcess:
    (tmp_path / "manifest.json").write_bytes(files["manifest.json"])
    (tmp_path / "signature").write_bytes(files["signature"])
    return subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "signature"),
         "-content", str(tmp_path / "manifest.json"), "-CAfile", str(creds.root_ca), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True,
    )


def test_pkpass_is_hashed_and_signed(runtime, api, wallet, creds, balances, tmp_path):
    contact_id = _contact(runtime)
    balances[contact_id] = (Decimal(120), "Silver")
    # The request and the answer's shape as docs/wallet.md shows them.
    doc = (Path(__file__).parents[2] / "docs" / "wallet.md").read_text().split("POST /api/v1/wallet/cards")[1]
    request_body = json.loads(doc.split("\n\n")[1])
    documented = re.findall(r'"(\w+)":', doc.split("200 ")[1].split("```")[0])
    card = api.post("/api/v1/wallet/cards", json=request_body).json()
    assert list(card) == documented
    assert card["points"] == "120" and card["tier"] == "Silver" and card["google_url"] is None
    resp = api.client.get(card["apple_url"].removeprefix(runtime.settings.public_url))
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/vnd.apple.pkpass"
    files = _unzip(resp.content)

    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"} and "icon.png" in manifest
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name]).hexdigest() == digest, name

    verified = _openssl_verify(files, creds, tmp_path)
    assert verified.returncode == 0, verified.stderr
    embedded = pkcs7.load_der_pkcs7_certificates(files["signature"])
    root = x509.load_pem_x509_certificate(creds.root_ca.read_bytes())
    wwdr = x509.load_pem_x509_certificate(creds.wwdr.read_bytes())
    signer = x509.load_pem_x509_certificate(creds.pass_certificate.read_bytes())
    assert wwdr in embedded and signer in embedded  # the WWDR intermediate travels with the signature
    signer.verify_directly_issued_by(wwdr)
    wwdr.verify_directly_issued_by(root)
    tampered = dict(files, **{"manifest.json": files["manifest.json"].replace(b'"', b"'", 1)})
    assert _openssl_verify(tampered, creds, tmp_path).returncode != 0

    data = json.loads(files["pass.json"])
    assert data["passTypeIdentifier"] == creds.pass_type_id and data["teamIdentifier"] == creds.team_id
    assert data["serialNumber"] == card["serial_number"] and len(data["authenticationToken"]) >= 16
    assert data["webServiceURL"] == f"{runtime.settings.public_url}/passkit"
    assert data["barcodes"][0]["message"] == card["card_number"] == data["barcode"]["message"]
    fields = {f["key"]: f for part in data["storeCard"].values() for f in part}
    assert fields["points"]["value"] == 120 and "%@" in fields["points"]["changeMessage"]
    assert fields["tier"]["value"] == "Silver" and "%@" in fields["tier"]["changeMessage"]
    assert fields["message"]["changeMessage"] == "%@"


class Device:
    """An iPhone's Wallet, scripted: it speaks the PassKit web service protocol."""

    def __init__(self, client, base_path: str, pass_type: str, serial: str, token: str):
        self.client, self.base, self.pass_type, self.serial = client, base_path, pass_type, serial
        self.auth = {"Authorization": f"ApplePass {token}"}
        self.tag: str | None = None
        self.last_modified: str | None = None

    def register(self, auth=None):
        return self.client.post(
            f"{self.base}/v1/devices/{DEVICE}/registrations/{self.pass_type}/{self.serial}",
            json={"pushToken": PUSH_TOKEN}, headers=auth or self.auth,
        )

    def unregister(self):
        return self.client.delete(f"{self.base}/v1/devices/{DEVICE}/registrations/{self.pass_type}/{self.serial}", headers=self.auth)

    def updated_serials(self) -> list[str]:
        params = {"passesUpdatedSince": self.tag} if self.tag else {}
        resp = self.client.get(f"{self.base}/v1/devices/{DEVICE}/registrations/{self.pass_type}", params=params)
        if resp.status_code == 204:
            return []
        assert resp.status_code == 200, resp.text
        self.tag = resp.json()["lastUpdated"]
        return resp.json()["serialNumbers"]

    def fetch(self):
        headers = dict(self.auth)
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        resp = self.client.get(f"{self.base}/v1/passes/{self.pass_type}/{self.serial}", headers=headers)
        if resp.status_code == 304:
            return None
        assert resp.status_code == 200, resp.text
        self.last_modified = resp.headers["last-modified"]
        data = json.loads(_unzip(resp.content)["pass.json"])
        return {f["key"]: f["value"] for part in data["storeCard"].values() for f in part}


def test_device_cycle_register_push_list_fetch_unregister(runtime, api, wallet, creds, balances, apns_server):
    contact_id = _contact(runtime)
    balances[contact_id] = (Decimal(120), "Silver")
    card = api.post("/api/v1/wallet/cards", json={"external_id": "guest-1"}).json()
    data = json.loads(_unzip(api.client.get(card["apple_url"].removeprefix(runtime.settings.public_url)).content)["pass.json"])
    device = Device(api.client, data["webServiceURL"].removeprefix(runtime.settings.public_url), data["passTypeIdentifier"],
                    data["serialNumber"], data["authenticationToken"])

    assert device.register(auth={"Authorization": "ApplePass wrong-token-0000000"}).status_code == 401
    assert device.register().status_code == 201
    assert device.register().status_code == 200  # already registered
    assert device.updated_serials() == [card["serial_number"]]
    assert device.fetch()["points"] == 120
    stranger = api.client.get(f"{device.base}/v1/passes/{device.pass_type}/{device.serial}", headers={"Authorization": "ApplePass nope"})
    assert stranger.status_code == 401
    assert device.updated_serials() == [] and device.fetch() is None  # nothing new: 204 and 304

    # The ledger moves: the periodic job updates the card and pushes the device through APNs.
    balances[contact_id] = (Decimal(350), "Gold")
    with transaction(runtime.sessions) as session:
        session.add(Event(contact_id=contact_id, name="points_changed", occurred_at=card_time(), properties={"delta": 230}))
    assert sync_wallet_balances(runtime, None) == 1
    assert sync_wallet_balances(runtime, None) == 0  # the event is reflected once
    (push,) = apns_server.received
    assert apns_server.rejected == []
    assert push.token == PUSH_TOKEN and push.headers["apns-topic"] == creds.pass_type_id
    assert push.headers["apns-push-type"] == "background" and push.body == b"{}"
    assert push.jwt_claims["iss"] == creds.team_id
    assert device.updated_serials() == [card["serial_number"]]
    fields = device.fetch()
    assert fields["points"] == 350 and fields["tier"] == "Gold"

    # A message is a change of the field with changeMessage "%@": the lock screen shows it.
    with transaction(runtime.sessions) as session:
        session.add(OutboxMessage(key="run7:card:0", contact_id=contact_id, channel="wallet", status="sending", payload={}))
    message = OutboundMessage(key="run7:card:0", recipient=Recipient(contact_id=contact_id, external_id="guest-1"),
                              address="guest-1", content={"text": "Double points this weekend"})
    (result,) = asyncio.run(wallet.send_batch([message]))
    assert result.status == "sent", result
    assert wallet.cost(message) == Decimal(0)
    assert len(apns_server.received) == 2
    assert device.updated_serials() == [card["serial_number"]]
    assert device.fetch()["message"] == "Double points this weekend"

    assert api.client.post(f"{device.base}/v1/log", json={"logs": ["Web service error for pass: test"]}).status_code == 200
    assert device.unregister().status_code == 200
    assert device.updated_serials() == []
    (after,) = asyncio.run(wallet.send_batch([message]))
    assert after.status == "failed" and after.error == "the card is not in any wallet yet"


def test_apns_unregistered_token_drops_the_registration(runtime, api, wallet, balances, apns_server):
    contact_id = _contact(runtime)
    card = api.post("/api/v1/wallet/cards", json={"external_id": "guest-1"}).json()
    data = json.loads(_unzip(api.client.get(card["apple_url"].removeprefix(runtime.settings.public_url)).content)["pass.json"])
    device = Device(api.client, "/passkit", data["passTypeIdentifier"], data["serialNumber"], data["authenticationToken"])
    assert device.register().status_code == 201
    apns_server.unregistered.add(PUSH_TOKEN)
    balances[contact_id] = (Decimal(5), None)
    with transaction(runtime.sessions) as session:
        session.add(Event(contact_id=contact_id, name="points_changed", occurred_at=card_time(), properties={}))
    sync_wallet_balances(runtime, None)
    assert apns_server.rejected == [(410, "Unregistered")]
    with runtime.sessions() as session:
        assert session.scalars(select(WalletRegistration)).all() == []


def card_time():
    from kaskad import clock

    return clock.now()


def test_apns_certificate_auth(runtime, api, creds, balances, tmp_path):
    """APNs with the Pass Type ID certificate as TLS client certificate instead of a token."""
    apple_cas = tmp_path / "apple-cas.pem"  # APNs knows Apple's root and the WWDR intermediate
    apple_cas.write_bytes(creds.root_ca.read_bytes() + creds.wwdr.read_bytes())
    with FakeAPNs(topic=creds.pass_type_id, tls_certificate=str(creds.tls_certificate), tls_key=str(creds.tls_key),
                  client_ca=str(apple_cas)) as server:
        channel = runtime.registry.channels["wallet"]
        channel.configure(
            WalletConfig(pass_type_id=creds.pass_type_id, team_id=creds.team_id, pass_certificate=str(creds.pass_certificate),
                         pass_key=str(creds.pass_key), wwdr_certificate=str(creds.wwdr), apns_url=server.url,
                         apns_use_certificate=True, apns_ca_file=str(creds.root_ca))
        )
        channel.bind(runtime)
        outcomes = asyncio.run(channel.apns.push([PUSH_TOKEN]))
        assert [(o.status, o.reason) for o in outcomes] == [(200, None)]
        (push,) = server.received
        assert "authorization" not in push.headers and push.headers["apns-topic"] == creds.pass_type_id


def test_card_follows_the_loyalty_ledger(runtime, api, creds, apns_server):
    """With the real ledger as balance provider: an earn plus its points_changed event updates the pass."""
    from kaskad.loyalty import ledger

    channel = runtime.registry.channels["wallet"]
    channel.configure(
        WalletConfig(pass_type_id=creds.pass_type_id, team_id=creds.team_id, pass_certificate=str(creds.pass_certificate),
                     pass_key=str(creds.pass_key), wwdr_certificate=str(creds.wwdr), apns_url=apns_server.url,
                     apns_key=str(creds.apns_key), apns_key_id=creds.apns_key_id, apns_ca_file=str(creds.root_ca))
    )
    channel.bind(runtime)
    contact_id = _contact(runtime)
    card = api.post("/api/v1/wallet/cards", json={"external_id": "guest-1"}).json()
    assert card["points"] == "0"
    data = json.loads(_unzip(api.client.get(card["apple_url"].removeprefix(runtime.settings.public_url)).content)["pass.json"])
    device = Device(api.client, "/passkit", data["passTypeIdentifier"], data["serialNumber"], data["authenticationToken"])
    assert device.register().status_code == 201
    device.updated_serials()

    with transaction(runtime.sessions) as session:
        ledger.earn(session, contact_id, 40, key="welcome:guest-1", reason="welcome bonus", available_at=card_time())
        ledger.emit(session, contact_id, "points_changed", {"earned": "40"}, key="test:points_changed:1")
    assert sync_wallet_balances(runtime, None) == 1
    assert [n.token for n in apns_server.received] == [PUSH_TOKEN]
    assert device.updated_serials() == [card["serial_number"]]
    assert device.fetch()["points"] == 40
