"""Building blocks shared by the papers' networks (spec DESIGN: ``layers/``).

All layers take and return time-major sequences ``[T, B, ...]``.

* :mod:`.taps`: :class:`SpikeTap`, where learning rules read hidden spikes and cut the path
  between layers; it owns the layer's fixed random projection.
* :mod:`.time`: :func:`fold_time` / :class:`TimeFolded`, any stateless ``nn`` layer (Linear,
  Conv, pooling, Flatten, eval-mode BatchNorm) run once over the folded ``[T*B, ...]`` sequence;
  spike max/average pooling is such a folded pooling layer.
* :mod:`.dropout`: :class:`TimeSharedDropout`, one dropout mask per sample for all steps (PLIF).
* :mod:`.norm`: :class:`StepBatchNorm`, batch normalisation with each step's statistics (PLIF).
* :mod:`.pool`: :class:`WindowMaxPool2d` / :class:`WindowAvgPool2d`, ``nn.MaxPool2d(k, stride=k)`` /
  ``nn.AvgPool2d(k, stride=k)`` with compiled CPU kernels (the blocks' spike pooling).
* :mod:`.voting`: :class:`Voting`, class scores as the mean of groups of output neurons (PLIF).
* :mod:`.noise`: :func:`multiplicative_noise` / :class:`InputNoise`, NRR's ``x (1 + p xi)`` input noise.
* :mod:`.spike_linear`: :func:`time_linear` (a Linear over ``[T, B, ...]`` whose output a neuron may
  overwrite) and :func:`spike_linear` (the same fed spikes, kept as bytes for backward).
* :mod:`.blocks`: :class:`Conv2dLIF`, :class:`Conv1dLIF`, :class:`FCLIF`: synapse -> neurons ->
  tap (-> pooling), each returning a :class:`BlockOutput` ``(out, spikes)``.
"""

from .blocks import (
    BlockOutput,
    Conv1dLIF,
    Conv2dLIF,
    FCLIF,
    SpikingBlock,
    conv_output_size,
    pool_output_size,
)
from .dropout import TimeSharedDropout
from .noise import InputNoise, multiplicative_noise
from .norm import StepBatchNorm
from .pool import WindowAvgPool2d, WindowMaxPool2d, window_avg_pool2d, window_max_pool2d
from .spike_linear import spike_linear, time_linear
from .taps import SpikeTap, set_local, spike_taps
from .time import TimeFolded, fold_time
from .voting import Voting

__all__ = [
    "spike_linear",
    "time_linear",
    "SpikeTap",
    "set_local",
    "spike_taps",
    "TimeFolded",
    "fold_time",
    "TimeSharedDropout",
    "InputNoise",
    "multiplicative_noise",
    "StepBatchNorm",
    "WindowMaxPool2d",
    "window_max_pool2d",
    "WindowAvgPool2d",
    "window_avg_pool2d",
    "Voting",
    "BlockOutput",
    "SpikingBlock",
    "Conv2dLIF",
    "Conv1dLIF",
    "FCLIF",
    "conv_output_size",
    "pool_output_size",
]
