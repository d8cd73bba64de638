"""Batches of a run: a data set split turned into time-major inputs ``[T, B, ...]`` and targets.

Every epoch draws its shuffling, augmentation and encoding randomness from a generator seeded with
``(seed, epoch, purpose)`` (:func:`epoch_generator`), so a resumed run draws exactly what the
uninterrupted run would have.  On a GPU a split that fits (:data:`RESIDENT_SHARE` of the free
memory) is copied there once, and the encoder draws from a generator on the device seeded from the
epoch's CPU generator (:func:`device_generator`).  :func:`run_dataset` loads a run's data set as the
run sees it (:func:`prepare_dataset`: the static view, the held-out validation split).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .data import SpikeDataset, holdout_validation, load_dataset, static_view
from .data.augment import make_augmentation
from .data.base import check_class_targets
from .encoding import make_encoder, to_time_major
from .readout import frame_batch

if TYPE_CHECKING:
    from .train import TrainConfig

def epoch_generator(seed: int, epoch: int, purpose: int = 0) -> torch.Generator:
    """The generator for one epoch's randomness (0: shuffling/encoding, 1: evaluation)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch * 7 + purpose)


#: a data set is kept on the GPU when all of a split's tensors take at most this share of its free memory
RESIDENT_SHARE = 0.25


def fits_on_device(tensors: tuple[Tensor, ...], device: torch.device) -> bool:
    """Whether ``tensors`` may live on ``device`` for the whole run: a CUDA device with at least
    ``1 / RESIDENT_SHARE`` times their size free (the rest is the training's own memory)."""
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return sum(t.numel() * t.element_size() for t in tensors) <= RESIDENT_SHARE * free


def device_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """The generator the encoder draws from on ``device``: ``generator`` itself on the CPU; on another
    device a generator there, seeded by one draw from ``generator`` (so the encoding is reproducible
    per seed, epoch and device, and the uniform draws never cross to the host)."""
    if device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


class Batcher:
    """Turns a :class:`SpikeDataset` split into ``[T, B, ...]`` inputs and targets.

    Frame-labelled data (``target="frame_class"``): each batch is cut to its longest sequence (at
    most ``steps``; the lengths are the split's third tensor when it has one) and the labels of
    padded frames become :data:`~spikedyn.readout.PAD_LABEL` (:func:`~spikedyn.readout.frame_batch`).
    Whether the model can train on such labels is the read-out's question (:mod:`spikedyn.readout`).
    """

    def __init__(self, dataset: SpikeDataset, config: TrainConfig, device: torch.device) -> None:
        self.dataset = dataset
        self.steps = config.steps
        self.device = device
        self._resident: dict[str, tuple[Tensor, ...] | None] = {}  # splits copied to the GPU once
        self.encoder = make_encoder(config.encoder or dataset.encoder, config.alpha)
        # sequence data is fed as stored unless an encoder is asked for (e.g. Bernoulli spikes from
        # TIDigits band energies, spec mdn.md section 3 [A] option)
        self.sequence_encoder = make_encoder(config.encoder, config.alpha) if config.encoder == "rate" else None
        self.frames = dataset.target == "frame_class"
        # augment / normalise the images [B, C, H, W] of each batch (training batches only augmented)
        self.augmentation = make_augmentation(
            config.augment, dataset.feature_shape, dataset.name, dataset.kind, config.data_options
        )
        if dataset.kind == "sequence" and dataset.steps is not None and config.steps > dataset.steps:
            raise ValueError(
                f"{dataset.name} stores {dataset.steps} steps per sample; --steps {config.steps} asks for more"
            )

    def split_tensors(self, split: str) -> tuple[Tensor, ...]:
        """A split's tensors, on the training device when they fit there (:func:`fits_on_device`), else
        where the data set keeps them (each batch is then copied over)."""
        tensors = getattr(self.dataset, split).tensors
        if self.device.type == "cpu":
            return tensors
        if split not in self._resident:
            self._resident[split] = (
                tuple(t.to(self.device) for t in tensors) if fits_on_device(tensors, self.device) else None
            )
        return self._resident[split] or tensors

    def batches(
        self, split: str, batch_size: int, generator: torch.Generator, shuffle: bool,
        start_batch: int = 0, generator_states: dict | None = None,
    ):
        """``(x [T, B, ...], y)`` batches of a split on the training device.

        ``generator`` (a CPU generator) draws the order and the augmentations; on a GPU the encoder
        draws from a generator on the device seeded from it (:func:`device_generator`), so that a
        batch is encoded where it is used, and a run is reproducible per seed and device.

        Continuing an epoch: ``start_batch`` skips the first batches of the same order, and
        ``generator_states`` (what :meth:`generator_states` read after the last batch done) puts the
        generators where they were, so the rest of the epoch draws exactly what it would have.
        """
        tensors = self.split_tensors(split)
        x_all, y_all = tensors[:2]
        lengths = tensors[2] if self.frames and len(tensors) > 2 else None
        n = len(x_all)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        order = order.to(x_all.device)
        encoding = device_generator(generator, self.device)
        self._generators = (generator, encoding)
        if generator_states is not None:
            generator.set_state(generator_states["generator"])
            if encoding is not generator and "encoding" in generator_states:  # (saved on another device: none)
                encoding.set_state(generator_states["encoding"])
        for start in range(start_batch * batch_size, n, batch_size):
            idx = order[start : start + batch_size]
            x, y = x_all[idx], y_all[idx]
            if self.frames:  # cut to the batch's longest sequence, padded frames labelled PAD_LABEL
                x, y = frame_batch(x, y, None if lengths is None else lengths[idx], self.steps)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.augmentation is not None:
                x = self.augmentation(x, split == "train", generator)
            yield self.encode(x, encoding), y

    def generator_states(self) -> dict:
        """The states of the last :meth:`batches` call's generators (order and augmentation; encoding)."""
        generator, encoding = self._generators
        states = {"generator": generator.get_state()}
        if encoding is not generator:
            states["encoding"] = encoding.get_state()
        return states

    def encode(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """``x`` encoded on its own device with ``generator`` (which must live there)."""
        if self.dataset.kind == "sequence":
            seq = to_time_major(x[:, : self.steps].float())
            if self.sequence_encoder is None:
                return seq
            # x_t = 1[p_t > alpha u_t]: one fresh draw per step and value (the encoder's T = 1)
            return self.sequence_encoder(seq, 1, generator=generator)[0]
        return self.encoder(x, self.steps, generator=generator)

    def num_batches(self, split: str, batch_size: int) -> int:
        return math.ceil(len(getattr(self.dataset, split)) / batch_size)


def prepare_dataset(dataset: SpikeDataset, config: TrainConfig) -> SpikeDataset:
    """The data set as the run sees it (``input_view="static"`` flattens sequence samples;
    ``validation`` > 0 holds out that fraction of each class's training samples as ``val``).

    Class targets outside ``0 .. num_classes - 1`` are an error (also for a data set built in Python).
    """
    check_class_targets(dataset)
    dataset = static_view(dataset) if config.input_view == "static" else dataset
    return holdout_validation(dataset, config.validation) if config.validation > 0 else dataset


def run_dataset(config: TrainConfig, data_root: str | None = None) -> SpikeDataset:
    """Load the data set of a run (``data_root`` overrides the saved one) as the run sees it."""
    dataset = load_dataset(
        config.dataset, data_root or config.data_root, progress=config.progress, **config.data_options
    )
    return prepare_dataset(dataset, config)
