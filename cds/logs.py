"""JSON-lines logging on stdout, with patient ids hashed and tokens scrubbed.

Log records carry structured fields in `extra={"fields": {...}}`. Patient identifiers are only ever
logged through `IdHasher` (keyed HMAC), and a last-line-of-defence scrubber masks anything that
looks like a bearer token or JWT in case a message ever interpolates one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import sys
import time
from typing import Any

_SECRETS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(r"eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),  # JWT
    re.compile(r'(?i)("?access_token"?\s*[:=]\s*"?)[^",\s}]+'),
]


# Terminal colour codes (werkzeug colours its start-up and access lines): a JSON log line is read by
# machines, and an escape sequence in it is noise at best.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return _ANSI.sub("", value) if "\x1b" in value else value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def scrub(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[REDACTED]", text)
    return text


class IdHasher:
    """Keyed hash so logs can correlate a patient across calls without revealing who it is."""

    def __init__(self, key: str | None) -> None:
        self._key = (key or secrets.token_hex(32)).encode()

    def __call__(self, value: str | None) -> str | None:
        if not value:
            return None
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:16]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
        return scrub(json.dumps(_plain(entry), default=str, separators=(",", ":")))


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout (or sys.stderr) is at emit time, so redirection and test capture work.

    The offline `cds evaluate` sends logs to stderr so that its stdout is exactly the response JSON.
    """

    def __init__(self, to_stderr: bool = False) -> None:
        self.to_stderr = to_stderr
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr if self.to_stderr else sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; we always follow sys.stdout
        pass


def configure(level: str = "INFO", to_stderr: bool = False) -> None:
    """Route our loggers (and Flask/werkzeug's) to stdout as JSON lines. Idempotent."""
    handler = StdoutHandler(to_stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("cds", "hooks", "werkzeug"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    # Third-party chatter (medspaCy/spaCy debug output, urllib3 URLs with query strings) stays quiet.
    for noisy in ("urllib3", "medspacy", "spacy", "PyRuSH"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pypdf warns about each PDF defect it repairs; an unreadable report is logged once (evidence_unreadable).
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)


def log(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    logger.log(level, event, extra={"fields": fields})
