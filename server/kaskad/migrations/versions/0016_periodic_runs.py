"""periodic_runs: when each periodic job last ran

A scheduler that starts (a deploy, a failover to another leader) reads it and runs a job
only once its interval has passed since that run, instead of running every hourly and
daily job again at once.

Revision ID: 0016_periodic_runs
Revises: 0015_engine_write_path
"""
from __future__ import annotations

import advanced_alchemy.types.datetime
import sqlalchemy as sa
from alembic import op

revision = "0016_periodic_runs"
down_revision = "0015_engine_write_path"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "periodic_runs",
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("started_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_periodic_runs"),
    )


def downgrade() -> None:
    op.drop_table("periodic_runs")
