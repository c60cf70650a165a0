"""The ``webpush`` channel: browser notifications to a shop's site visitors (Web Push, RFC 8030/8291/8292).

Payloads are encrypted by pywebpush (``aes128gcm``, RFC 8291) for each of the
contact's subscriptions and posted to the browser's push service with a VAPID
JWT (RFC 8292), ``TTL`` and ``Urgency``. A push service answering 404 or 410
means the subscription is gone: it is deleted. See docs/webpush.md.
"""

from __future__ import annotations

from kaskad import hookimpl

from kaskad_channels.webpush.channel import WebPushChannel, WebPushConfig, WebPushMessage

__all__ = ["WebPushChannel", "WebPushConfig", "WebPushMessage"]


@hookimpl
def register_channels(register):
    register(WebPushChannel())
