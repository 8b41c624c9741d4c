"""EMG-proven L5 radiculopathy with axon loss: next steps (patient-view) and order guidance (order-select)."""

from hooks.l5_radiculopathy.service import RULES, declare

__all__ = ["RULES", "declare"]
