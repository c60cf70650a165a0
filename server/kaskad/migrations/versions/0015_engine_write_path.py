"""engine write path: fewer index entries and no foreign-key checks per node step

- ``ix_runs_due`` holds live runs only (active, waiting, claimed): a finished run's last
  update writes no entry, and the index stays the size of the work in flight instead of
  growing with every run ever made.
- ``run_steps.run_id`` and ``outbox.run_id`` lose their foreign keys: the engine writes both
  in the transaction that moves the run, and runs are never deleted. Each checked key cost a
  lookup and a row lock on journey_runs per step and per message.
- ``ix_run_steps_flow_version_id`` and ``ix_outbox_status`` are dropped: no query reads them.

Revision ID: 0015_engine_write_path
Revises: 0010_engine
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_engine_write_path"
down_revision = "0010_engine"
branch_labels = None
depends_on = None

LIVE_RUN = "status IN ('active', 'waiting', 'claimed')"


def upgrade() -> None:
    op.drop_index("ix_runs_due", table_name="journey_runs")
    op.create_index("ix_runs_due", "journey_runs", ["status", "wake_at"],
                    postgresql_where=sa.text(LIVE_RUN), sqlite_where=sa.text(LIVE_RUN))
    with op.batch_alter_table("run_steps") as batch:
        batch.drop_constraint("fk_run_steps_run_id_journey_runs", type_="foreignkey")
        batch.drop_index("ix_run_steps_flow_version_id")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint("fk_outbox_run_id_journey_runs", type_="foreignkey")
        batch.drop_index("ix_outbox_status")


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.create_index("ix_outbox_status", ["status", "created_at"])
        batch.create_foreign_key("fk_outbox_run_id_journey_runs", "journey_runs", ["run_id"], ["id"], ondelete="SET NULL")
    with op.batch_alter_table("run_steps") as batch:
        batch.create_index("ix_run_steps_flow_version_id", ["flow_version_id"])
        batch.create_foreign_key("fk_run_steps_run_id_journey_runs", "journey_runs", ["run_id"], ["id"], ondelete="CASCADE")
    op.drop_index("ix_runs_due", table_name="journey_runs")
    op.create_index("ix_runs_due", "journey_runs", ["status", "wake_at"])
