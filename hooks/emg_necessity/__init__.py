"""EMG/NCS orders whose diagnosis does not support medical necessity (order-select and order-sign)."""

from hooks.emg_necessity.service import RULES, declare

__all__ = ["RULES", "declare"]
