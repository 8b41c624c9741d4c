"""The composition root: which clinical services this deployment serves, wired to the engine.

gunicorn (`hooks.app:create_app()`), `cds serve`, `cds services` and `cds evaluate` all start here. The
engine (`cds`) never imports this package; it is handed the services. Adding a service is one folder
under `hooks/` with a `declare(context)` function, plus one entry in `SERVICE_PACKAGES`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from flask import Flask

from cds import app as engine_app
from cds import cli
from cds.config import Settings
from cds.registry import Service
from hooks.common.context import SHARED_KNOWLEDGE, ClinicalContext
from hooks.common.knowledge_check import FileModels, installer
from hooks.common.schema import KnowledgeError

SERVICE_PACKAGES = ("hooks.l5_radiculopathy", "hooks.emg_necessity")


def service_modules(packages: Iterable[str | ModuleType]) -> list[ModuleType]:
    return [importlib.import_module(p) if isinstance(p, str) else p for p in packages]


def services(settings: Settings, packages: Iterable[str | ModuleType] = SERVICE_PACKAGES) -> list[Service]:
    """Every service of `packages`, with the knowledge files loaded, checked and compiled once."""
    if settings.knowledge_dir is not None:
        _refuse_stray_files(settings.knowledge_dir, knowledge_files(packages))
    context = ClinicalContext.load(settings.knowledge_dir)
    out: list[Service] = []
    for module in service_modules(packages):
        out.extend(module.declare(context))
    versions = dict(sorted(context.versions.items()))
    return [replace(s, knowledge=versions) for s in out]


def _refuse_stray_files(site_dir: Path, files: FileModels) -> None:
    """A site file at the wrong path would be ignored in silence and the shipped one used: refuse to start."""
    if not site_dir.is_dir():
        raise KnowledgeError(f"CDS_KNOWLEDGE_DIR {site_dir} is not a directory")
    stray = sorted(
        p.relative_to(site_dir).as_posix()
        for p in site_dir.rglob("*")
        if p.suffix in (".yaml", ".yml") and p.relative_to(site_dir).as_posix() not in files
    )
    if stray:
        raise KnowledgeError(
            f"CDS_KNOWLEDGE_DIR {site_dir} holds {', '.join(stray)}, which no service reads: the copy "
            f"mirrors hooks/ ({', '.join(sorted(files))}); check it with `cds knowledge check {site_dir}`"
        )


def knowledge_files(packages: Iterable[str | ModuleType] = SERVICE_PACKAGES) -> FileModels:
    """Every knowledge file this deployment reads, with the model that checks it."""
    files = dict(SHARED_KNOWLEDGE)
    for module in service_modules(packages):
        files.update(module.KNOWLEDGE)
    return files


def create_app(settings: Settings | None = None) -> Flask:
    """The production app (gunicorn: `hooks.app:create_app()`)."""
    settings = settings or Settings.load()
    return engine_app.create_app(settings, services(settings))


def main(argv: list[str] | None = None) -> int:
    """The `cds` command (with `cds knowledge check` for a site's copy of the knowledge files)."""
    return cli.main(argv, services=services, commands=[installer(knowledge_files)])


if __name__ == "__main__":
    sys.exit(main())
