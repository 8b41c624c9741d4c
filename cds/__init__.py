"""spine-cds engine: the CDS Hooks 2.0 protocol, with no medical knowledge of its own."""

from cds.app import create_app

__all__ = ["create_app"]
