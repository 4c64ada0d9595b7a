"""Errors of a request's arguments that every layer may raise and the services map to a
status (``semlink.serving.errors``): they live at the bottom, so the arrow from serving
points down. Packet errors live with the packet (``semlink.packet.errors``)."""

from __future__ import annotations


class BudgetError(ValueError):
    """The byte budget is not a usable number, cannot hold even the packet header, or
    holds no picture (the message names the smallest budget that does)."""
