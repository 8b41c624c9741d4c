"""served_cards keep what each card offered (override reasons, ordered codes); suppressed_cards

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("served_cards") as batch:
        batch.add_column(sa.Column("override_reasons", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("suggestion_orders", sa.JSON(), nullable=True))
    op.create_index("ix_served_cards_patient_hash_rule", "served_cards", ["patient_hash", "rule"])
    op.create_table(
        "suppressed_cards",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("patient_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("cause", sa.String(256), nullable=False),
        sa.Column("by_card", sa.String(128), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_suppressed_cards"),
    )
    op.create_index("ix_suppressed_cards_created_at", "suppressed_cards", ["created_at"])
    op.create_index(
        "ix_suppressed_cards_service_rule_created_at", "suppressed_cards", ["service", "rule", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("suppressed_cards")
    op.drop_index("ix_served_cards_patient_hash_rule", "served_cards")
    with op.batch_alter_table("served_cards") as batch:
        batch.drop_column("suggestion_orders")
        batch.drop_column("override_reasons")
