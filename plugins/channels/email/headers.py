"""The Message-ID we set, derived from the outbox key (and the key read back from it).

A retried send carries the same Message-ID, and a bounce report (which quotes
the original's Message-ID) leads back to the outbox row even when the worker
died before it stored the provider id. ``:`` becomes ``.``; any character
outside ``[A-Za-z0-9_-]`` is written as ``=XX`` (its UTF-8 bytes).
"""

from __future__ import annotations

import re

_OTHER = re.compile(r"[^A-Za-z0-9_\-:]")
PREFIX = "kaskad."


def _escape(m: re.Match) -> str:
    return "".join(f"={b:02X}" for b in m.group().encode())


def message_id(key: str, domain: str) -> str:
    local = _OTHER.sub(_escape, key).replace(":", ".")
    return f"<{PREFIX}{local}@{domain}>"


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
