"""Tables of the audit trail and the feedback store (SQLAlchemy Core).

Times are naive UTC everywhere, so SQLite (no time zones) and PostgreSQL compare and bucket the same.
The Alembic migrations in `cds/migrations/versions` create exactly these tables; a test checks that
the migrated schema and this metadata agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = 128  # longest card/suggestion uuid or service id we accept (checked before insert)

# One row per card returned by a hook call. Patient ids are stored only as a keyed hash.
served_cards = sa.Table(
    "served_cards",
    metadata,
    sa.Column("card_uuid", sa.String(ID), primary_key=True),
    sa.Column("service", sa.String(ID), nullable=False),
    sa.Column("rule", sa.String(ID), nullable=True),
    sa.Column("indicator", sa.String(16), nullable=False),
    sa.Column("hook_instance", sa.String(ID), nullable=False),
    sa.Column("patient_hash", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("suggestion_uuids", sa.JSON(), nullable=False),
    # What the card offered (0002; null on older rows), so feedback can be read against it: its override
    # reasons [{system, code, display}], and per suggestion uuid the orders its create actions write
    # [{type, system, code}] (suppression: "until the chart shows the order").
    sa.Column("override_reasons", sa.JSON(), nullable=True),
    sa.Column("suggestion_orders", sa.JSON(), nullable=True),
    sa.Index(None, "created_at"),
    sa.Index(None, "service", "rule", "created_at"),
    sa.Index(None, "patient_hash", "rule"),  # the suppression lookup of a hook call
)

# One row per distinct feedback item. `idempotency_key` makes a re-posted item a no-op.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("idempotency_key", sa.String(64), nullable=False),
    sa.Column("service", sa.String(ID), nullable=False),
    sa.Column("card_uuid", sa.String(ID), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("outcome_at", sa.DateTime(), nullable=False),
    sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
    sa.Column("override_system", sa.Text(), nullable=True),
    sa.Column("override_code", sa.Text(), nullable=True),
    sa.Column("override_display", sa.Text(), nullable=True),
    sa.Column("user_comment", sa.Text(), nullable=True),
    # True when no served card had this uuid at receipt; cleared when the card's audit row lands later.
    sa.Column("unknown_card", sa.Boolean(), nullable=False),
    sa.Column("received_at", sa.DateTime(), nullable=False),
    sa.UniqueConstraint("idempotency_key"),
    sa.Index(None, "card_uuid"),
    sa.Index(None, "received_at"),
)

# One row per card a rule produced but the service withheld, because feedback on an earlier card of the same
# rule and patient silences it (cds.suppression). Counted as "suppressed" by `cds report` and /analytics.
suppressed_cards = sa.Table(
    "suppressed_cards",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("service", sa.String(ID), nullable=False),
    sa.Column("rule", sa.String(ID), nullable=False),
    sa.Column("indicator", sa.String(16), nullable=False),
    sa.Column("hook_instance", sa.String(ID), nullable=False),
    sa.Column("patient_hash", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    # "overridden:<reason code>" or "accepted": the feedback that silences the rule, on card `by_card`.
    sa.Column("cause", sa.String(2 * ID), nullable=False),
    sa.Column("by_card", sa.String(ID), nullable=False),
    sa.Column("until", sa.DateTime(), nullable=False),
    sa.Index(None, "created_at"),
    sa.Index(None, "service", "rule", "created_at"),
)
