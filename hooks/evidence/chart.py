"""The patient's chart for one hook call: typed access to its resources, dated in the site's zone.

Every extractor reads the chart through this one view so that the same questions get the same answers
in every service (which version of a report counts, what a resource's date is, how a `#contained` or
absolute reference resolves).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, tzinfo
from typing import Any

from hooks.common.fhir import attachment_missing, attachment_unreadable, reference, resource_date
from hooks.nlp.budget import TextBudget

_GONE = ("entered-in-error", "cancelled")


class Chart:
    def __init__(
        self,
        resources: dict[str, list[Any]],
        today: date,
        zone: tzinfo | None = None,
        resolver: Callable[[str, Any], Any] | None = None,
        budget: TextBudget | None = None,
    ) -> None:
        self.resources = resources
        self.today = today
        self.zone = zone
        self._resolver = resolver
        self.budget = budget  # the text this call may still read (None: unbounded, in unit tests)

    def take(self, text: str) -> str:
        """The part of a text this call may still read: every reader passes its (markup-free) text here
        before reading it, so one call's reading cost is bounded however many documents it carries."""
        return self.budget.take(text) if self.budget is not None else text

    def of(self, resource_type: str) -> list[Any]:
        return list(self.resources.get(resource_type, []))

    def date(self, res: Any) -> date | None:
        return resource_date(res, self.zone)

    @staticmethod
    def ref(res: Any) -> str:
        return reference(res)

    def age(self, when: date | None) -> int | None:
        return None if when is None else (self.today - when).days

    def resolve(self, ref: str, container: Any = None) -> Any | None:
        if ref.startswith("#"):
            return next((c for c in getattr(container, "contained", None) or [] if c.id == ref[1:]), None)
        if self._resolver is not None:
            return self._resolver(ref, container)
        parts = ref.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) < 2:
            return None
        return next((r for r in self.of(parts[-2]) if r.id == parts[-1]), None)

    # -- resources with their status rules ----------------------------------------------------------------

    def latest_reports(self) -> list[Any]:
        """One DiagnosticReport per identifier: the latest version (amended/corrected supersede), never an
        entered-in-error one (its correction, if any, is another version)."""
        groups: dict[str, tuple[tuple[str, str], Any]] = {}
        for rep in self.of("DiagnosticReport"):
            if rep.status in _GONE:
                continue
            ids = [f"{i.system}|{i.value}" for i in rep.identifier or [] if i.value]
            key = ids[0] if ids else reference(rep)
            stamp = (
                str(rep.issued or ""),
                str(rep.meta.lastUpdated) if rep.meta and rep.meta.lastUpdated else "",
            )
            if key not in groups or stamp > groups[key][0]:
                groups[key] = (stamp, rep)
        return [rep for _, rep in groups.values()]

    def documents(self) -> list[Any]:
        """Notes that stand: not entered in error, not superseded, not replaced by another note."""
        docs = [d for d in self.of("DocumentReference") if d.status not in ("entered-in-error", "superseded")]
        replaced = {
            rel.target.reference
            for d in docs
            for rel in d.relatesTo or []
            if rel.code in ("replaces", "transforms") and rel.target and rel.target.reference
        }
        return [d for d in docs if reference(d) not in replaced and d.docStatus != "entered-in-error"]

    def observations(self) -> list[Any]:
        return [o for o in self.of("Observation") if o.status not in _GONE]

    def conditions(self) -> list[Any]:
        return self.of("Condition")

    def completed_procedures(self) -> list[Any]:
        return [p for p in self.of("Procedure") if p.status == "completed"]

    def completed_orders(self) -> list[Any]:
        return [s for s in self.of("ServiceRequest") if s.status == "completed"]

    def orders(self, statuses: Iterable[str]) -> list[Any]:
        wanted = set(statuses)
        return [s for s in self.of("ServiceRequest") if s.status in wanted]

    def questionnaires(self) -> list[Any]:
        return [
            q for q in self.of("QuestionnaireResponse") if q.status not in ("entered-in-error", "stopped")
        ]

    def encounters(self) -> list[Any]:
        return [e for e in self.of("Encounter") if e.status not in ("cancelled", "entered-in-error")]

    @staticmethod
    def unreadable(attachments: Iterable[Any] | None) -> tuple[str, bool] | None:
        """(why the report text could not be read, whether it was never obtained), or None when readable.

        The engine turns every attachment into text or marks why it could not (issue 14); a file it never
        saw (inline PDF of a resource it did not keep, a URL without a fhirServer) is unreadable too.
        """
        for att in attachments or []:
            reason = attachment_unreadable(att)
            if reason:
                return reason, attachment_missing(reason)
            content_type = (att.contentType or "").split(";")[0].strip().lower()
            if att.data is None and att.url:
                return "not-fetched", True
            if content_type not in ("text/plain", "text/html", "application/xhtml+xml", ""):
                return "unsupported-type", False
        return None
