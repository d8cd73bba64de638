"""Named data augmentation and normalisation pipelines for image batches (PLIF spec plif.md section 4).

A pipeline is a train-time **augmentation** (random geometric changes, drawn afresh for every
batch) followed by a **normalisation** ``(x - mean) / std`` per channel.  The trainer applies it
per batch to the images ``[B, C, H, W]`` before the encoder (``TrainConfig.augment``, ``spikedyn
train --augment NAME``): training batches are augmented and normalised, every other split
(test, the held-out ``val``, ``spikedyn eval``) is only normalised.  The registry,
:data:`AUGMENTATIONS`:

=================  =================================================================================
name               augmentation (training batches) + normalisation (every split)
=================  =================================================================================
``plif-mnist``     RandomAffine(degrees +-30, translate 0.15, scale 0.85-1.11) + Normalize(0.1307, 0.3081)
``plif-fmnist``    Normalize(0.2860, 0.3530) only
``plif-cifar10``   RandomCrop(32, padding 4) + RandomHorizontalFlip + Normalize((0.4914, 0.4822, 0.4465),
                   (0.2023, 0.1994, 0.2010))
``affine-small``   RandomAffine(degrees +-10, translate 0.1, scale 0.9-1.1), no normalisation
``shift``          RandomAffine(translate 0.1) only (up to +-2.8 pixels on 28 x 28), no normalisation
``none``           nothing (the same as no ``augment``; the PLIF paper's choice for neuromorphic data)
=================  =================================================================================

``affine-small`` and ``shift`` leave the pixel values in ``[0, 1]``, so they suit the rate
(Bernoulli) encoder, which reads a pixel as a firing probability; the ``plif-*`` pipelines
normalise, which suits the direct encoder only.

The transforms are kornia's (``kornia.augmentation``, the optional extra ``pip install
"spikedyn[augment]"``) rather than torchvision's: a torchvision release is built against one
torch release and build (the one matching torch 2.13 ships as a CUDA build that fails to import
next to a CPU build of torch), whereas kornia is pure PyTorch, works with any torch build, and
transforms a whole batch at once on the batch's device.

Matching the authors' torchvision pipeline: the affine transform resamples with the nearest pixel
and fills with 0 (torchvision's defaults; kornia's translation is drawn as a real number of pixels
where torchvision rounds it to whole pixels), the crop pads with zeros and cuts whole-pixel
windows of the image's own size, the flip has probability 0.5, and normalisation comes after the
augmentation (so filled pixels are black, ``-mean / std``, as with ``ToTensor`` then
``Normalize``).

Randomness: the augmentation's draws come from a seed taken from the generator the trainer gives
each epoch (seeded with ``(seed, epoch)``), one seed per batch; kornia draws from the global CPU
generator, which is forked around the call (:func:`torch.random.fork_rng`) and seeded with it.
So a resumed run augments exactly as the uninterrupted run, a run augments the same on the CPU and
on a GPU (the draws stay on the CPU), and the model's own randomness (dropout masks) is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

#: the command that installs kornia, named by every error about it
INSTALL_HINT = 'pip install "spikedyn[augment]"'


class AugmentUnavailableError(ImportError):
    """An augmentation pipeline was asked for but the ``kornia`` package is not installed."""


@dataclass(frozen=True)
class AugmentPipeline:
    """One named pipeline: the training-only augmentation, then the normalisation.

    ``affine``: ``(degrees, translate, (scale_min, scale_max))`` of a random affine transform
    (rotation uniform in ``[-degrees, degrees]``, shift up to ``translate`` times the width / height,
    scale uniform in the range), or None.  ``crop_padding``: pad every side with that many zero
    pixels, then cut a random window of the image's size (0: no crop).  ``hflip``: flip left-right
    with probability 0.5.  ``mean`` / ``std``: one value per channel (empty: no normalisation).
    """

    name: str
    description: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    affine: tuple[float, float, tuple[float, float]] | None = None
    crop_padding: int = 0
    hflip: bool = False

    @property
    def augments(self) -> bool:
        """Whether training batches are changed at random."""
        return self.affine is not None or self.crop_padding > 0 or self.hflip

    @property
    def normalizes(self) -> bool:
        """Whether every batch is normalised (``mean`` / ``std`` given)."""
        return bool(self.mean)


#: spec plif.md section 4, by name (``none`` for the neuromorphic data sets)
AUGMENTATIONS: dict[str, AugmentPipeline] = {
    p.name: p
    for p in (
        AugmentPipeline(
            "plif-mnist", "PLIF MNIST: RandomAffine(+-30 deg, translate 0.15, scale 0.85-1.11) + Normalize(0.1307, 0.3081)",
            mean=(0.1307,), std=(0.3081,), affine=(30.0, 0.15, (0.85, 1.11)),
        ),
        AugmentPipeline("plif-fmnist", "PLIF Fashion-MNIST: Normalize(0.2860, 0.3530) only", mean=(0.2860,), std=(0.3530,)),
        AugmentPipeline(
            "plif-cifar10", "PLIF CIFAR-10: RandomCrop(32, padding 4) + RandomHorizontalFlip + Normalize(mean "
            "(0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010))",
            mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010), crop_padding=4, hflip=True,
        ),
        AugmentPipeline(
            "affine-small", "RandomAffine(+-10 deg, translate 0.1, scale 0.9-1.1), no normalisation (rate encoder)",
            affine=(10.0, 0.1, (0.9, 1.1)),
        ),
        AugmentPipeline("shift", "RandomAffine(translate 0.1) only, no normalisation (rate encoder)",
                        affine=(0.0, 0.1, (1.0, 1.0))),
        AugmentPipeline("none", "no augmentation or normalisation"),
    )
}


def augment_names() -> list[str]:
    """The registered pipeline names, for ``--augment``'s choices."""
    return list(AUGMENTATIONS)


