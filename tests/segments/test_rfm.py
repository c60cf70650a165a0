"""RFM on the CDNOW sample (shipped in lifetimes) against an independent pandas computation."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import insert

import lifetimes  # noqa: F401  (only to locate the data file)
from kaskad.segments import order_stats, rfm
from kaskad.store.engine import make_engine, make_sessionmaker, transaction
from kaskad.store.models import Contact, Order

CDNOW = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_sample.txt"


def test_segment_table_covers_every_score():
    for r in range(1, 6):
        for f in range(1, 6):
            for m in range(1, 6):
                assert rfm.segment_name(r, f, m)
    assert rfm.segment_name(5, 5, 5) == "Champions"
    assert rfm.segment_name(1, 5, 5) == "Can't lose them"
    assert rfm.segment_name(5, 1, 1) == "New"
    assert rfm.segment_name(1, 1, 1) == "Lost"


@pytest.mark.parametrize("with_refund", [False, True])
def test_cdnow_scores_match_pandas_contact_by_contact(db_url, with_refund):
    df = pd.read_csv(CDNOW, sep=r"\s+", header=None, names=["cust", "cust2", "date", "qty", "amount"], dtype={"cust": str, "date": str})
    df["placed_at"] = pd.to_datetime(df["date"], format="%Y%m%d").dt.tz_localize("UTC")
    df["status"] = "paid"
    if with_refund:  # every 7th order refunded: must vanish from all three dimensions
        df.loc[df.index % 7 == 0, "status"] = "refunded"
    engine = make_engine(db_url)
    with transaction(make_sessionmaker(engine)) as s:
        custs = sorted(df["cust"].unique())
        s.execute(insert(Contact), [{"external_id": c, "attributes": {}, "tags": []} for c in custs])
        ids = dict(s.execute(Contact.__table__.select().with_only_columns(Contact.external_id, Contact.id)).all())
        s.execute(insert(Order), [
            {"external_id": f"o{i}", "contact_id": ids[row.cust], "status": row.status, "amount": Decimal(str(row.amount)),
             "refunded_amount": Decimal(0), "currency": "USD", "placed_at": row.placed_at.to_pydatetime()}
            for i, row in enumerate(df.itertuples())
        ])
        order_stats.rebuild(s)  # a bulk load that bypassed ingest
    with transaction(make_sessionmaker(engine)) as s:
        got = rfm.compute(s)
    engine.dispose()

    kept = df[df.status == "paid"]
    kept = kept.assign(cents=(kept.amount * 100).round().astype(int))  # exact sums, as the database's decimals
    agg = kept.groupby("cust").agg(last=("placed_at", "max"), n=("placed_at", "size"), spend=("cents", "sum"))
    n = len(agg)

    def score(col):
        return 1 + (5 * (agg[col].rank(method="min").astype(int) - 1)) // n

    expected = pd.DataFrame({"r": score("last"), "f": score("n"), "m": score("spend")})
    assert len(got) == n
    back = {v: k for k, v in ids.items()}
    for cid, (r, f, m, name) in got.items():
        e = expected.loc[back[cid]]
        assert (r, f, m) == (e.r, e.f, e.m), back[cid]
        assert name == rfm.segment_name(r, f, m)
    assert set(expected.r) == {1, 2, 3, 4, 5}


def test_explicit_thresholds(db_url):
    engine = make_engine(db_url)
    now = datetime(2026, 1, 31, tzinfo=timezone.utc)
    with transaction(make_sessionmaker(engine)) as s:
        c = Contact(external_id="a", attributes={}, tags=[])
        s.add(c)
        s.flush()
        for i, day in enumerate((1, 20, 25)):
            s.add(Order(external_id=f"a{i}", contact_id=c.id, status="paid", amount=Decimal(100), refunded_amount=Decimal(0),
                        currency="EUR", placed_at=datetime(2026, 1, day, tzinfo=timezone.utc)))
        s.flush()
        order_stats.refresh(s, [c.id])
    with transaction(make_sessionmaker(engine)) as s:
        got = rfm.compute(s, now=now, thresholds={"recency": [3, 7, 30, 90], "frequency": [2, 3, 5, 10], "monetary": [100, 250, 500, 1000]})
    engine.dispose()
    assert got[c.id] == (4, 3, 3, "Potential loyalists")  # 6 days ago (<= 7); 3 orders; 300 spent
