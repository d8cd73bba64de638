"""A trained run loaded for an analysis: its model, settings and data, and a short name of its network."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn


@dataclass
class LoadedRun:
    """``model`` (on ``device``), its training ``config`` (progress off, the evaluation batch size
    asked), the checkpoint's ``epoch``, the run's data set as it trained on it, and ``network``
    (a conv net's topology string, else ``inputs-hidden-classes``)."""

    run: str
    model: nn.Module
    config: object
    epoch: int
    dataset: object
    device: torch.device
    network: str


@dataclass
class RunCurve:
    """What every analysis curve of one trained run names: the run, its legend label, model, network,
    learning rule, data set and epoch; subclasses add their points."""

    run: str
    label: str
    model: str
    network: str
    rule: str
    dataset: str
    epoch: int

    def to_dict(self) -> dict:
        return asdict(self)


def network_name(model: nn.Module) -> str:
    """A conv net's topology string, or ``inputs-hidden-classes`` from the model's config."""
    mc = getattr(model, "config", {}) or {}
    return getattr(model, "topology", None) or "-".join(str(mc[k]) for k in ("inputs", "hidden", "classes") if k in mc)


def run_name(run: str | os.PathLike) -> str:
    """A run's short name: its folder's name (for ``RUN/checkpoint.pt`` too), or a kept log's file
    name without its suffix (``logs/a.jsonl`` -> ``a``)."""
    path = Path(os.path.normpath(run))
    if path.suffix == ".pt":
        return path.parent.name
    return path.stem if path.is_file() else path.name


def load_run(
    run: str | os.PathLike, data_root: str | None = None, device: str = "cpu", batch_size: int | None = None,
) -> LoadedRun:
    """Load a run directory (or its ``checkpoint.pt``) and its data (``data_root`` overrides the saved root)."""
    from ..batching import run_dataset
    from ..train import load_checkpoint

    model, config, ckpt = load_checkpoint(run, device=str(device))
    config = replace(config, progress=False, eval_batch_size=batch_size or config.eval_batch_size)
    dataset = run_dataset(config, data_root)
    return LoadedRun(str(run), model, config, int(ckpt.get("epoch", 0)), dataset, torch.device(device),
                     network_name(model))
