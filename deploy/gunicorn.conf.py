"""gunicorn settings for spine-cds in production.

    gunicorn -c deploy/gunicorn.conf.py 'hooks.app:create_app()'


Why these settings (measured with `make bench`, tables in docs/performance.md):
- A hook call is CPU-bound: 9-17 ms of CPU with a 300-resource prefetch (HTTP, JSON decode, FHIR
  model validation, rules, audit), all under the GIL. Throughput comes from processes, so there is
  one worker per CPU the pod may use. `GUNICORN_WORKERS` must match the pod's CPU limit
  (cpu_count() in a container sees the node's CPUs); the default 2 matches deploy/k8s.
- `sync` workers, not `gthread`: with keep-alive connections (an ingress keeps them open to its
  upstreams), a gthread worker accepts every connection it can and keeps it, so one worker did 94-100%
  of the work while the others idled (CPU split in the benchmark). A sync worker takes one request at a
  time and only accepts when idle, which spreads the load evenly. Threads also raised the CPU per call
  (GIL hand-offs: 16-18 ms with 1 thread, 19-21 ms with 2 or 4, same load).
- The price: a call that waits on the FHIR fallback (~100 ms or more per round trip) holds its worker.
  Prefetch is the normal case; a site whose EHR sends little prefetch should raise `GUNICORN_WORKERS`
  (e.g. 2 per CPU) or switch to `GUNICORN_WORKER_CLASS=gthread` with `GUNICORN_KEEPALIVE=0`.
- Sync workers need a buffering proxy in front (slow clients would hold a worker): the ingress is one.
- `graceful_timeout` (25 s) < the pod's terminationGracePeriodSeconds (35 s) minus the preStop
  sleep (5 s): in-flight calls finish and the audit is flushed before the kubelet sends SIGKILL.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8080")]
# "sync" is gunicorn's sync worker that also serves the connections queued on the listening socket when
# SIGTERM arrives (cds.wsgi_server; plain gunicorn resets them). Any other value is passed to gunicorn.
_worker = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
worker_class = "cds.wsgi_server.DrainingSyncWorker" if _worker == "sync" else _worker
workers = _int("GUNICORN_WORKERS", 2)
# Only for gthread (gunicorn turns sync into gthread when threads > 1).
threads = _int("GUNICORN_THREADS", 1)
# The app is built in each worker after fork: no database or Redis socket is shared across forks,
# and the FHIR client's thread pool is created where it runs. Start-up costs ~0.3 s per worker.
preload_app = False
# gthread only (sync closes after each response). If used behind a proxy that keeps upstream connections
# open, ours must outlive its idle timeout (60 s on ingress-nginx) or it may send on a closed socket.
keepalive = _int("GUNICORN_KEEPALIVE", 75)
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000)
timeout = _int("GUNICORN_TIMEOUT", 30)  # a worker silent this long is killed; the FHIR deadline is 2.5 s
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 25)
# Recycling workers is a safety net against slow leaks; the memory benchmark found none, so it is off
# unless an operator sets it. Jitter keeps all workers from restarting at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max(1, max_requests // 10) if max_requests else 0
# The request line and headers stay small; bodies are bounded by CDS_MAX_BODY_BYTES in the app.
limit_request_line = 8190
limit_request_fields = 100
# The heartbeat file on a tmpfs: disk stalls on overlay filesystems must not get healthy workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The app writes JSON-lines logs for every hook call; a second, unstructured access log adds nothing.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "spine-cds"
# gunicorn >= 25.1 opens a control socket under $HOME by default; the container's root filesystem is
# read-only and nothing in the pod uses gunicornc. Older versions ignore the unknown setting.
control_socket_disable = True
# X-Forwarded-* are trusted from the ingress only; set to the ingress pods' addresses in the cluster.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# prometheus-client multiprocess mode: every worker writes its values to files in this directory and
# /metrics merges them. It must be set before any worker imports prometheus_client.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / f"spine-cds-metrics-{os.getpid()}")
)


def on_starting(server: Any) -> None:
    """Start with an empty metrics directory: files of a previous master would be merged as if live."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if directory.exists():
        for path in directory.glob("*.db"):
            path.unlink()
    directory.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """In the master, after a worker exits: drop its live gauges from the merged metrics."""
    from cds.metrics import mark_worker_dead

    mark_worker_dead(worker.pid)


def flush_audit(app: Any, log: Any) -> bool:
    """Flush the audit store's buffered writes. Returns True when a flush ran.

    Looks for `flush()` on the app state (`app.extensions["cds"]`), then on its `store`.
    Nothing to flush (no store configured) is not an error.
    """
    extensions = getattr(app, "extensions", None)
    state = extensions.get("cds") if isinstance(extensions, dict) else None
    for target in (state, getattr(state, "store", None)):
        flush = getattr(target, "flush", None)
        if callable(flush):
            try:
                flush()
            except Exception as exc:  # the worker is ending either way; say what was lost
                log.error("audit flush failed on worker exit: %s", type(exc).__name__)
                return False
            log.info("audit store flushed on worker exit")
            return True
    return False


def post_worker_init(worker: Any) -> None:
    """In each worker, once the app is loaded: the errors gunicorn writes itself (414, 431, 400, worker
    timeout) are JSON too; the start-up objects (~130,000: FHIR model classes, schemas, knowledge) leave the
    cyclic GC's reach (`gc.freeze`), so a full collection scans only what calls keep (the caches)."""
    from cds.wsgi_server import install_json_errors

    install_json_errors(worker.cfg)
    gc.collect()
    gc.freeze()


def worker_abort(worker: Any) -> None:
    """In a worker the arbiter stops for running past `timeout`: its 500 says so (worker-timeout)."""
    from cds.wsgi_server import mark_aborted

    mark_aborted()


def worker_exit(server: Any, worker: Any) -> None:
    """In the worker, after its last in-flight request finished (SIGTERM, max_requests, or the master
    going away): flush the audit writes so no decision record is lost on a rolling update."""
    flush_audit(getattr(worker, "wsgi", None), server.log)


def on_exit(server: Any) -> None:
    """Remove the metrics directory this master created by default (a mounted one is left alone)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if directory.endswith(f"spine-cds-metrics-{os.getpid()}"):
        shutil.rmtree(directory, ignore_errors=True)
