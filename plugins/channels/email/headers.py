"""The Message-ID we set, derived from the outbox key (and the key read back from it).

A retried send carries the same Message-ID, and a bounce report (which quotes
the original's Message-ID) leads back to the outbox row even when the worker
died before it stored the provider id. ``:`` becomes ``.``; any character
outside ``[A-Za-z0-9_-]`` is written as ``=XX`` (its UTF-8 bytes).
"""

from __future__ import annotations

import re

_PLAIN = re.compile(r"[A-Za-z0-9_\-]")
PREFIX = "kaskad."


def message_id(key: str, domain: str) -> str:
    out = []
    for ch in key:
        if ch == ":":
            out.append(".")
        elif _PLAIN.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"={b:02X}" for b in ch.encode())
    return f"<{PREFIX}{''.join(out)}@{domain}>"


def key_from_message_id(value: str) -> str | None:
    """The outbox key inside a Message-ID we set; None for anyone else's."""
    local = value.strip().strip("<>").rpartition("@")[0]
    if not local.startswith(PREFIX):
        return None
    raw = bytearray()
    text = local[len(PREFIX):]
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == ".":
            raw += b":"
        elif ch == "=":
            try:
                raw.append(int(text[i + 1:i + 3], 16))
            except ValueError:
                return None
            i += 2
        else:
            raw += ch.encode()
        i += 1
    try:
        return raw.decode() or None
    except UnicodeDecodeError:
        return None
