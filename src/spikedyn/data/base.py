"""The data interface every data set module implements.

A loader reads the real on-disk files under a data root and returns a :class:`SpikeDataset`:
two ``TensorDataset`` splits plus what the trainer needs to feed the network.

* ``kind="static"``: samples ``x[n]`` have shape ``feature_shape`` (e.g. ``[784]`` or
  ``[1, 28, 28]``), values in [0, 1]; an encoder (Bernoulli rate, direct repeat) turns a
  batch into a ``[T, B, ...]`` sequence.
* ``kind="sequence"``: samples are already per-step, ``x[n]`` of shape ``[T, *feature_shape]``
  (event frames, spectrogram frames); the trainer only moves time to the front.

Targets are class indices ``int64 [N]`` (``target="class"``), multi-hot vectors
``[N, C]`` (``target="multi_hot"``, NETtalk) or per-step class indices ``[N, T]``
(``target="frame_class"``, TIMIT phones).  Class indices outside ``0 .. num_classes - 1`` are an
error: the readers check the labels of their files (naming the file, :func:`check_labels`), and
:func:`load_dataset` checks every loader's result once more.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import TensorDataset

#: environment variable naming the data root (the folder holding ``MNIST/``, ``fsdd/``, ...).
DATA_ROOT_ENV = "SPIKEDYN_DATA"


class DataFileError(FileNotFoundError):
    """A data file is missing, truncated or corrupt. The message says which file and the fix."""


@dataclass
class SpikeDataset:
    name: str
    train: TensorDataset
    test: TensorDataset
    num_classes: int
    kind: str = "static"  # "static" | "sequence"
    encoder: str = "rate"  # default encoder for static data: "rate" | "direct"
    target: str = "class"  # "class" | "multi_hot" | "frame_class"
    source: str = ""  # where the files were found
    notes: dict = field(default_factory=dict)
    metric: str = "accuracy"  # score of the read-out (spikedyn.metrics): "accuracy" | "nettalk-cosine"
    val: TensorDataset | None = None  # held out of train to select an epoch (holdout_validation)

    @property
    def feature_shape(self) -> tuple[int, ...]:
        """Shape of one sample at one time step."""
        shape = tuple(self.train.tensors[0].shape[1:])
        return shape[1:] if self.kind == "sequence" else shape

    @property
    def steps(self) -> int | None:
        """Number of time steps stored per sample (sequence data), else None."""
        return int(self.train.tensors[0].shape[1]) if self.kind == "sequence" else None

    def summary(self) -> dict:
        """Counts, shapes and class balance, as printed by ``spikedyn data info``."""
        out = {
            "name": self.name,
            "source": self.source,
            "kind": self.kind,
            "target": self.target,
            "num_classes": self.num_classes,
        }
        if self.metric != "accuracy":
            out["metric"] = self.metric
        for split_name, split in (("train", self.train), ("test", self.test)):
            x, y = split.tensors[0], split.tensors[1]
            info = {"count": len(split), "x_shape": list(x.shape), "x_dtype": str(x.dtype).replace("torch.", "")}
            if self.target == "class":
                info["per_class"] = torch.bincount(y, minlength=self.num_classes).tolist()
            elif self.target == "frame_class":  # frames per class, padding frames included
                info["per_class_frames"] = torch.bincount(y.reshape(-1), minlength=self.num_classes).tolist()
            elif self.target == "multi_hot":  # samples with each output unit on
                info["per_unit"] = [int(v) for v in (y > 0).sum(0).tolist()]
            out[split_name] = info
        out.update(self.notes)
        return out


def static_view(dataset: SpikeDataset) -> SpikeDataset:
    """A sequence data set seen as static samples: ``[N, T, *F] -> [N, T * prod(F)]``.

    MDN's "non-sequential" spoken digits (spec mdn.md section 6 [A]): the whole spectrogram is
    one static sample, fed at every step through an encoder (Bernoulli rate by default).
    Static data sets are returned unchanged.
    """
    if dataset.kind != "sequence":
        return dataset
    flat = [TensorDataset(s.tensors[0].flatten(1), *s.tensors[1:]) for s in (dataset.train, dataset.test)]
    if dataset.target == "frame_class":
        raise ValueError(f"{dataset.name} has per-frame targets; it cannot be seen as static samples")
    return replace(
        dataset, train=flat[0], test=flat[1], kind="static", encoder="rate",
        notes={**dataset.notes, "input_view": f"static: {dataset.steps} steps x {list(dataset.feature_shape)} flattened"},
    )


def holdout_validation(dataset: SpikeDataset, fraction: float) -> SpikeDataset:
    """Hold out the last ``fraction`` of every class's training samples (file order) as ``val``.

    The PLIF authors' accuracy-B protocol (spec common.md section 8): per class, the first
    ``round((1 - fraction) * n_c)`` samples train and the others validate; the epoch with the best
    validation score is the one whose test score is reported.  Needs one class per sample
    (``target="class"``); ``fraction`` in (0, 1).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction!r}")
    if dataset.target != "class":
        raise ValueError(
            f"{dataset.name} has {dataset.target} targets; a per-class validation split needs one class per sample"
        )
    x, y, *rest = dataset.train.tensors
    train_idx, val_idx = [], []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()  # ascending: file order
        keep = int(round((1.0 - fraction) * len(idx)))
        if keep == 0 or keep == len(idx):
            raise ValueError(
                f"{dataset.name}: class {c} has {len(idx)} training sample(s), too few to hold out "
                f"{100 * fraction:g} % for validation; use a larger fraction or more data"
            )
        train_idx.append(idx[:keep])
        val_idx.append(idx[keep:])
    tr, va = torch.cat(train_idx).sort().values, torch.cat(val_idx).sort().values
    pick = lambda idx: TensorDataset(*(t[idx] for t in (x, y, *rest)))  # noqa: E731
    notes = {**dataset.notes, "validation": f"last {100 * fraction:g} % of each class held out ({len(va)} samples)"}
    return replace(dataset, train=pick(tr), val=pick(va), notes=notes)


