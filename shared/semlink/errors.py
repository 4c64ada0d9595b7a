"""Errors that every layer may raise and the services map to a status
(``semlink.serving.errors``): they live at the bottom, so every arrow to them points down.
Packet errors live with the packet (``semlink.packet.errors``)."""

from __future__ import annotations


class BudgetError(ValueError):
    """The byte budget is not a usable number, cannot hold even the packet header, or
    holds no picture (the message names the smallest budget that does)."""


class WeightsError(RuntimeError):
    """Weights are missing, tampered with or do not fit the model (FAILED_PRECONDITION:
    the other end, or this one, needs other models)."""
