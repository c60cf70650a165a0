"""The journey engine."""
