"""`cds db upgrade`, `cds db prune --older-than DAYS` and `cds report [--since DATE] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cds.config import Settings
from cds.store import db, report
from cds.store.core import Store

SettingsLoader = Callable[..., Settings]


def _open(settings: Settings) -> Any:
    return Store.from_settings(settings)


def cmd_db_upgrade(args: argparse.Namespace, load: SettingsLoader) -> int:
    store = _open(load(args))
    try:
        revision = db.current_revision(store.engine)
        print(f"database {store.engine.url.render_as_string(hide_password=True)} is at revision {revision}")
    finally:
        store.close()
    return 0


def cmd_db_prune(args: argparse.Namespace, load: SettingsLoader) -> int:
    if args.older_than < 0:
        print("error: --older-than must be zero or more days", file=sys.stderr)
        return 2
    store = _open(load(args))
    try:
        deleted = store.prune(args.older_than)
    finally:
        store.close()
    print(
        f"deleted {deleted['served_cards']} served card(s) and {deleted['feedback']} feedback item(s)"
        f" older than {args.older_than:g} day(s)"
    )
    return 0


def _parse_since(text: str | None) -> datetime | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def render_table(stats: list[Any], unknown: int) -> str:
    header = [
        "service",
        "rule",
        "shown",
        "accepted",
        "overridden",
        "acceptance",
        "suppressed",
        "top override reasons",
    ]
    rows = [
        [
            s.service,
            s.rule or "(none)",
            str(s.shown),
            str(s.accepted),
            str(s.overridden),
            f"{s.acceptance_rate * 100:.1f}%",
            str(s.suppressed),
            ", ".join(f"{code} ({n})" for code, n in list(s.override_reasons.items())[:3]) or "-",
        ]
        for s in stats
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    right = {2, 3, 4, 5, 6}

    def fmt(row: list[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=False))
        ]
        return "  ".join([*cells, row[-1]]).rstrip()

    lines = [fmt(header), *(fmt(r) for r in rows)] if rows else ["no cards served in this period"]
    if unknown:
        lines.append(f"feedback items for cards never served (flagged): {unknown}")
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace, load: SettingsLoader) -> int:
    try:
        since = _parse_since(args.since)
    except (ValueError, OverflowError):
        print(f"error: --since {args.since!r} is not a date such as 2026-01-01", file=sys.stderr)
        return 2
    store = _open(load(args, log_level="WARNING", log_to_stderr=True))
    try:
        with store.read() as conn:
            stats = report.rule_stats(conn, since)
            unknown = report.volumes(conn, since)["unknown_card_feedback"]
    finally:
        store.close()
    if args.json:
        print(json.dumps([s.to_json() for s in stats], indent=2))
    else:
        print(render_table(stats, unknown))
    return 0


def add_commands(sub: Any, load: SettingsLoader) -> None:
    """Register the store's subcommands on the `cds` parser; `load(args, **overrides)` builds Settings."""
    database = sub.add_parser("db", help="feedback and audit database: migrations and retention")
    db_sub = database.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply the Alembic migrations (also done at start-up)")
    upgrade.set_defaults(func=lambda a: cmd_db_upgrade(a, load))
    prune = db_sub.add_parser("prune", help="delete served cards and feedback older than DAYS")
    prune.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    prune.set_defaults(func=lambda a: cmd_db_prune(a, load))

    rep = sub.add_parser("report", help="acceptance and override statistics per service and rule")
    rep.add_argument("--since", help="only cards served on or after this date (ISO 8601, UTC)")
    rep.add_argument("--json", action="store_true", help="a JSON list of {service, rule, shown, ...}")
    rep.set_defaults(func=lambda a: cmd_report(a, load))
