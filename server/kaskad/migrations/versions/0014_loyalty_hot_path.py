"""loyalty: no foreign keys to contacts, lots, codes or reservations on the rows a redeem writes

Revision ID: 0014_loyalty_hot_path
Revises: 0006_loyalty

A redeem inserts a reservation, an operation, ledger entries and code uses. Their
foreign keys each ran a lookup that also locks the referenced row (``FOR KEY SHARE``,
written to the WAL): up to eight per redeem, a shared promo code's row locked by every
checkout at once, much of PostgreSQL's time per redeem. Every value they
checked comes from a row the same transaction has just locked, updated or inserted
(the account, the lots, the codes, the reservation), and contacts are never deleted
(erasure keeps the row), so they only cost. The account, lot and code rows keep theirs,
and so does the entry's operation (queries join entries to their operation).
"""
from __future__ import annotations

from alembic import op

revision = "0014_loyalty_hot_path"
down_revision = "0006_loyalty"
branch_labels = None
depends_on = None

#: (table, column, referenced table)
DROPPED = [
    ("loyalty_reservations", "contact_id", "contacts"),
    ("loyalty_operations", "contact_id", "contacts"),
    ("loyalty_entries", "contact_id", "contacts"),
    ("loyalty_entries", "lot_id", "loyalty_lots"),
    ("loyalty_code_uses", "code_id", "loyalty_codes"),
    ("loyalty_code_uses", "contact_id", "contacts"),
    ("loyalty_code_uses", "reservation_id", "loyalty_reservations"),
]


def upgrade() -> None:
    for table in dict.fromkeys(t for t, _, _ in DROPPED):
        with op.batch_alter_table(table) as batch:
            for _, column, target in (d for d in DROPPED if d[0] == table):
                batch.drop_constraint(f"fk_{table}_{column}_{target}", type_="foreignkey")


def downgrade() -> None:
    for table in dict.fromkeys(t for t, _, _ in DROPPED):
        with op.batch_alter_table(table) as batch:
            for _, column, target in (d for d in DROPPED if d[0] == table):
                batch.create_foreign_key(f"fk_{table}_{column}_{target}", target, [column], ["id"], ondelete="CASCADE")
