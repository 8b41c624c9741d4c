"""Benchmark-only WSGI app: the production app plus a bare baseline endpoint. Never deployed.

`POST /bench/baseline` reads the body and decodes it with the standard library's `json.loads`, then
returns `{"cards": []}`, on the same server, workers and Flask stack (CORS, body limit, error handlers,
metrics hooks). It is the issue's yardstick ("a bare Flask endpoint that decodes the same body with the
stdlib"), so it stays `json.loads` whatever decoder the hook endpoint uses: a faster decoder in the
service is part of what the ratio measures.

gunicorn -c deploy/gunicorn.conf.py 'benchmarks.bench_app:create()'
"""

from __future__ import annotations

import json

from flask import Flask, jsonify, request

from cds.config import Settings
from hooks.app import create_app as production_app


def create(settings: Settings | None = None) -> Flask:
    app = production_app(settings)

    @app.post("/bench/baseline")
    def baseline():
        json.loads(request.get_data(cache=False))  # the stdlib decoder, nothing else
        return jsonify({"cards": []})

    return app
