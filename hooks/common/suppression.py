"""A service's suppression settings: the `suppression:` block of its cards.yaml, checked at start-up.

The periods are a site setting with documented defaults (see the comments in each cards.yaml); the engine
applies them (`cds.suppression`). A code that is not one of the file's own override reasons is refused at
start-up: a renamed reason would otherwise silently stop silencing anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import NonNegativeInt

from hooks.common.schema import Strict

if TYPE_CHECKING:
    from hooks.common.cardkit import CardsFile


class SuppressionSpec(Strict):
    """`suppression:` in a service's cards.yaml. Absent: feedback silences nothing."""

    override_days: dict[str, NonNegativeInt] = {}  # override reason code -> days the rule stays silent
    accepted_days: NonNegativeInt | None = None  # an accepted order suggestion: at most this many days


def suppression_settings(cards: CardsFile, where: str) -> dict[str, Any]:
    """`suppress_after` and `suppress_accepted_days` for `Service(...)` from a loaded cards.yaml."""
    spec = cards.suppression
    offered = {reason.code for reasons in cards.override_reasons.values() for reason in reasons}
    unknown = sorted(set(spec.override_days) - offered)
    if unknown:
        raise ValueError(
            f"{where}: suppression.override_days names reasons the cards do not offer: {unknown}"
        )
    return {"suppress_after": dict(spec.override_days), "suppress_accepted_days": spec.accepted_days}
