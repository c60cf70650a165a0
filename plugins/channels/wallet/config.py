"""Wallet channel settings: Apple pass signing and APNs, Google Wallet issuer and service account."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class WalletConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # What the card shows.
    organization_name: Annotated[str, Meta(description="Shown on the card and as the Google issuer name")] = "Kaskad"
    program_name: Annotated[str, Meta(description="Loyalty program name")] = "Loyalty card"
    points_label: str = "Points"
    tier_label: str = "Tier"
    message_label: str = "News"
    background_color: Annotated[str, Meta(description="rgb(r,g,b) for Apple, #rrggbb is derived for Google")] = "rgb(32,48,96)"
    foreground_color: str = "rgb(255,255,255)"
    label_color: str = "rgb(200,210,255)"
    logo_url: Annotated[str, Meta(description="Public https URL of the program logo (Google Wallet needs one)")] | None = None
    images_dir: Annotated[str, Meta(description="Directory with icon.png, logo.png… (@2x/@3x) for the Apple pass")] | None = None

    # Apple Wallet: pass signing.
    pass_type_id: Annotated[str, Meta(description="Pass Type ID, e.g. pass.com.shop.loyalty")] | None = None
    team_id: Annotated[str, Meta(description="Apple Developer Team ID")] | None = None
    pass_certificate: Annotated[str, Meta(description="Pass Type ID certificate: PEM file, or .p12 (then pass_key is unused)")] | None = None
    pass_key: Annotated[str, Meta(description="PEM private key of the pass certificate")] | None = None
    pass_key_password: str | None = None
    wwdr_certificate: Annotated[str, Meta(description="Apple WWDR intermediate certificate (PEM or DER file)")] | None = None

    # Apple Wallet: APNs (token auth with a .p8 key, or certificate auth with the pass certificate).
    apns_url: Annotated[str, Meta(description="APNs endpoint; passes always use production")] = "https://api.push.apple.com"
    apns_key: Annotated[str, Meta(description="APNs auth key (.p8 PEM file) for token auth")] | None = None
    apns_key_id: Annotated[str, Meta(description="Key ID of the .p8 key")] | None = None
    apns_use_certificate: Annotated[bool, Meta(description="Authenticate to APNs with the pass certificate instead of a token")] = False
    apns_ca_file: Annotated[str, Meta(description="CA bundle to trust for APNs (tests; default: system CAs)")] | None = None

    # Google Wallet.
    google_issuer_id: Annotated[str, Meta(description="Issuer ID from the Google Pay & Wallet console")] | None = None
    google_service_account_file: Annotated[str, Meta(description="Service-account key JSON file")] | None = None
    google_class_suffix: str = "loyalty"
    google_base_url: str = "https://walletobjects.googleapis.com/walletobjects/v1"
    google_token_url: Annotated[str, Meta(description="OAuth token endpoint; default: the key file's token_uri")] | None = None
    google_origins: Annotated[list[str], Meta(description="Sites that show the Add to Google Wallet button")] = []

    timeout: Annotated[float, Meta(gt=0)] = 10.0

    @property
    def apple(self) -> bool:
        return bool(self.pass_type_id and self.team_id and self.pass_certificate)

    @property
    def google(self) -> bool:
        return bool(self.google_issuer_id and self.google_service_account_file)
