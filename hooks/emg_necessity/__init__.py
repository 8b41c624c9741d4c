"""EMG/NCS orders whose diagnosis does not support medical necessity (order-select and order-sign)."""

from hooks.emg_necessity.service import KNOWLEDGE, RULES, declare

__all__ = ["KNOWLEDGE", "RULES", "declare"]
