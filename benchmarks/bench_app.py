"""Benchmark-only WSGI app: the production app plus a bare baseline endpoint. Never deployed.

`POST /bench/baseline` decodes the same JSON body a hook call gets, with the same function
(`cds.routes.json_body`), and returns `{"cards": []}`, on the same server, workers and Flask stack
(CORS, body limit, error handlers, metrics hooks). The difference between it and a hook call is what
our pipeline costs: validation, parsing, rules.

gunicorn -c deploy/gunicorn.conf.py 'benchmarks.bench_app:create()'
"""

from __future__ import annotations

from flask import Flask, jsonify

from cds.routes import json_body
from hooks.app import create_app as production_app


def create() -> Flask:
    app = production_app()

    @app.post("/bench/baseline")
    def baseline():
        json_body()  # the hook endpoint's own decoding (content type, size, GC pause for large bodies)
        return jsonify({"cards": []})

    return app
