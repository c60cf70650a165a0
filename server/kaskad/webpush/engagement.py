"""Engagement recording (moved to :mod:`kaskad.delivery.engagement`; kept here for the web push code)."""

from kaskad.delivery.engagement import record

__all__ = ["record"]
