"""Delivery rules and records every channel shares, enforced in core.

- :mod:`~kaskad.delivery.policy`: consent, frequency caps, quiet hours (who may be sent what, now);
- :mod:`~kaskad.delivery.ratelimit`: provider rate limits shared across worker processes;
- :mod:`~kaskad.delivery.links`: signed unsubscribe, open-pixel and click links inside messages;
- :mod:`~kaskad.delivery.engagement`: opens, clicks, unsubscribes observed by Kaskad itself;
- :mod:`~kaskad.delivery.webhooks`: what providers report (delivered, bounced…).
"""
