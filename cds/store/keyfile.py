"""A secret generated once and kept in a 0600 file, safe when several workers start at the same time."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path


def load_or_create_key(path: Path) -> str:
    """Read the key at `path`, or create it atomically (write a temp file, then link it into place).

    `os.link` fails if the file exists, so two processes racing here agree on one key, and a reader
    never sees a half-written file.
    """
    for _ in range(50):
        try:
            key = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            key = ""
        if key:
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                time.sleep(0.01)  # another process won the race; read its key on the next pass
        finally:
            tmp.unlink(missing_ok=True)
    raise RuntimeError(f"cannot read or create the hash key file {path}")
