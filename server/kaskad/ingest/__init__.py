"""Bulk ingestion of contacts, events and orders: per-item validation, set-based SQL.

A batch is validated item by item: good items are stored, bad ones are
reported by index with the field and what is wrong. The batch as a whole is
refused (nothing stored) only when the body itself is wrong: not JSON, not the
expected object, unknown keys at the top level, or more items than the limit.
"""
