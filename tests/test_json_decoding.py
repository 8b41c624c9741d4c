"""The hook body decoder (msgspec, issue 16) answers exactly what the standard library's `json.loads` answers.

`cds.web.decode` must give equal values of equal types for every body both accept, refuse every body the
standard library refuses, and word each refusal the same (its fallback is the standard library itself).
Checked on generated JSON values, on their encodings mangled byte by byte, and on known edge cases.
"""

from __future__ import annotations

import json
import math
import os
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds.request import HookError
from cds.web import bad_string, decode, stdlib_decode

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
PROPERTY = settings(
    max_examples=EXAMPLES, deadline=timedelta(seconds=5), derandomize="FUZZ_EXAMPLES" not in os.environ
)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types (1 == 1.0 and 0.0 == -0.0 in Python; not here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return math.copysign(1.0, a) == math.copysign(1.0, b) and (a == b or (a != a and b != b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def outcome(decoder: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "ok", decoder(raw)
    except HookError as err:
        return "refused", (err.status, err.code, err.message)


def assert_same_answer(raw: bytes) -> None:
    fast, reference = outcome(decode, raw), outcome(stdlib_decode, raw)
    assert fast[0] == reference[0], (raw[:200], fast, reference)
    if fast[0] != "ok":
        assert fast[1] == reference[1]
        return
    body, by_msgspec = fast[1]
    assert same(body, reference[1]), raw[:200]
    # What msgspec decoded holds no lone surrogate, so json_body looks for an escaped NUL only: same verdict.
    assert bad_string(raw, body, surrogates=not by_msgspec) == bad_string(raw, body)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@PROPERTY
@given(JSON_VALUES, st.booleans())
def test_generated_json_decodes_to_the_same_values(value: Any, ascii_only: bool) -> None:
    assert_same_answer(json.dumps(value, ensure_ascii=ascii_only).encode("utf-8"))


@PROPERTY
@given(JSON_VALUES, st.data())
def test_mangled_json_gets_the_same_answer(value: Any, data: st.DataObject) -> None:
    raw = bytearray(json.dumps(value, ensure_ascii=data.draw(st.booleans())).encode("utf-8"))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(st.sampled_from(list(b'"\\[]{},:0123456789.eE+-aunltrfs \t\x00\x7f\xed\xff\xa0')))
        if action == "insert":
            raw[at:at] = bytes([byte])
        elif raw and at < len(raw):
            raw[at : at + 1] = b"" if action == "delete" else bytes([byte])
    assert_same_answer(bytes(raw))


EDGE_CASES = [
    b'{"a":"\\ud800"}',  # a lone surrogate: the stdlib accepts it (json_body then refuses it: 400)
    b'"\xed\xa0\x80"',  # a surrogate's UTF-8-style bytes
    b'"\\ude00\\ud83d"',
    b'"\\ud83d\\ude00"',
    b"\xef\xbb\xbf[1]",  # a BOM
    '{"a": "é"}'.encode("utf-16"),
    b"[1e400]",  # inf for the stdlib
    b"[-1e400, 1e-400]",
    b"[123456789012345678901234567890, -9223372036854775809, 18446744073709551616]",
    b"[1.0, 1, -0, -0.0, 1E+2, 0.1]",
    b"[NaN]",
    b"[Infinity]",
    b'{"a":1,"a":2}',
    b'{"a":"\x01"}',
    b'"\xff"',
    b"[" * 5000 + b"]" * 5000,
    b"[1,]",
    b"",
    b" \t[1]\n",
    b"[1] x",
    b"null",
    b'{"a": "x\\u0000y", "b": ["\\ud83d\\ude00"]}',
    b'{"a\\u0000": 1}',
    b'["\\\\u0000"]',  # a backslash, then "u0000": no NUL
]


@pytest.mark.parametrize("raw", EDGE_CASES, ids=[repr(c[:24]) for c in EDGE_CASES])
def test_edge_cases_get_the_same_answer(raw: bytes) -> None:
    assert_same_answer(raw)
