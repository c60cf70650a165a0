"""Click tracking and the open pixel inside an email's HTML part."""

from __future__ import annotations

import html
import re
from typing import Callable

_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.I | re.S)
_BODY_END = re.compile(r"</body\s*>", re.I)


def rewrite_links(markup: str, track: Callable[[str], str], keep: str | None = None) -> str:
    """Replace every http(s) ``<a href>`` by ``track(url)``.

    Other schemes (mailto:, tel:, #anchors) and URLs starting with ``keep``
    (the unsubscribe link: following it must not count as engagement) stay.
    """

    def swap(m: re.Match) -> str:
        url = html.unescape(m.group(3)).strip()
        if not url.lower().startswith(("http://", "https://")) or (keep and url.startswith(keep)):
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}{html.escape(track(url), quote=True)}{m.group(2)}"

    return _HREF.sub(swap, markup)


def add_pixel(markup: str, url: str) -> str:
    """Add a 1×1 image loading ``url`` at the end of the body."""
    img = f'<img src="{html.escape(url, quote=True)}" width="1" height="1" alt="" style="display:block;border:0">'
    found = list(_BODY_END.finditer(markup))
    if not found:
        return markup + img
    at = found[-1].start()
    return markup[:at] + img + markup[at:]
