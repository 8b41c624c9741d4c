"""Card uuids that prove they were issued by this service, so feedback can tell a served card at once.

Why: feedback used to call a card "unknown" unless its audit row was already committed or queued in the
same process. Under load the row is usually still in another worker's (or pod's) audit queue when the
EHR posts feedback: 38% of posts were reported unknown (issue 12). A card uuid here is a random UUIDv4
whose last 62 bits are an HMAC of its first 58, keyed by CDS_HASH_KEY (one Secret for every pod). Any
worker can verify it without the database; a uuid that does not verify (a card served before this scheme,
another key, or made up) is looked up in the audit as before.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid


class CardIds:
    def __init__(self, key: str) -> None:
        self._key = hashlib.sha256(b"spine-cds card uuid|" + key.encode()).digest()

    def _mac(self, head: bytes) -> bytes:
        return hmac.new(self._key, head, hashlib.sha256).digest()[:8]

    def new(self) -> str:
        head = bytearray(os.urandom(8))
        head[6] = (head[6] & 0x0F) | 0x40  # version 4
        tail = bytearray(self._mac(bytes(head)))
        tail[0] = (tail[0] & 0x3F) | 0x80  # RFC 4122 variant
        return str(uuid.UUID(bytes=bytes(head + tail)))

    def issued(self, value: str) -> bool:
        """Was `value` made by `new()` with this key?"""
        try:
            raw = uuid.UUID(value).bytes
        except (ValueError, TypeError, AttributeError):
            return False
        expected = bytearray(self._mac(raw[:8]))
        expected[0] = (expected[0] & 0x3F) | 0x80
        return hmac.compare_digest(bytes(expected), raw[8:])
