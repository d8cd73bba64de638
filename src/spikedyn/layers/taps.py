"""Spike taps: where a learning rule reads a hidden layer's spikes and cuts the path between layers.

Every hidden spiking layer of a model is followed by a :class:`SpikeTap` (the models place it on
the spikes *before* any pooling, spec brp.md section 3).  The tap

* passes the spikes on unchanged (``local = False``, surrogate-gradient BPTT through the whole
  network), or detached (``local = True``): the layers above then send no gradient into this
  layer, which learns only from its own teaching signal (reward propagation, spec common.md
  section 6: "feed every layer the detached spikes of the layer below");
* owns the layer's fixed random projection ``B_l`` (``projection``, ``[classes, N_l]``, drawn
  once ``B_l ~ U(-sqrt(6 / N_l), +sqrt(6 / N_l))``, the authors' kaiming-uniform bound) as a
  buffer, so checkpoints carry it and a resumed run projects through the same matrix (a
  checkpoint written before the model had taps, without the key, still loads: see
  :meth:`SpikeTap._load_from_state_dict`).  It is drawn when a rule first makes the tap local
  (:func:`set_local`), not at construction: a BPTT run never holds it (on an event-camera conv
  net the ``B_l`` would take ~100 MB).

The model returns the un-detached spikes of every tap (``NetOutput.taps``, ``[T, B, *shape]``),
which the rule turns into its auxiliary loss ``sum_t sum_b <S_l(t)[b], G_l[b]>``.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import torch
from torch import Tensor, nn


class SpikeTap(nn.Module):
    """Identity on a hidden layer's spikes ``[T, B, *shape]`` that a learning rule can make local."""

    def __init__(self, shape: int | Sequence[int], classes: int) -> None:
        super().__init__()
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.neurons = math.prod(self.shape)
        if self.neurons < 1 or classes < 1:
            raise ValueError(f"SpikeTap needs a positive neuron shape and class count, got {self.shape} and {classes}")
        self.classes = int(classes)
        self.register_buffer("projection", None)
        self.local = False

    def ensure_projection(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        """``B_l``, drawn from the global random stream on first use (then kept, and saved)."""
        if self.projection is None:
            bound = math.sqrt(6.0 / self.neurons)
            self.projection = torch.empty(self.classes, self.neurons, device=device, dtype=dtype).uniform_(-bound, bound)
        return self.projection

    def forward(self, spikes: Tensor) -> Tensor:
        """The spikes for the next layer: detached when the rule is layer-local."""
        if tuple(spikes.shape[2:]) != self.shape:
            raise ValueError(
                f"SpikeTap of neuron shape {self.shape} got spikes of shape {tuple(spikes.shape)}; "
                f"expected [T, B, {', '.join(map(str, self.shape))}]"
            )
        return spikes.detach() if self.local else spikes

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        """Load as usual, but accept a state dict without ``projection``.

        Checkpoints written before the models had taps (plain BPTT runs) lack the key; such a
        run never used ``B_l``, so the projection drawn at construction is kept instead of
        failing a strict load.  A checkpoint that holds the key restores it, so a resumed
        reward-propagation run projects through the same matrix.
        """
        key = prefix + "projection"
        if key in state_dict and self.projection is None:  # B_l saved by a reward-propagation run
            self.projection = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if key not in state_dict and key in missing_keys:
            missing_keys.remove(key)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, classes={self.classes}, local={self.local}"


def spike_taps(model: nn.Module) -> list[SpikeTap]:
    """The model's taps in registration order (= the order of ``NetOutput.taps``)."""
    return [m for m in model.modules() if isinstance(m, SpikeTap)]


def set_local(model: nn.Module, local: bool) -> None:
    """Make every tap of ``model`` layer-local (reward propagation; draws the missing ``B_l`` on
    the model's device) or transparent (BPTT)."""
    like = next((t for t in itertools.chain(model.parameters(), model.buffers()) if t.is_floating_point()), None)
    for tap in spike_taps(model):
        tap.local = local
        if local:
            tap.ensure_projection(None if like is None else like.device, None if like is None else like.dtype)
