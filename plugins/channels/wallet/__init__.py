"""The ``wallet`` channel: a loyalty card in Apple Wallet and Google Wallet, and messages on it.

One card per contact, shown as an Apple pass (signed .pkpass, updated through
the PassKit web service and APNs) and/or a Google Wallet loyalty object (REST
API). A message is delivered by changing a card field that has a
``changeMessage`` (Apple) and by ``addMessage`` with ``TEXT_AND_NOTIFY``
(Google): both show on the lock screen and cost nothing. See docs/wallet.md.
"""

from __future__ import annotations

from kaskad import hookimpl

from kaskad_channels.wallet.channel import WalletChannel, WalletMessage
from kaskad_channels.wallet.config import WalletConfig

__all__ = ["WalletChannel", "WalletConfig", "WalletMessage"]


@hookimpl
def register_channels(register):
    register(WalletChannel())
