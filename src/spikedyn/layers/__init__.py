"""Building blocks shared by the papers' networks (spec DESIGN: ``layers/``).

* :mod:`.taps`: :class:`SpikeTap`, where learning rules read hidden spikes and cut the path
  between layers; it owns the layer's fixed random projection.
"""

from .taps import SpikeTap, set_local, spike_taps

__all__ = ["SpikeTap", "set_local", "spike_taps"]
