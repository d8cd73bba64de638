"""TensorBoard logging of a training run (``TrainConfig.log``, ``spikedyn train --log tensorboard``).

``metrics.jsonl`` is always written; ``log=["jsonl", "tensorboard"]`` also writes an event file
under ``RUN/tensorboard/`` (view it with ``tensorboard --logdir RUN/tensorboard``) through
PyTorch's ``torch.utils.tensorboard.SummaryWriter``, which needs the optional ``tensorboard``
package (``pip install "spikedyn[tensorboard]"``); a run that asks for it without the package
stops at start-up, before loading data, with that command in the message.  In a data-parallel
run rank 0 alone writes.  The step of every event is the epoch number of ``metrics.jsonl``
(1, 2, ...); after each epoch the log gets

* **scalars**: every number of the epoch's ``metrics.jsonl`` record, named by split:
  ``train/loss``, ``train/accuracy``, ``test/loss``, ``test/accuracy``, ``val/loss``,
  ``val/accuracy``, the metric's extras (``test/sample_accuracy``), the learning rule's terms
  (``train/parts/NAME``), the learning rate of each parameter group (``lr/weights``,
  ``lr/dynamics``), the epoch's ``seconds`` (``train/seconds``: its training part) and the mean learned dynamics of each layer
  (``dynamics_mean/LAYER/NAME``, the ``dynamics`` of the record);
* **firing rates** ``firing_rate/LAYER``: the mean spike rate (spikes per neuron and step) of
  every hidden layer with a :class:`~spikedyn.layers.SpikeTap`, measured after the epoch on one
  test batch (the first ``batch_size`` test samples, encoded with a generator seeded by
  ``(seed, epoch)``) in evaluation mode;
* **histograms** ``dynamics/LAYER/NAME`` of the learned neuron dynamics over the layer's
  neurons (PLIF's ``tau``, MDN's ``theta_a`` .. ``theta_d``; from the nets'
  ``named_learned_dynamics``), also at step 0 (the initial values) when a run starts.

The firing-rate batch draws nothing from the global random stream that training uses (every
epoch reseeds it anyway), so a run logs the same ``metrics.jsonl`` with or without TensorBoard.

Resume: the trainer writes the epoch's events before its checkpoint, and a resumed run opens
the same folder with ``purge_step`` = the first epoch it trains, so events of an epoch that is
trained again (the run was stopped after logging it, before its checkpoint) are dropped when
TensorBoard reads the folder: every epoch appears once.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import Tensor, nn

#: what ``log`` (``--log``) may name; ``jsonl`` (``metrics.jsonl``) is always written
LOG_FORMATS = ("jsonl", "tensorboard")
#: the folder of the event files inside the run directory
TENSORBOARD_DIR = "tensorboard"
#: record keys that are not per-epoch numbers to log
_NOT_LOGGED = ("epoch", "metric")
#: record key prefixes that name a split
_SPLITS = ("train", "test", "val")


class TensorBoardUnavailableError(ImportError, ValueError):
    """``--log tensorboard`` without the optional ``tensorboard`` package (the message says how to install it)."""


def log_formats(value: str | Iterable[str] | None) -> list[str]:
    """The log formats of ``log`` (``--log``), checked: ``jsonl`` first (always written), then the others.

    Takes a list of names or one string (``"tensorboard"``, ``"jsonl,tensorboard"``); an unknown
    name is a ``ValueError`` naming the choices.
    """
    if value is None:
        names: list[str] = []
    elif isinstance(value, str):
        names = [part.strip() for part in value.split(",") if part.strip()]
    else:
        names = list(value)
    unknown = [name for name in names if name not in LOG_FORMATS]
    if unknown:
        raise ValueError(
            f"unknown log format {unknown[0]!r} (--log); choose from {', '.join(LOG_FORMATS)}, e.g. "
            f"--log tensorboard (metrics.jsonl is always written)"
        )
    return [name for name in LOG_FORMATS if name == "jsonl" or name in names]


def require_tensorboard() -> type:
    """``torch.utils.tensorboard.SummaryWriter``; :class:`TensorBoardUnavailableError` when the
    ``tensorboard`` package is missing, with the command that installs it."""
    try:
        import tensorboard  # noqa: F401 - torch.utils.tensorboard needs it (checked first: torch caches its module)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise TensorBoardUnavailableError(
            "--log tensorboard needs the optional 'tensorboard' package, which is not installed: "
            'pip install "spikedyn[tensorboard]" (or pip install tensorboard), or train without --log tensorboard '
            "(metrics.jsonl is written either way)."
        ) from exc
    return SummaryWriter


def _numbers(tag: str, value: Any) -> dict[str, float]:
    """The numbers in ``value`` (a number, or a dict / list of them, nested) as ``{tag[/key...]: float}``."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return {}
    if isinstance(value, numbers.Real):
        return {tag: float(value)}
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for key, item in value.items():
            out.update(_numbers(f"{tag}/{key}", item))
        return out
    if isinstance(value, (list, tuple)):
        out = {}
        for index, item in enumerate(value):
            out.update(_numbers(f"{tag}/{index}", item))
        return out
    return {}


