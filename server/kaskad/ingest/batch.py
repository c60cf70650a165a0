"""Decoding a bulk request body into items, each validated on its own."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


class ItemError(msgspec.Struct, kw_only=True):
    index: int
    field: str | None
    message: str


class BatchRejected(Exception):
    """The body as a whole is unusable; nothing is stored."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def _split(exc: msgspec.ValidationError) -> tuple[str | None, str]:
    m = _AT.match(str(exc))
    path = (m.group("path") or "").lstrip(".") or None if m else None
    return path, (m.group("msg") if m else str(exc))


def decode_batch(body: bytes, list_key: str, item_type: type[T], max_items: int) -> tuple[list[tuple[int, T]], list[ItemError]]:
    """Decode ``{"<list_key>": [...]}``; returns (index, item) pairs and per-item errors."""
    if not body.strip():
        raise BatchRejected(f'the request body is empty; send {{"{list_key}": [...]}}')
    try:
        top = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BatchRejected(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(top, dict):
        raise BatchRejected(f'the request body must be a JSON object {{"{list_key}": [...]}}, not {type(top).__name__}')
    unknown = sorted(set(top) - {list_key})
    if unknown:
        raise BatchRejected(f"unknown top-level key(s) {', '.join(map(repr, unknown))}; the body holds only {list_key!r}")
    items = top.get(list_key)
    if not isinstance(items, list):
        raise BatchRejected(f"{list_key!r} must be a list of objects")
    if len(items) > max_items:
        raise BatchRejected(
            f"{len(items)} {list_key} in one request is over the limit of {max_items}; split the batch", 413
        )
    # Fast path: a clean batch decodes in one typed pass; any error falls back to item by item.
    try:
        return list(enumerate(msgspec.json.decode(body, type=_batch_type(list_key, item_type)).items)), []
    except msgspec.ValidationError:
        pass
    good: list[tuple[int, T]] = []
    errors: list[ItemError] = []
    for i, raw in enumerate(items):
        try:
            good.append((i, msgspec.convert(raw, item_type, strict=False)))
        except msgspec.ValidationError as exc:
            field, message = _split(exc)
            errors.append(ItemError(index=i, field=field, message=message))
    return good, errors


_BATCH_TYPES: dict[tuple[str, type], type] = {}


def _batch_type(list_key: str, item_type: type) -> type:
    key = (list_key, item_type)
    if key not in _BATCH_TYPES:
        _BATCH_TYPES[key] = msgspec.defstruct(
            f"{item_type.__name__}Batch", [("items", list[item_type], msgspec.field(name=list_key))], forbid_unknown_fields=True
        )
    return _BATCH_TYPES[key]


def as_json(value: Any) -> Any:
    return msgspec.to_builtins(value)
