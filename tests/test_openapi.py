"""openapi.yaml is a valid OpenAPI 3 document that covers every endpoint the app serves."""

from __future__ import annotations

import re

import yaml
from openapi_spec_validator import validate

from hooks.app import create_app as production_app
from tests.builders import settings


def test_openapi_is_valid_and_served(client):
    response = client.get("/openapi.yaml")
    assert response.status_code == 200 and response.mimetype == "application/yaml"
    spec = yaml.safe_load(response.get_data(as_text=True))
    validate(spec)
    assert spec["components"]["schemas"]["Card"]["properties"]["summary"]["maxLength"] == 139


def test_every_route_is_documented():
    app = production_app(settings())
    spec = yaml.safe_load(app.test_client().get("/openapi.yaml").get_data(as_text=True))
    shape = {re.sub(r"\{[^}]+\}", "{}", p): p for p in spec["paths"]}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/static"):
            continue
        path = shape.get(re.sub(r"<[^>]+>", "{}", rule.rule))
        assert path is not None, f"{rule.rule} is served but not in openapi.yaml"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], f"{method} {rule.rule} is not documented"
