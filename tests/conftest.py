"""Pytest fixtures: an app with the test-only services, and its client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cds.app import create_app
from tests.builders import make_test_services, settings


@pytest.fixture
def app():
    return create_app(settings(), services=make_test_services())


@pytest.fixture
def client(app) -> Iterator[Any]:
    with app.test_client() as c:
        yield c
