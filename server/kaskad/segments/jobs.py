"""The segments area's periodic work (see :mod:`kaskad.periodic`). Each job is safe to run twice."""

from __future__ import annotations

from datetime import datetime

from kaskad import periodic
from kaskad.segments import rfm_snapshots
from kaskad.store.engine import transaction

#: RFM is recomputed this often; the day's snapshot is replaced each time.
RFM_EVERY = 6 * 3600


@periodic.every(RFM_EVERY, name="segments.rfm")
def rfm_job(runtime, now: datetime) -> None:
    with transaction(runtime.sessions) as session:
        rfm_snapshots.take(session, now)
        rfm_snapshots.prune(session, now.date())
