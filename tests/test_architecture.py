"""The house rules of issue 15, checked: the engine never imports the clinical package, no import circle,
a third service is one folder plus the composition root, a broken knowledge file stops start-up."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cds.app import create_app
from hooks.app import SERVICE_PACKAGES, knowledge_files, services
from hooks.common.knowledge_check import check
from hooks.common.schema import SHIPPED, KnowledgeError
from tests.builders import pv_request, settings

ROOT = Path(__file__).resolve().parent.parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module(p): p
    for pkg in ("cds", "hooks")
    for p in (ROOT / pkg).rglob("*.py")
    if "migrations" not in p.parts
}


def _imports(path: Path) -> set[str]:
    """Modules a file imports at run time (imports under `if TYPE_CHECKING:` are for annotations only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{a.name}" for a in node.names} & set(MODULES)
            # `from pkg import module` depends on the module; `from pkg import name` on the package.
            found |= submodules or {node.module}
            if len(submodules) < len(node.names):
                found.add(node.module)
    return found


def _unexplained_local_imports(path: Path) -> list[str]:
    """Imports inside a function or class (not under TYPE_CHECKING) with no comment saying why."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    out = []
    for scope in ast.walk(tree):
        if not isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for node in ast.walk(scope):
            if isinstance(node, ast.Import | ast.ImportFrom):
                here, above = lines[node.lineno - 1], lines[node.lineno - 2] if node.lineno > 1 else ""
                if "#" not in here and not above.strip().startswith("#"):
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {here.strip()}")
    return out


def test_the_engine_never_imports_the_clinical_package():
    offenders = {
        name: sorted(i for i in _imports(path) if i == "hooks" or i.startswith("hooks."))
        for name, path in MODULES.items()
        if name.startswith("cds")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_imports_sit_at_the_top_unless_a_comment_says_why():
    """A module's header shows what it depends on; a local import is for a measured start-up cost or an
    optional dependency, and says so."""
    assert [line for path in MODULES.values() for line in _unexplained_local_imports(path)] == []


def test_there_is_no_import_circle():
    graph = {
        name: {i for i in _imports(path) if i in MODULES and i != name} for name, path in MODULES.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


TOY_SERVICE = '''
"""A toy third service: one folder and one line in the composition root."""

from cds.cards import Card, Coding, Source
from cds.registry import Rule, Service
from hooks.common.cardkit import CardKit, CardsFile

KNOWLEDGE = {"toy_service/cards.yaml": CardsFile}
RULES = (Rule("toy-rule", ("info",), "A toy rule"),)


def declare(context):
    kit = CardKit(context.terms, context.file(CardsFile, "toy_service/cards.yaml"))

    def handler(call):
        ev = context.evidence.build(call)
        return [kit.card("toy-rule", "info", f"Conditions read: {len(ev.diagnoses.symptom_conditions)}")]

    return [
        Service(
            id="toy-patient-view",
            hook="patient-view",
            title="Toy",
            description="A third service added as one folder",
            prefetch={"conditions": "Condition?patient={{context.patientId}}"},
            handler=handler,
            rules=RULES,
        )
    ]
'''

TOY_CARDS = """
version: "1"
source: "test"
rule_system: "urn:spine-cds:rule"
sources:
  toy: {label: "Toy guideline", url: "https://example.org/toy"}
override_system: "urn:spine-cds:override-reason"
override_reasons:
  default:
    - {code: other, display: "Other"}
cards:
  toy-rule:
    summary: "Toy card"
    detail: "unused"
    source: toy
"""


def test_a_third_service_is_one_folder_and_the_composition_root(tmp_path, monkeypatch):
    package = tmp_path / "toy_service"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(TOY_SERVICE))
    site = tmp_path / "site"
    (site / "toy_service").mkdir(parents=True)
    (site / "toy_service" / "cards.yaml").write_text(TOY_CARDS)
    monkeypatch.syspath_prepend(str(tmp_path))
    packages = [*SERVICE_PACKAGES, "toy_service"]
    declared = services(settings(knowledge_dir=site), packages)
    assert [s.id for s in declared][-1] == "toy-patient-view" and len(declared) == 5
    assert "toy_service/cards.yaml" in knowledge_files(packages)
    assert declared[-1].knowledge["toy_service/cards.yaml"] == "1"
    client = create_app(settings(knowledge_dir=site), declared).test_client()
    discovery = client.get("/cds-services").get_json()["services"]
    assert "toy-patient-view" in {s["id"] for s in discovery}
    response = client.post("/cds-services/toy-patient-view", json=pv_request({"conditions": None}))
    assert response.status_code == 200
    (card,) = response.get_json()["cards"]
    assert (
        card["source"]["topic"]["code"] == "toy-rule" and card["links"][0]["url"] == "https://example.org/toy"
    )


def _site_copy(tmp_path: Path, relpath: str, old: str, new: str) -> Path:
    site = tmp_path / "site"
    target = site / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    text = (SHIPPED / relpath).read_text(encoding="utf-8")
    assert old in text
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return site


@pytest.mark.parametrize(
    ("relpath", "old", "new", "named"),
    [
        ("knowledge/red_flags.yaml", "  new_only:", "  new_onl:", "conditions.new_onl: unknown key"),
        ("knowledge/windows.yaml", "red_flag: 30", "red_flag: thirty", "days.red_flag"),
        (
            "l5_radiculopathy/cards.yaml",
            "    source: acr_lbp\n",
            "    sorce: acr_lbp\n",
            "sorce: unknown key",
        ),
        (
            "knowledge/emg_text.yaml",
            "  max_chars: 20000",
            "  max_char: 20000",
            "limits.max_char: unknown key",
        ),
        (
            "knowledge/motor_exam.yaml",
            "severe_grade_max: 3",
            "severe_grade_max: 3\nextra: (",
            "extra: unknown",
        ),
    ],
)
def test_a_typo_in_a_site_copy_stops_start_up_naming_file_and_key(tmp_path, relpath, old, new, named):
    site = _site_copy(tmp_path, relpath, old, new)
    env = {**os.environ, "CDS_KNOWLEDGE_DIR": str(site), "CDS_DATA_DIR": str(tmp_path / "data")}
    run = subprocess.run(
        [sys.executable, "-m", "hooks.app", "serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert str(site / relpath) in run.stderr and named in run.stderr
    assert "Traceback" not in run.stderr
    lines: list[str] = []
    assert check(site, knowledge_files(), lines.append) == 1
    assert any(line.startswith("INVALID") and named in line for line in lines)


def test_a_site_file_at_the_wrong_path_stops_start_up(tmp_path):
    """windows.yaml at the root of the copy (not knowledge/windows.yaml) would be ignored: refused instead."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "windows.yaml").write_text((SHIPPED / "knowledge" / "windows.yaml").read_text())
    with pytest.raises(KnowledgeError, match=r"holds windows\.yaml, which no service reads"):
        services(settings(knowledge_dir=site))
    (site / "windows.yaml").rename(site / "windows.txt")  # not a YAML file: not a knowledge file either
    assert services(settings(knowledge_dir=site))


def test_knowledge_check_lists_what_a_site_changed(tmp_path):
    site = _site_copy(tmp_path, "knowledge/windows.yaml", "red_flag: 30", "red_flag: 14")
    (site / "knowledge" / "windos.yaml").write_text("version: x\n")
    lines: list[str] = []
    assert check(site, knowledge_files(), lines.append) == 1, "a misspelled file is reported"
    assert "  ~ days.red_flag: 30 -> 14" in lines
    assert any(line.startswith("knowledge/windos.yaml: not a knowledge file") for line in lines)


def test_readyz_reports_the_knowledge_versions(client_factory=None):
    declared = services(settings())
    client = create_app(settings(), declared).test_client()
    body = client.get("/readyz").get_json()
    assert set(body["knowledge"]) == set(knowledge_files()), json.dumps(body)
    assert all(body["knowledge"].values())
