"""Benchmark-only WSGI app: the production app plus a bare baseline endpoint. Never deployed.

`POST /bench/baseline` decodes the same JSON body a hook call gets and returns `{"cards": []}`, on
the same server, workers and Flask stack (CORS, body limit, error handlers, metrics hooks). The
difference between it and a hook call is what our pipeline costs: validation, parsing, rules.

gunicorn -c deploy/gunicorn.conf.py 'benchmarks.bench_app:create()'
"""

from __future__ import annotations

import json

from flask import Flask, jsonify, request

from cds.app import create_app


def create() -> Flask:
    app = create_app()

    @app.post("/bench/baseline")
    def baseline():
        json.loads(request.get_data(cache=False))
        return jsonify({"cards": []})

    return app
