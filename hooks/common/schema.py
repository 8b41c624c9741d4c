"""Typed knowledge files: every YAML file is read through a pydantic model that rejects unknown and
missing keys and names the file and the key at fault.

Why: a site edits its copy of these files (CDS_KNOWLEDGE_DIR). A typo must stop `cds serve` at start-up
with a message a CDS analyst can act on ("red_flags.yaml: findings.2.patern: unknown key"), never become
a KeyError in the middle of a clinician's hook call. Regular expressions are compiled when loaded, for the
same reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from cds.config import StartupError

# Knowledge files are addressed relative to the `hooks` package: shared ones under `knowledge/`, a
# service's own beside its rules (`l5_radiculopathy/cards.yaml`). A site copy (CDS_KNOWLEDGE_DIR) mirrors
# that layout; a file the copy does not hold is read from the shipped package.
SHIPPED = Path(__file__).resolve().parent.parent


class KnowledgeError(StartupError):
    """A knowledge file that does not match its model: names the file and every key at fault. It is a
    start-up error: `cds serve` and gunicorn refuse to start rather than fail a clinician's hook call."""


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from exc
    return pattern


#: A Python regular expression, matched case-insensitively; checked when the file is loaded.
Regex = Annotated[str, AfterValidator(_compiles)]


class Strict(BaseModel):
    """A block of a knowledge file: unknown keys are refused (a typo is an error, not a silent default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class KnowledgeFile(Strict):
    """Every knowledge file states its version (shown in /readyz) and where its content comes from."""

    version: str
    source: str | list[str]


M = TypeVar("M", bound=KnowledgeFile)


def locate(relpath: str, site_dir: Path | None = None) -> Path:
    """The site's copy of a knowledge file when it has one, else the shipped file."""
    if site_dir is not None and (site_dir / relpath).is_file():
        return site_dir / relpath
    return SHIPPED / relpath


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"{path}: cannot read: {exc}") from exc


def describe(path: Path, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{where}: {message}")
    return (
        f"{path}: "
        + "; ".join(problems[:10])
        + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
    )


def load_model(model: type[M], relpath: str, site_dir: Path | None = None) -> M:
    """Read `relpath` (site copy first) into `model`, or raise KnowledgeError naming file and keys."""
    path = locate(relpath, site_dir)
    data = read_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise KnowledgeError(describe(path, exc)) from exc


def compile_any(patterns: list[str] | tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive alternation of knowledge-file patterns (None when the list is empty)."""
    parts = [p for p in patterns if p]
    return re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE) if parts else None
