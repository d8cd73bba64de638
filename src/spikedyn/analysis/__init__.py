"""Analyses of trained networks and of result tables (MDN's capability, ...)."""

from .capability import Capability, capability, standardise

__all__ = ["Capability", "capability", "standardise"]
