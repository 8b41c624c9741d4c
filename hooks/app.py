"""The composition root: which clinical services this deployment serves, wired to the engine.

gunicorn (`hooks.app:create_app()`), `cds serve`, `cds services` and `cds evaluate` all start here. The
engine (`cds`) never imports this package; it is handed the services. Adding a service is one folder
under `hooks/` with a `declare(context)` function, plus one entry in `SERVICE_PACKAGES`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from types import ModuleType

from flask import Flask

from cds import app as engine_app
from cds import cli
from cds.config import Settings
from cds.registry import Service
from hooks.common.context import ClinicalContext

SERVICE_PACKAGES = ("hooks.l5_radiculopathy", "hooks.emg_necessity")


def services(settings: Settings, packages: Iterable[str | ModuleType] = SERVICE_PACKAGES) -> list[Service]:
    """Every service of `packages`, with the knowledge files loaded and compiled once."""
    context = ClinicalContext.load(settings.knowledge_dir)
    out: list[Service] = []
    for package in packages:
        module = importlib.import_module(package) if isinstance(package, str) else package
        out.extend(module.declare(context))
    return out


def create_app(settings: Settings | None = None) -> Flask:
    """The production app (gunicorn: `hooks.app:create_app()`)."""
    settings = settings or Settings.load()
    return engine_app.create_app(settings, services(settings))


def main(argv: list[str] | None = None) -> int:
    """The `cds` command."""
    return cli.main(argv, services=services)


if __name__ == "__main__":
    sys.exit(main())
