"""Pytest fixtures: an app with the test-only services, and its client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cds.app import create_app
from tests.builders import make_test_services, settings
from tests.dbsupport import db_url, pg_url, store  # noqa: F401  (SQLite + PostgreSQL store fixtures)


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_dir(tmp_path_factory) -> Iterator[None]:
    """Apps built by tests keep their SQLite store and hash key in a temp dir, not the repository's data/."""
    patch = pytest.MonkeyPatch()
    patch.setenv("CDS_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    yield
    patch.undo()


@pytest.fixture
def app():
    return create_app(settings(), services=make_test_services())


@pytest.fixture
def client(app) -> Iterator[Any]:
    with app.test_client() as c:
        yield c