def epoch_scalars(
    record: Mapping[str, Any], lr_names: list[str], dynamics_names: Mapping[str, list[str]]
) -> dict[str, float]:
    """The scalars of one ``metrics.jsonl`` record, by TensorBoard tag (see the module docstring).

    ``lr_names``: the optimizer's parameter group names, in the order of ``record["lr"]``;
    ``dynamics_names``: each layer's dynamics parameter names, in the order of ``record["dynamics"]``.
    """
    out: dict[str, float] = {}
    for key, value in record.items():
        if key in _NOT_LOGGED:
            continue
        if key == "lr":
            for index, rate in enumerate(value):
                name = lr_names[index] if index < len(lr_names) else str(index)
                out.update(_numbers(f"lr/{name}", rate))
        elif key == "dynamics":
            for layer, means in value.items():
                names = dynamics_names.get(layer, [])
                means = means if isinstance(means, list) else [means]
                for index, mean in enumerate(means):
                    name = names[index] if index < len(names) else f"p{index}"
                    out.update(_numbers(f"dynamics_mean/{layer}/{name}", mean))
        else:
            split, _, rest = key.partition("_")
            out.update(_numbers(f"{split}/{rest}" if split in _SPLITS and rest else key, value))
    return out


@torch.no_grad()
def tap_firing_rates(model: nn.Module, x: Tensor) -> dict[str, float]:
    """Mean spike rate (spikes per neuron and step) of every tapped hidden layer on input ``x [T, B, ...]``,
    keyed by the layer's module name, in evaluation mode (the model's mode is restored after)."""
    from .analysis.silent import tap_layers

    layers = tap_layers(model)
    if not layers:
        return {}
    was_training = model.training
    model.eval()
    try:
        out = model(x)
    finally:
        model.train(was_training)
    return {layer.name: float(spikes.float().mean()) for layer, spikes in zip(layers, out.taps)}


class TensorBoardLog:
    """The TensorBoard event writer of one run (rank 0): :meth:`write_epoch` after every epoch.

    ``purge_step``: the first step this process writes (see the module docstring); earlier
    events in ``folder`` with that step or later are dropped by TensorBoard's reader.
    """

    def __init__(self, folder: str | Path, purge_step: int) -> None:
        writer_class = require_tensorboard()
        self.folder = Path(folder)
        self.writer = writer_class(log_dir=str(self.folder), purge_step=purge_step)

    def write_dynamics(self, model: nn.Module, step: int) -> None:
        """Histograms ``dynamics/LAYER/NAME`` of every learned dynamics parameter over its layer's neurons."""
        for layer, named in _named_dynamics(model).items():
            for name, value in named.items():
                self.writer.add_histogram(f"dynamics/{layer}/{name}", value.detach().float().flatten(), step)

    def write_epoch(
        self, record: Mapping[str, Any], model: nn.Module, lr_names: list[str], firing_rates: Mapping[str, float]
    ) -> None:
        """The scalars of ``record``, the firing rates and the dynamics histograms at step ``record["epoch"]``."""
        step = int(record["epoch"])
        names = {layer: list(named) for layer, named in _named_dynamics(model).items()}
        for tag, value in epoch_scalars(record, lr_names, names).items():
            self.writer.add_scalar(tag, value, step)
        for layer, rate in firing_rates.items():
            self.writer.add_scalar(f"firing_rate/{layer}", rate, step)
        self.write_dynamics(model, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _named_dynamics(model: nn.Module) -> dict[str, dict[str, Tensor]]:
    """The model's learned dynamics by layer and parameter name (the nets' ``named_learned_dynamics``)."""
    named = getattr(model, "named_learned_dynamics", None)
    if named is None:
        from .neurons.base import named_learned_dynamics

        return named_learned_dynamics(model)
    return named()
