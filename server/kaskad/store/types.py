"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, BigInteger, Integer, Numeric
from sqlalchemy.dialects.postgresql import JSONB

#: Auto-incrementing 64-bit key (SQLite only auto-increments INTEGER PRIMARY KEY).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
#: JSON stored as JSONB on PostgreSQL (indexable), JSON text on SQLite.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")
#: Timezone-aware UTC timestamps on both backends.
UTCDateTime = DateTimeUTC(timezone=True)
#: Money: exact decimals, never floats.
Money = Numeric(18, 4, asdecimal=True)

__all__ = ["BigIntPK", "JSONDoc", "UTCDateTime", "Money"]
