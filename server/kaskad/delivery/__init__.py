"""Delivery rules every channel obeys, enforced in core: consent, caps, quiet hours."""