def check_augment(name: str | None) -> str | None:
    """The config value for ``name``: None for None or ``"none"``, the name when registered.

    ``ValueError`` naming the registered pipelines otherwise.  Needs no kornia.
    """
    if name is None:
        return None
    if not isinstance(name, str) or name.lower() not in AUGMENTATIONS:
        raise ValueError(
            f"unknown augment pipeline {name!r} (--augment); choose one of {', '.join(AUGMENTATIONS)}"
        )
    name = name.lower()
    return None if name == "none" else name


def require_kornia(name: str = "augment"):
    """The ``kornia.augmentation`` module; :class:`AugmentUnavailableError` with the install command if missing."""
    try:
        import kornia.augmentation as K
    except ImportError as exc:
        raise AugmentUnavailableError(
            f"--augment {name} needs the optional 'kornia' package, which is not installed: {INSTALL_HINT} "
            f"(or pip install kornia), or train without --augment."
        ) from exc
    return K


class BatchAugmentation:
    """A pipeline made for images of one shape ``[C, H, W]``: call it on a batch ``[B, C, H, W]``.

    ``batch_augmentation(x, train=True, generator=g)`` augments (drawing one seed from ``g``) and
    normalises; ``train=False`` only normalises.  The kornia modules stay on the CPU (their random
    draws too); they transform a batch on any device.
    """

    def __init__(self, pipeline: AugmentPipeline, image_shape: Sequence[int], source: str = "the data") -> None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 3:
            hint = " (load it with --data-option flatten=false)" if len(shape) == 1 else ""
            raise ValueError(
                f"--augment {pipeline.name} transforms images of shape [C, H, W], but {source} gives samples of "
                f"shape {list(shape)}{hint}"
            )
        channels = len(pipeline.mean)
        if pipeline.normalizes and shape[0] != channels:
            raise ValueError(
                f"--augment {pipeline.name} normalises {channels}-channel images, but {source} has {shape[0]} "
                f"channel(s) (shape {list(shape)}); pick the pipeline of this data set"
            )
        K = require_kornia(pipeline.name)
        self.pipeline = pipeline
        self.image_shape = shape
        ops: list[nn.Module] = []
        if pipeline.affine is not None:
            degrees, translate, scale = pipeline.affine
            ops.append(K.RandomAffine(degrees=degrees, translate=(translate, translate), scale=scale,
                                      resample="nearest", padding_mode="zeros", p=1.0))
        if pipeline.crop_padding:
            ops.append(K.RandomCrop(shape[1:], padding=pipeline.crop_padding, fill=0, p=1.0))
        if pipeline.hflip:
            ops.append(K.RandomHorizontalFlip(p=0.5))
        self.augment = nn.Sequential(*ops) if ops else None
        self.normalize = K.Normalize(mean=torch.tensor(pipeline.mean), std=torch.tensor(pipeline.std)) \
            if pipeline.normalizes else None

    def __call__(self, x: Tensor, train: bool, generator: torch.Generator | None = None) -> Tensor:
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"--augment {self.pipeline.name} was made for images {list(self.image_shape)}, got a batch "
                f"{list(x.shape)}"
            )
        if train and self.augment is not None:
            seed = int(torch.randint(0, 2**62, (), generator=generator))
            with torch.random.fork_rng(devices=[]):  # kornia draws from the global CPU generator
                torch.default_generator.manual_seed(seed)
                x = self.augment(x)
        if self.normalize is not None:
            x = self.normalize(x)
        return x


def make_augmentation(
    name: str | None, image_shape: Sequence[int], source: str = "the data", kind: str = "static",
    data_options: dict | None = None,
) -> BatchAugmentation | None:
    """The pipeline ``name`` for samples of ``image_shape`` (None for None / ``none``).

    ``kind`` is the data set's (:class:`~spikedyn.data.SpikeDataset`): a pipeline applies to static
    images only.  ``data_options`` are the loader's: a normalising pipeline refuses data the loader
    normalised already (CIFAR-10's ``normalize=true``).  ``ValueError`` for an unknown name or data
    it cannot transform (flattened images, sequences, another channel count);
    :class:`AugmentUnavailableError` without kornia.
    """
    key = check_augment(name)
    if key is None:
        return None
    pipeline = AUGMENTATIONS[key]
    if pipeline.normalizes and (data_options or {}).get("normalize"):
        raise ValueError(
            f"--augment {key} normalises the images itself, but {source} is loaded normalised already "
            f"(--data-option normalize=true); drop that option"
        )
    if kind != "static":
        raise ValueError(
            f"--augment {key} transforms static images, but {source} is {kind} data (PLIF applies no augmentation "
            f"to neuromorphic data); train it without --augment"
        )
    return BatchAugmentation(pipeline, image_shape, source)
