"""`cds knowledge check [DIR]`: validate a site's copy of the knowledge files before deploying it.

Every file in DIR is checked against its model (unknown files are reported too: a misspelled file name is
a copy the service would silently ignore), and what differs from the shipped version is printed key by
key, so a CDS committee can review exactly what the site changed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from hooks.common.schema import SHIPPED, KnowledgeError, KnowledgeFile, load_model, read_yaml

FileModels = Mapping[str, type[KnowledgeFile]]


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}.{i}")
    else:
        yield prefix, value


def differences(site: Any, shipped: Any) -> list[str]:
    mine, theirs = dict(_flatten(site)), dict(_flatten(shipped))
    out = []
    for key in sorted(set(mine) | set(theirs)):
        if key not in theirs:
            out.append(f"  + {key}: {mine[key]!r}")
        elif key not in mine:
            out.append(f"  - {key} (shipped: {theirs[key]!r})")
        elif mine[key] != theirs[key]:
            out.append(f"  ~ {key}: {theirs[key]!r} -> {mine[key]!r}")
    return out


def check(site_dir: Path, files: FileModels, write: Callable[[str], None] = print) -> int:
    """0 when every file of the site's copy is valid (differences are listed), 1 otherwise."""
    problems = 0
    known = set(files)
    for path in sorted(site_dir.rglob("*.yaml")):
        relpath = path.relative_to(site_dir).as_posix()
        if relpath not in known:
            expected = ", ".join(sorted(known))
            write(f"{relpath}: not a knowledge file of this service (expected one of: {expected})")
            problems += 1
            continue
        try:
            load_model(files[relpath], relpath, site_dir)
        except KnowledgeError as exc:
            write(f"INVALID {exc}")
            problems += 1
            continue
        changed = differences(read_yaml(path), read_yaml(SHIPPED / relpath))
        write(
            f"{relpath}: valid, {len(changed)} difference(s) from the shipped file" + (":" if changed else "")
        )
        for line in changed:
            write(line)
    for relpath in sorted(known):
        if not (site_dir / relpath).is_file():
            write(f"{relpath}: not in {site_dir}; the shipped file is used")
    return 1 if problems else 0


def installer(files: Callable[[], FileModels]) -> Callable[[Any, Any], None]:
    """The `knowledge check` sub-command for the `cds` command line (given by the composition root)."""

    def install(sub: Any, _load_settings: Any) -> None:
        knowledge = sub.add_parser("knowledge", help="check a site's copy of the knowledge files")
        actions = knowledge.add_subparsers(dest="knowledge_command", required=True)
        cmd = actions.add_parser("check", help="validate DIR and print what differs from the shipped files")
        cmd.add_argument("dir", nargs="?", type=Path, help="the site's copy (default: the shipped files)")

        def run(args: argparse.Namespace) -> int:
            site = args.dir or SHIPPED
            if not site.is_dir():
                print(f"error: {site} is not a directory", file=sys.stderr)
                return 2
            return check(site, files())

        cmd.set_defaults(func=run)

    return install
