"""What every clinical service is built from: the loaded knowledge and the shared evidence builder.

The composition root (`hooks.app`) builds one `ClinicalContext` at start-up and hands it to each
service package's `declare(context)`, so knowledge files are read and compiled once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hooks.common.knowledge import Terminology, load_terminology, load_yaml, locate
from hooks.evidence.builder import EvidenceBuilder
from hooks.evidence.prefilter import Prefilter
from hooks.nlp import ContextEngine, EmgTextAnalyzer, load_knowledge


@dataclass(frozen=True)
class ClinicalContext:
    site_dir: Path | None
    terms: Terminology
    evidence: EvidenceBuilder
    prefilter: Prefilter

    @classmethod
    def load(cls, site_dir: Path | None = None) -> ClinicalContext:
        terms = load_terminology(site_dir)
        emg_text = load_knowledge(locate("knowledge/emg_text.yaml", site_dir))
        analyzer = EmgTextAnalyzer(emg_text, ContextEngine(emg_text))
        config = load_yaml("knowledge/evidence.yaml", site_dir)
        return cls(site_dir, terms, EvidenceBuilder(terms, config, analyzer), Prefilter(terms, config))

    def file(self, relpath: str) -> dict[str, Any]:
        """A service's own knowledge file (e.g. `l5_radiculopathy/cards.yaml`), site copy first."""
        return load_yaml(relpath, self.site_dir)
