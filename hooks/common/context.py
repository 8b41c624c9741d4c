"""What every clinical service is built from: the loaded knowledge and the shared evidence builder.

The composition root (`hooks.app`) builds one `ClinicalContext` at start-up and hands it to each
service package's `declare(context)`, so knowledge files are read, checked and compiled once per process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hooks.common.knowledge import VALUESETS, Terminology, ValueSetsFile, load_terminology
from hooks.common.schema import KnowledgeFile, load_model
from hooks.evidence.builder import FILES, EvidenceBuilder
from hooks.evidence.prefilter import Prefilter
from hooks.nlp.schema import EmgTextKnowledge

M = TypeVar("M", bound=KnowledgeFile)

#: The knowledge files every service shares (the service packages add their own `KNOWLEDGE`).
SHARED_KNOWLEDGE: dict[str, type[KnowledgeFile]] = {
    VALUESETS: ValueSetsFile,
    "knowledge/emg_text.yaml": EmgTextKnowledge,
    **{path: model for path, model in FILES.values()},
}


@dataclass
class ClinicalContext:
    site_dir: Path | None
    terms: Terminology
    evidence: EvidenceBuilder
    prefilter: Prefilter
    versions: dict[str, str] = field(default_factory=dict)  # knowledge file -> version (shown in /readyz)

    @classmethod
    def load(cls, site_dir: Path | None = None) -> ClinicalContext:
        terms = load_terminology(site_dir)
        builder = EvidenceBuilder(terms, site_dir)
        versions = {VALUESETS: terms.version, **builder.versions}
        return cls(site_dir, terms, builder, Prefilter(builder), versions)

    def file(self, model: type[M], relpath: str) -> M:
        """A service's own knowledge file (e.g. `l5_radiculopathy/cards.yaml`), site copy first, typed."""
        loaded = load_model(model, relpath, self.site_dir)
        self.versions[relpath] = loaded.version
        return loaded