_LOADERS: dict[str, Callable[..., SpikeDataset]] = {}


def register_dataset(name: str) -> Callable[[Callable[..., SpikeDataset]], Callable[..., SpikeDataset]]:
    """Decorator: make ``loader(root: Path, **options) -> SpikeDataset`` available by name."""

    def wrap(loader: Callable[..., SpikeDataset]) -> Callable[..., SpikeDataset]:
        _LOADERS[name] = loader
        return loader

    return wrap


def dataset_names() -> list[str]:
    return sorted(_LOADERS)


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$SPIKEDYN_DATA``, else ``./data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).expanduser() if env else Path("data")


def load_dataset(
    name: str, root: str | os.PathLike | None = None, *, progress: bool | None = None, **options
) -> SpikeDataset:
    """Load a registered data set by name from the data root (see :func:`resolve_root`).

    ``options`` go to the loader; an unknown one is an error naming the loader's options.
    ``progress`` switches the loader's progress bar, for loaders that have one.
    """
    try:
        loader = _LOADERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(dataset_names())}") from None
    accepted = [p for p in inspect.signature(loader).parameters if p != "root"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"data set {name!r} has no option {', '.join(unknown)}; its options: {', '.join(accepted) or 'none'}")
    if progress is not None and "progress" in accepted:
        options["progress"] = progress
    dataset = loader(resolve_root(root), **options)
    check_class_targets(dataset)
    return dataset


def find_first(candidates: list[Path]) -> Path | None:
    """The first existing path among ``candidates``."""
    return next((p for p in candidates if p.exists()), None)


def missing_file(path: Path, dataset: str, obtain: str, layout: str) -> DataFileError:
    """The error for a missing data file: which file, where to get it, where to put it."""
    return DataFileError(
        f"{dataset}: required file not found: {path}\n"
        f"  Obtain it from: {obtain}\n"
        f"  Put it here:    {layout}\n"
        f"  (the data root is set by --data-root or ${DATA_ROOT_ENV}; default ./data)"
    )


def corrupt_file(path: Path, dataset: str, problem: str, obtain: str) -> DataFileError:
    """The error for a truncated or corrupt data file."""
    return DataFileError(
        f"{dataset}: file is truncated or corrupt: {path}\n"
        f"  Problem: {problem}\n"
        f"  Fix: download it again from {obtain} and replace the file."
    )


def check_labels(labels: np.ndarray, num_classes: int, path: Path, dataset: str, obtain: str) -> None:
    """Every label of the file ``path`` must be a class index ``0 .. num_classes - 1``."""
    labels = np.asarray(labels)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        where = np.flatnonzero(bad.reshape(-1))
        raise corrupt_file(
            Path(path), dataset,
            f"label {labels.reshape(-1)[where[0]]} at position {where[0]} is not one of the {num_classes} classes "
            f"0..{num_classes - 1} ({len(where)} of {labels.size} labels are out of range)", obtain,
        )


def check_class_targets(dataset: SpikeDataset) -> None:
    """Class targets of both splits must lie in ``0 .. num_classes - 1`` (any loader)."""
    if dataset.target != "class":
        return
    for split in ("train", "test"):
        y = getattr(dataset, split).tensors[1]
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= dataset.num_classes):
            bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
            raise DataFileError(
                f"{dataset.name}: the {split} split holds the label {bad}, outside the {dataset.num_classes} classes "
                f"0..{dataset.num_classes - 1}; the files under {dataset.source or 'the data root'} are damaged or "
                f"not this data set: replace them with a fresh copy."
            )


def format_summary(dataset: SpikeDataset) -> str:
    """Readable text of :meth:`SpikeDataset.summary`: counts, shapes, class balance, file location."""
    info = dataset.summary()
    lines = [
        f"{info['name']}  ({info['kind']} data, {info['num_classes']} classes, target: {info['target']})",
        f"  files: {info['source']}",
    ]
    if dataset.kind == "sequence":
        lines.append(f"  per sample: {dataset.steps} steps x {list(dataset.feature_shape)}")
    else:
        lines.append(f"  per sample: {list(dataset.feature_shape)} (encoded into T steps by '{dataset.encoder}')")
    for split in ("train", "test"):
        s = info[split]
        lines.append(f"  {split:5s}: {s['count']:6d} samples, x {s['x_shape']} {s['x_dtype']}")
        for key, label in (("per_class", "per class"), ("per_class_frames", "frames per class"), ("per_unit", "samples per unit")):
            if key in s:
                lines.append(f"         {label}: {s[key]}")
    extra = {k: v for k, v in info.items() if k not in ("name", "source", "kind", "target", "num_classes", "train", "test")}
    for key, value in extra.items():
        lines.append(f"  {key}: {value}")
    return "\n".join(lines)
