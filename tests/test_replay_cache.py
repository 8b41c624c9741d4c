"""The Redis jti replay cache across a restart and an outage (issue 12, item 9).

Before: a Redis that restarted empty forgot every jti, so unexpired tokens could be replayed; a Redis that
was down or hung made every call 401, telling the EHR its credentials were bad. The restart tests start
their own redis-server (never the machine's); the outage test puts a TCP proxy in front of the machine's
Redis, with a key prefix of its own.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cds.app import create_app
from tests.builders import make_test_services, settings
from tests.tcpproxy import TcpProxy
from tests.test_auth import BASE, call, redis_url, token, trusted_file

REDIS_SERVER = shutil.which("redis-server")


class OwnRedis:
    """A redis-server of this test only, on a fixed port so it can be restarted in place."""

    def __init__(self, directory: Path, *args: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.directory = directory
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [REDIS_SERVER or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.directory), "--save", "", *self.args]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def crash(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown save
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.crash()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path, "--appendonly", "no")
    yield server
    server.stop()


def _app(tmp_path: Path, url: str, prefix: str = "spine-cds:jti:"):
    return create_app(
        settings(
            auth="required",
            trusted_clients=trusted_file(tmp_path),
            public_base_url=BASE,
            redis_url=url,
            redis_key_prefix=prefix,
        ),
        services=make_test_services(),
    )


def test_a_token_used_before_redis_restarted_empty_is_still_refused(tmp_path, own_redis):
    client = _app(tmp_path, own_redis.url).test_client()
    used, unused = token(), token()
    assert call(client, used).status_code == 200
    time.sleep(1.1)  # iat has whole seconds: a token of the very second of the data loss would pass
    own_redis.crash()
    own_redis.start()  # empty: no persistence
    assert redis.Redis(port=own_redis.port).dbsize() == 0
    replay = call(client, used)
    assert replay.status_code == 401 and replay.headers["WWW-Authenticate"] == "Bearer"
    # The price: a token signed before the restart and first used after it is refused too.
    assert call(client, unused).status_code == 401
    fresh = token()  # tokens signed from now on are accepted, once
    assert call(client, fresh).status_code == 200 and call(client, fresh).status_code == 401


def test_with_aof_always_a_crash_forgets_nothing(tmp_path):
    """The configuration README "Production" asks for: every jti written survives a SIGKILL."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    try:
        client = _app(tmp_path, server.url).test_client()
        used, unused = token(), token()
        assert call(client, used).status_code == 200
        server.crash()
        server.start()
        assert call(client, used).status_code == 401  # still remembered
        assert call(client, unused).status_code == 200  # and the epoch too: no spurious refusal
    finally:
        server.stop()


def test_redis_down_or_hung_answers_503_with_retry_after_not_401(tmp_path):
    url = redis_url()  # the machine's Redis (skips when unreachable), behind a proxy of this test
    target = redis.Redis.from_url(url)
    port = target.connection_pool.connection_kwargs["port"]
    with TcpProxy(port) as proxy:
        proxied = url.replace(f":{port}/", f":{proxy.port}/")
        prefix = f"spine-cds-test-{uuid.uuid4().hex}:"
        client = _app(tmp_path, proxied, prefix).test_client()
        try:
            assert call(client, token()).status_code == 200
            proxy.stall()  # hung: accepting, not answering
            started = time.monotonic()
            hung = call(client, token())
            assert hung.status_code == 503 and hung.headers["Retry-After"] == "1"
            assert hung.get_json()["error"] == "unavailable" and "WWW-Authenticate" not in hung.headers
            assert time.monotonic() - started < 5  # the client gives up after 0.5 s per attempt
            proxy.resume()
            proxy.close()  # down: connection refused
            down = call(client, token())
            assert down.status_code == 503 and down.headers["Retry-After"] == "1"
        finally:
            for key in target.scan_iter(prefix + "*"):
                target.delete(key)


def test_a_token_expiring_beyond_the_max_lifetime_is_refused(tmp_path, own_redis):
    """The cache keeps each jti until its token expires; a token valid for longer is not accepted."""
    client = _app(tmp_path, own_redis.url).test_client()
    now = int(time.time())
    assert call(client, token(exp=now + 7200)).status_code == 401
    accepted = token(exp=now + 3500)
    assert call(client, accepted).status_code == 200
    jti_ttls = [
        redis.Redis(port=own_redis.port).ttl(k)
        for k in redis.Redis(port=own_redis.port).scan_iter("spine-cds:jti:*")
        if not k.endswith(b"epoch")
    ]
    assert jti_ttls and min(jti_ttls) >= 3500  # remembered until exp (plus leeway), not a fixed hour
