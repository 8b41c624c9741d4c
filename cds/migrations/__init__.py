"""Alembic migrations of the feedback and audit store (run by `create_app` and `cds db upgrade`)."""
