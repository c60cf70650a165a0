from datetime import date, datetime, timezone

from kaskad.segments.dates import anniversary, date_due
from kaskad.store.engine import make_engine, make_sessionmaker, transaction
from kaskad.store.models import Contact


def test_feb_29_falls_on_feb_28_in_common_years():
    assert anniversary(date(2000, 2, 29), 2027) == date(2027, 2, 28)
    assert anniversary(date(2000, 2, 29), 2028) == date(2028, 2, 29)


def test_birthday_before_on_after_in_local_time_at_midnight(db_url):
    engine = make_engine(db_url)
    with transaction(make_sessionmaker(engine)) as s:
        tokyo = Contact(external_id="tokyo", timezone="Asia/Tokyo", attributes={"birthday": "1990-06-04"}, tags=[])
        ny = Contact(external_id="ny", timezone="America/New_York", attributes={"birthday": "1990-06-04"}, tags=[])
        newyear = Contact(external_id="ny2", attributes={"birthday": "1991-01-02"}, tags=[])
        none = Contact(external_id="none", attributes={}, tags=[])
        s.add_all([tokyo, ny, newyear, none])
    # 2026-06-03 15:30 UTC is 00:30 on June 4 in Tokyo, 11:30 on June 3 in New York
    now = datetime(2026, 6, 3, 15, 30, tzinfo=timezone.utc)
    with transaction(make_sessionmaker(engine)) as s:
        assert date_due(s, "birthday", 0, now) == [(tokyo.id, "birthday:0:2026")]
        assert date_due(s, "birthday", -1, now) == [(ny.id, "birthday:-1:2026")]  # the day before, local
        assert date_due(s, "birthday", -3, datetime(2026, 5, 31, 16, tzinfo=timezone.utc)) == [(tokyo.id, "birthday:-3:2026")]
        # 3 days before Jan 2, 2027 is Dec 30, 2026: the key names the birthday's year
        assert date_due(s, "birthday", -3, datetime(2026, 12, 30, 12, tzinfo=timezone.utc)) == [(newyear.id, "birthday:-3:2027")]
    engine.dispose()
