"""Feedback and card-audit storage (SQLite or PostgreSQL through SQLAlchemy, schema by Alembic).

- `core.Store`: record served cards (queued, batched, flushed on shutdown) and feedback (synchronous).
- `report`: acceptance/override statistics for `cds report` and `GET /analytics`.
- `db`: engines, pragmas and migrations; `writer`: the background audit writer.
"""

from cds.store.core import FeedbackResult, Store, close_all, feedback_key

__all__ = ["FeedbackResult", "Store", "close_all", "feedback_key"]
