"""The papers' networks."""

from .mdn import MDNNet

__all__ = ["MDNNet"]
