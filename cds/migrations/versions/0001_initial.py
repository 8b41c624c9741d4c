"""served_cards (audit of every card returned) and feedback (idempotent, unknown cards flagged)

Revision ID: 0001
Revises:
Create Date: 2026-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "served_cards",
        sa.Column("card_uuid", sa.String(128), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(128), nullable=True),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("hook_instance", sa.String(128), nullable=False),
        sa.Column("patient_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("suggestion_uuids", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("card_uuid", name="pk_served_cards"),
    )
    op.create_index("ix_served_cards_created_at", "served_cards", ["created_at"])
    op.create_index(
        "ix_served_cards_service_rule_created_at", "served_cards", ["service", "rule", "created_at"]
    )
    op.create_table(
        "feedback",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("card_uuid", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_at", sa.DateTime(), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("override_system", sa.Text(), nullable=True),
        sa.Column("override_code", sa.Text(), nullable=True),
        sa.Column("override_display", sa.Text(), nullable=True),
        sa.Column("user_comment", sa.Text(), nullable=True),
        sa.Column("unknown_card", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("idempotency_key", name="uq_feedback_idempotency_key"),
    )
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("served_cards")
