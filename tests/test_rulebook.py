"""docs/clinical-rules.md and the README services table are generated from what runs: they must not drift."""

from __future__ import annotations

from pathlib import Path

from hooks.common.rulebook import (
    PREFETCH_BEGIN,
    PREFETCH_END,
    README_BEGIN,
    README_END,
    prefetch_table,
    readme_table,
    render,
)

ROOT = Path(__file__).resolve().parent.parent


def test_clinical_rules_document_matches_the_knowledge_files():
    committed = (ROOT / "docs" / "clinical-rules.md").read_text(encoding="utf-8")
    assert committed == render(), "regenerate: python -m hooks.common.rulebook > docs/clinical-rules.md"


def test_readme_services_table_matches_the_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index(README_BEGIN) : readme.index(README_END) + len(README_END)]
    assert block == readme_table(), "regenerate: python -m hooks.common.rulebook --readme"


def test_every_declared_rule_is_documented():
    text = render()
    for rule in ("red-flags", "mri", "emg-dx-mismatch", "emg-unreadable", "mri-before-surgery"):
        assert f"### `{rule}`" in text


def test_readme_prefetch_table_matches_discovery():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index(PREFETCH_BEGIN) : readme.index(PREFETCH_END) + len(PREFETCH_END)]
    assert block == prefetch_table(), "regenerate: python -m hooks.common.rulebook --prefetch"
