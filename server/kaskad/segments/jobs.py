"""The segments area's periodic work (see :mod:`kaskad.periodic`). Each job is safe to run twice."""

from __future__ import annotations

from datetime import datetime

from kaskad import periodic
from kaskad.segments import membership, rfm_snapshots, trigger_jobs
from kaskad.store.engine import transaction

#: RFM is recomputed this often; the day's snapshot is replaced each time.
RFM_EVERY = 6 * 3600
#: Contacts touched by new events/orders are re-evaluated this often ...
MEMBERSHIP_EVERY = 15
#: ... and every contact, for conditions that change with time alone, this often.
FULL_PASS_EVERY = 3600


@periodic.every(RFM_EVERY, name="segments.rfm")
def rfm_job(runtime, now: datetime) -> None:
    with transaction(runtime.sessions) as session:
        rfm_snapshots.take(session, now)
        rfm_snapshots.prune(session, now.date())


@periodic.every(MEMBERSHIP_EVERY, name="segments.membership")
def membership_job(runtime, now: datetime) -> None:
    with transaction(runtime.sessions) as session:
        membership.incremental_pass(session, now)


@periodic.every(FULL_PASS_EVERY, name="segments.full_pass")
def full_pass_job(runtime, now: datetime) -> None:
    with transaction(runtime.sessions) as session:
        membership.full_passes(session, now)


def _trigger_job(fn):
    def job(runtime, now: datetime) -> None:
        with transaction(runtime.sessions) as session:
            fn(session, runtime, now)

    return job


# one job per entry kind, so a slow kind (replenishment) never delays a fast one (abandoned carts)
for _kind, (_fn, _seconds) in trigger_jobs.KINDS.items():
    periodic.every(_seconds, name=f"segments.trigger.{_kind}")(_trigger_job(_fn))
