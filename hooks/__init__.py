"""Clinical services of spine-cds: value sets, thresholds, card text and rules. No HTTP here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cds.config import Settings
    from cds.registry import Service


def services(settings: Settings) -> list[Service]:
    """Every production service, with its knowledge files loaded once."""
    return []
