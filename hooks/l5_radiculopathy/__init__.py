"""EMG-proven L5 radiculopathy with axon loss: next steps (patient-view) and order guidance (order-select)."""

from hooks.l5_radiculopathy.service import KNOWLEDGE, RULES, declare

__all__ = ["KNOWLEDGE", "RULES", "declare"]
