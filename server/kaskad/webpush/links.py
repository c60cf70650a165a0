"""Signed tokens (moved to :mod:`kaskad.signing`; kept here for the web push and wallet code)."""

from kaskad.signing import BadToken, ForgedToken, sign, unsign

__all__ = ["BadToken", "ForgedToken", "sign", "unsign"]
