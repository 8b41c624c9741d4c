"""The `cds` command: serve, print discovery, or evaluate one hook request offline.

The engine's command line knows no services: `main(argv, services=...)` is given the factory that
builds them (and any extra sub-commands), by the composition root `hooks.app`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from werkzeug.serving import WSGIRequestHandler, run_simple

from cds.app import create_app
from cds.config import Settings, StartupError
from cds.logs import log
from cds.registry import Registry, Service
from cds.request import HookError
from cds.store import close_all
from cds.store.commands import add_commands

ServicesFactory = Callable[[Settings], list[Service]]
# A sub-command contributed by the caller: registers itself on the sub-parsers, sets `func`.
CommandInstaller = Callable[[Any, Callable[..., Settings]], None]


class AccessLogHandler(WSGIRequestHandler):
    """werkzeug's access line is free text with ANSI colours; ours is a JSON line like every other.

    The path is logged without its query string, which may carry search parameters.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = getattr(self, "path", "").split("?", 1)[0]
        log(
            logging.getLogger("cds.http"),
            logging.INFO,
            "http.access",
            method=getattr(self, "command", None),
            path=path[:200],
            status=int(code) if str(code).isdigit() else str(code),
            bytes=int(size) if str(size).isdigit() else None,
        )

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.ERROR if type == "error" else logging.INFO
        log(
            logging.getLogger("cds.http"), level, "http.server", message=(message % args if args else message)
        )


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    return Settings.load(getattr(args, "config", None), **overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    settings = _settings(args, **overrides)
    try:
        app = create_app(settings, args.services(settings))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # SIGTERM is a graceful stop: unwind run_simple, then flush the queued card audit before exiting.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        run_simple(
            settings.host,
            settings.port,
            app,
            threaded=True,
            use_reloader=False,
            request_handler=AccessLogHandler,
        )
    finally:
        close_all()
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    print(json.dumps(Registry(args.services(_settings(args))).discovery(), indent=2))
    return 0


def _render_text(service_id: str, body: dict[str, Any]) -> str:
    lines = [f"== {service_id}: {len(body['cards'])} card(s)"]
    for card in body["cards"]:
        topic = card["source"].get("topic", {}).get("code", "-")
        lines.append(f"[{card['indicator'].upper()}] {card['summary']}  (rule {topic})")
        for detail_line in card.get("detail", "").splitlines():
            lines.append(f"    {detail_line}")
        for s in card.get("suggestions", []):
            star = "*" if s.get("isRecommended") else "-"
            lines.append(f"  {star} suggestion: {s['label']}")
        source = card["source"]
        lines.append(f"  source: {source['label']}" + (f" <{source['url']}>" if source.get("url") else ""))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    try:
        body = json.loads(Path(args.request).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.request}: {exc}", file=sys.stderr)
        return 2
    overrides: dict[str, Any] = {"log_level": "WARNING", "log_to_stderr": True}
    if args.now:
        overrides["clock"] = datetime.fromisoformat(args.now)
    # Offline: keep the audit in memory and write no key file (there is nothing to correlate).
    overrides.setdefault("database_url", "sqlite://")
    settings = _settings(args, **overrides)
    settings.hash_key = settings.hash_key or secrets.token_hex(32)
    app = create_app(settings, args.services(settings))
    state = app.extensions["cds"]
    if args.service:
        chosen = [state.registry.get(args.service)]
        if chosen[0] is None:
            print(f"error: unknown service {args.service}", file=sys.stderr)
            return 2
    else:
        hook = body.get("hook") if isinstance(body, dict) else None
        chosen = [s for s in state.registry if s.hook == hook]
        if not chosen:
            print(f"error: no service handles hook {hook!r}; use --service", file=sys.stderr)
            return 2
    results: dict[str, Any] = {}
    for service in chosen:
        try:
            results[service.id] = state.engine.evaluate(service, body).body
        except HookError as err:
            print(f"error: {service.id}: HTTP {err.status}: {err.message}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(results[chosen[0].id] if len(chosen) == 1 else results, indent=2))
    else:
        print("\n\n".join(_render_text(sid, res) for sid, res in results.items()))
    return 0


def main(
    argv: list[str] | None = None,
    *,
    services: ServicesFactory,
    commands: Iterable[CommandInstaller] = (),
) -> int:
    """Run the `cds` command with the services that `services(settings)` declares."""
    parser = argparse.ArgumentParser(prog="cds", description="spine-cds: CDS Hooks 2.0 service")
    parser.add_argument("--config", help="YAML or JSON config file (env CDS_* variables win over it)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service (dev profile defaults: 127.0.0.1:8080)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    discovery = sub.add_parser("services", help="print the discovery document")
    discovery.set_defaults(func=cmd_services)

    evaluate = sub.add_parser("evaluate", help="run one hook request offline and print the cards")
    evaluate.add_argument("request", help="hook request JSON file")
    evaluate.add_argument("--service", help="service id (default: every service for the request's hook)")
    evaluate.add_argument("--json", action="store_true", help="print the exact CDS Hooks response JSON")
    evaluate.add_argument("--now", help="evaluate as of this date/time (ISO 8601), for replaying fixtures")
    evaluate.set_defaults(func=cmd_evaluate)

    add_commands(sub, _settings)  # db upgrade, db prune, report
    for install in commands:
        install(sub, _settings)

    args = parser.parse_args(argv)
    args.services = services
    try:
        return int(args.func(args))
    except StartupError as exc:  # a configuration or knowledge file to fix: say what, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `cds evaluate ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
