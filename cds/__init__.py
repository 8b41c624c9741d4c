"""spine-cds engine: the CDS Hooks 2.0 protocol, with no medical knowledge of its own.

It never imports the clinical package: `cds.app.create_app(settings, services)` is handed the services
to serve, and `hooks.app` (the composition root) is where gunicorn and the `cds` command start.
"""
