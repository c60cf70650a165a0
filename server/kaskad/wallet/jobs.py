"""Periodic: cards whose holder's points or tier changed get the new values, and their wallets a push."""

from __future__ import annotations

from kaskad.periodic import every


@every(60, name="wallet.sync_balances")
def sync_wallet_balances(runtime, now) -> int:
    channel = runtime.registry.channels.get("wallet")
    if channel is None:
        return 0
    if getattr(channel, "runtime", None) is None:
        channel.bind(runtime)
    if not (channel.config.apple or channel.config.google):
        return 0
    return channel.sync_balances()
