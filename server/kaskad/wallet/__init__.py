"""Wallet cards (Apple Wallet passes, Google Wallet loyalty objects): what core keeps about them.

The card rendering, signing and provider calls live in the ``wallet`` channel
plugin (``kaskad_channels.wallet``); core's API and periodic job reach it
through the channel registry, never by importing it.
"""
