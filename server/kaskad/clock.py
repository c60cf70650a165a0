"""The one place Kaskad asks what time it is, so tests can move time.

In-process tests use :func:`set_clock` / :func:`travel`; separate worker
processes started by a test read ``KASKAD_CLOCK_OFFSET`` (seconds to add).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

_offset = timedelta(seconds=float(os.environ.get("KASKAD_CLOCK_OFFSET", "0") or 0))
_source: Callable[[], datetime] | None = None


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    if _source is not None:
        return _source()
    return datetime.now(timezone.utc) + _offset


def set_clock(source: Callable[[], datetime] | None) -> None:
    global _source
    _source = source


@contextmanager
def travel(to: datetime) -> Iterator[list[datetime]]:
    """Freeze time at ``to``; assign ``box[0]`` inside the block to move it."""
    box = [to]
    previous = _source
    set_clock(lambda: box[0])
    try:
        yield box
    finally:
        set_clock(previous)
