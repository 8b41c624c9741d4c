"""Versioned knowledge files (value sets, windows, card text), loaded once at start-up.

Codes are matched on (canonical system, normalized code): ICD-10-CM codes are upper-cased with
the dot removed, so `M47816`, `m47.816` and `M47.816` are the same code, and system aliases
(OIDs, older URIs) map to one canonical URI. A site can point `CDS_KNOWLEDGE_DIR` at a copy of
these files to change codes, windows or wording without a code change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import model_validator

from hooks.common.schema import KnowledgeFile, Strict, load_model

VALUESETS = "knowledge/valuesets.yaml"


def normalize_code(system_key: str, code: str) -> str:
    code = code.strip()
    return code.upper().replace(".", "") if system_key == "icd10cm" else code


class SystemSpec(Strict):
    uri: str
    aliases: list[str] = []
    normalize: str | None = None


class CodeSpec(Strict):
    system: str  # a key of `systems`
    code: str
    display: str = ""
    verification: str = "U"


class SetSpec(Strict):
    purpose: str
    codes: list[CodeSpec]


class ValueSetsFile(KnowledgeFile):
    systems: dict[str, SystemSpec]
    sets: dict[str, SetSpec]

    @model_validator(mode="after")
    def _known_systems(self) -> ValueSetsFile:
        for name, spec in self.sets.items():
            for i, c in enumerate(spec.codes):
                if c.system not in self.systems:
                    raise ValueError(f"sets.{name}.codes.{i}.system: {c.system!r} is not one of systems")
        return self


@dataclass(frozen=True)
class Concept:
    system: str  # canonical URI
    code: str  # as written in the knowledge file (ICD with its dot)
    display: str
    verification: str


@dataclass
class ValueSet:
    name: str
    purpose: str
    concepts: list[Concept]
    _index: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._index

    def codes(self, system: str | None = None) -> list[str]:
        return [c.code for c in self.concepts if system is None or c.system == system]


class Terminology:
    """Canonical systems plus value sets, with code normalization done once."""

    def __init__(self, data: ValueSetsFile) -> None:
        self.version: str = data.version
        self._system_key: dict[str, str] = {}
        self.uri: dict[str, str] = {}
        for key, system in data.systems.items():
            self.uri[key] = system.uri
            for alias in [system.uri, *system.aliases]:
                self._system_key[alias.rstrip("/").lower()] = key
        self.sets: dict[str, ValueSet] = {}
        self.displays: dict[tuple[str, str], str] = {}
        for name, spec in data.sets.items():
            concepts = []
            index = set()
            for c in spec.codes:
                concepts.append(Concept(self.uri[c.system], c.code, c.display, c.verification))
                index.add((c.system, normalize_code(c.system, c.code)))
                self.displays[(c.system, normalize_code(c.system, c.code))] = c.display
            self.sets[name] = ValueSet(name, spec.purpose, concepts, index)

    def system_key(self, system: str | None) -> str | None:
        return self._system_key.get((system or "").rstrip("/").lower())

    def key(self, system: str | None, code: str | None) -> tuple[str, str] | None:
        """(system key, normalized code) or None when the system is unknown to us."""
        skey = self.system_key(system)
        if skey is None or not code:
            return None
        return skey, normalize_code(skey, code)

    def in_set(self, set_name: str, codings: Iterable[tuple[str | None, str | None]]) -> bool:
        vs = self.sets[set_name]
        return any((k := self.key(s, c)) is not None and k in vs for s, c in codings)

    def matching(self, set_name: str, codings: Iterable[tuple[str | None, str | None]]) -> list[str]:
        """The codes (as written in the resource) that fall in the set."""
        vs = self.sets[set_name]
        return [str(c) for s, c in codings if (k := self.key(s, c)) is not None and k in vs]

    def union(self, set_names: Iterable[str]) -> frozenset[tuple[str, str]]:
        """(system key, normalized code) pairs of several value sets, for fast raw-JSON lookups."""
        return frozenset(key for name in set_names for key in self.sets[name]._index)

    def display(self, system_key: str, code: str) -> str:
        return self.displays.get((system_key, normalize_code(system_key, code)), "")

    def coding(self, system_key: str, code: str) -> dict[str, str]:
        """A FHIR Coding for a code of ours (used when building suggested resources)."""
        out = {"system": self.uri[system_key], "code": code}
        display = self.display(system_key, code)
        if display:
            out["display"] = display
        return out


def load_terminology(directory: Path | None = None) -> Terminology:
    return Terminology(load_model(ValueSetsFile, VALUESETS, directory))
