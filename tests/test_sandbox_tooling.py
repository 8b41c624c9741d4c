"""The pieces of `make sandbox-check` that can be checked without the third-party clients.

The check itself needs the built CDS Hooks sandbox and CRD Request Generator (not in the repository) and
is run by hand (`make sandbox-check`); these tests keep its helpers honest in `make test`.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from demo.browser import Exchange
from demo.crd_check import PRELOAD, listening_hosts
from demo.report import Check, write_report
from demo.sandbox_flows import ordered_codes

NODE = shutil.which("node")
SERVER = """
const http = require('http');
const servers = [[0], [0, '0.0.0.0'], [{port: 0, host: '0.0.0.0'}]];
const out = [];
servers.forEach((args) => {
  const s = http.createServer();
  s.listen(...args, () => { out.push(s.address().address); s.close();
    if (out.length === servers.length) console.log(JSON.stringify(out)); });
});
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_preload_binds_every_server_to_loopback() -> None:
    """The CRD Request Generator calls app.listen(PORT): with the preload, it listens on loopback only."""
    plain = subprocess.run([NODE, "-e", SERVER], capture_output=True, text=True, timeout=30, check=True)
    assert "0.0.0.0" in plain.stdout or "::" in plain.stdout  # without it: every interface
    bound = subprocess.run(
        [NODE, "-r", str(PRELOAD), "-e", SERVER], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(bound.stdout) == ["127.0.0.1"] * 3


def test_listening_hosts_reads_the_kernel_table() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert listening_hosts(sock.getsockname()[1]) == {"loopback"}
    assert listening_hosts(1) == set()


def test_ordered_codes_read_the_draft_orders_not_the_prefetch() -> None:
    """The sandbox's prefetch holds the patient's old orders too: a wait must key on the draft in hand."""
    order = {"resourceType": "ServiceRequest", "code": {"coding": [{"code": "72148"}]}}
    body = {
        "context": {"draftOrders": {"resourceType": "Bundle", "entry": [{"resource": order}]}},
        "prefetch": {"orders": {"entry": [{"resource": {**order, "code": {"coding": [{"code": "72197"}]}}}]}},
    }
    assert ordered_codes(Exchange("1", "POST", "u", json.dumps(body))) == {"72148"}
    assert ordered_codes(Exchange("2", "POST", "u", json.dumps({"context": {}}))) == set()


def test_the_report_records_failures_and_evidence(tmp_path) -> None:
    checks = [
        Check("story 1", True, "2 cards | rendered", "sandbox-01.png"),
        Check("story 2", False, "timed out", None, ['{"feedback": []}']),
    ]
    text = write_report(tmp_path / "observed.md", checks, {"CDS Hooks sandbox": "3b7e255"}, 12.0)
    assert "| pass | story 1 | 2 cards / rendered | [sandbox-01.png](sandbox-01.png) |" in text
    assert "| **FAIL** | story 2 | timed out |  |" in text
    assert '{"feedback": []}' in text and "3b7e255" in text
    assert (tmp_path / "observed.md").read_text() == text
