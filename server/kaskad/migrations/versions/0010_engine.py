"""journey engine: run claim tokens and node counters

Revision ID: 0010_engine
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import advanced_alchemy.types.datetime  # noqa: F401

revision = "0010_engine"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("journey_runs") as batch:
        batch.add_column(sa.Column("claim", sa.BigInteger(), nullable=True))
    op.create_table(
        "node_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("flow_version_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=120), nullable=False),
        sa.Column("port", sa.String(length=80), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_counts")),
    )
    op.create_index("ix_node_counts_version_node", "node_counts", ["flow_version_id", "node_id"])


def downgrade() -> None:
    op.drop_index("ix_node_counts_version_node", table_name="node_counts")
    op.drop_table("node_counts")
    with op.batch_alter_table("journey_runs") as batch:
        batch.drop_column("claim")
