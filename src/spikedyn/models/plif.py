"""PLIF networks (Fang et al. 2021, spec plif.md section 3): deep spiking conv nets with voting.

Structure, for ``N_down`` stages of ``N_conv`` conv layers each::

    N_down x { N_conv x [Conv2d 3x3 (stride 1, pad 1, no bias) -> BatchNorm2d -> neurons -> tap] -> MaxPool2d(2, 2) }
    -> Flatten -> Dropout -> Linear (no bias) -> neurons -> tap     (one such layer per hidden FC width)
    -> Dropout -> Linear (no bias, voting * C) -> neurons -> Voting (mean of each group of ``voting``)

* Each conv layer is a :class:`~spikedyn.layers.Conv2dLIF` (``bias=False, batch_norm=True``); the
  batch norm is a :class:`~spikedyn.layers.StepBatchNorm`, which in training mode normalises
  each step with that step's batch statistics, as the authors' code does.  The last conv layer
  of a stage pools (``pool="max"``, or ``"avg"`` for the paper's pooling ablation).
* **Static images** (``static=True``, the MNIST / Fashion-MNIST / CIFAR-10 presets): the first
  Conv+BN is the "learnable encoder".  It runs *once*, on the analog image, and its output is
  fed to the first neurons at every step.  The network reads the image repeated over time, as
  the ``direct`` encoder gives it (``[T, B, C, H, W]`` with identical steps; the trainer's
  ``--encoder direct``), computes the first Conv+BN on step 0 only and raises ``ValueError``
  if the steps differ (a Bernoulli-encoded input, say).  ``static=False`` convolves every step.
* **Neuromorphic data** (``static=False``): step ``t`` feeds event frame ``t`` through the whole
  network.
* **Dropout** is :class:`~spikedyn.layers.TimeSharedDropout`: one mask per sample, shared by all
  ``T`` steps, a new one for every batch.  ``dropout`` gives ``p`` before each FC layer (the
  hidden ones, then the output one); ``p = 0`` means no dropout there (CIFAR-10 has none before
  its output layer).
* **Neurons**: PLIF (learnable tau, initial 2) by default; any kind of
  :func:`~spikedyn.neurons.make_neuron` can replace it (``neuron="lif-tau"`` with
  ``neuron_options={"tau": 16}`` for the fixed-tau baselines, ``"2nd-fs"`` for an MDN neuron...),
  the same kind in every layer, each layer with its own parameters (PLIF: one ``a`` per layer).
* **Read-out**: the output layer has ``voting * C`` neurons; the class scores at step ``t`` are
  the means of consecutive groups of ``voting`` neurons (:class:`~spikedyn.layers.Voting`).
  ``NetOutput.spikes`` is that voted output ``[T, B, C]`` and ``NetOutput.rate`` its time
  average ``[B, C]``, so the rate-MSE loss (the authors' code) and the per-step MSE (the paper)
  both apply.  ``NetOutput.taps`` holds the spikes of every hidden spiking layer (each conv
  layer before its pooling, each hidden FC layer), in tap order, so the reward-propagation
  rules and the silent-neuron analysis drive this network like any other.

The networks of the paper's data sets are data, :data:`PLIF_PRESETS`, each with its run settings
(``T``, batch size, learning rate, schedule, data set, encoder and augmentation).  Train one with, e.g.::

    spikedyn train --dataset mnist --data-option flatten=false --model plif --model-option preset=mnist \\
        --encoder direct --steps 8 --batch-size 16 --lr 1e-3 --schedule cosine --cosine-period 64 \\
        --augment plif-mnist

(:meth:`PLIFPreset.train_options` lists those settings for a :class:`~spikedyn.train.TrainConfig`).
The presets of the static image sets carry the paper's augmentation and normalisation (spec
plif.md section 4; :mod:`spikedyn.data.augment`): ``plif-mnist`` (random affine + normalise),
``plif-fmnist`` (normalise), ``plif-cifar10`` (random crop + flip + normalise); the neuromorphic
presets none.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Sequence

from torch import Tensor, nn

from ..layers.time import to_step_shape
from ..layers import FCLIF, Conv2dLIF, SpikingBlock, TimeSharedDropout, Voting
from ..layers.blocks import POOLS
from ..neurons import ParametricLIF
from ..neurons.base import ParameterGroups, learned_dynamics
from .mdn import NetOutput
from .registry import register_model


@dataclass(frozen=True)
class PLIFPreset:
    """One network of spec plif.md section 3 (Table 1 and the authors' code) with its run settings.

    ``fc`` are the hidden FC widths (the output FC has ``voting * classes`` neurons); ``dropout``
    the ``p`` before each FC layer, hidden ones first.  ``steps``, ``batch_size``, ``lr``,
    ``cosine_period``, ``epochs``, ``eval_batch_size`` and ``seed`` are the authors' training settings
    (spec plif.md section 4); ``dataset`` / ``data_options`` / ``encoder`` say how spikedyn feeds it,
    ``augment`` names its augmentation + normalisation pipeline (:data:`spikedyn.data.augment.AUGMENTATIONS`;
    None for the neuromorphic data).
    """

    name: str
    dataset: str
    input_shape: tuple[int, int, int]
    classes: int
    channels: int
    n_conv: int
    n_down: int
    fc: tuple[int, ...]
    dropout: tuple[float, ...]
    static: bool
    steps: int
    eval_batch_size: int
    batch_size: int = 16
    lr: float = 1e-3
    cosine_period: int = 64
    epochs: int = 1024
    seed: int = 2020
    augment: str | None = None

    @property
    def data_options(self) -> dict:
        """Loader options: static images unflattened (``[C, H, W]``); event frames as stored."""
        return {"flatten": False} if self.static else {}

    @property
    def encoder(self) -> str | None:
        """``direct`` for static images (the analog image every step); ``None`` (frames as stored) else."""
        return "direct" if self.static else None

    def train_options(self, **model_options) -> dict:
        """The :class:`~spikedyn.train.TrainConfig` fields of the authors' run of this network.

        ``model_options`` add to ``{"preset": name}``, e.g. ``pool="avg"`` or ``tau=16`` for the
        paper's ablations (the fixed-tau LIF baseline sets the config's ``neuron="lif-tau"`` besides).
        """
        return {
            "dataset": self.dataset, "data_options": self.data_options, "model": "plif",
            "model_options": {"preset": self.name, **model_options}, "steps": self.steps,
            "batch_size": self.batch_size, "eval_batch_size": self.eval_batch_size, "lr": self.lr,
            "lr_dynamics": self.lr, "epochs": self.epochs, "schedule": "cosine",
            "cosine_period": self.cosine_period, "encoder": self.encoder, "loss": "rate-mse", "seed": self.seed,
            "augment": self.augment,
        }


#: The paper's networks (spec plif.md section 3 table; exact widths of the authors' code), by name.
PLIF_PRESETS: dict[str, PLIFPreset] = {
    preset.name: preset
    for preset in (
        PLIFPreset("mnist", "mnist", (1, 28, 28), 10, 128, 1, 2, (2048,), (0.5, 0.5), True, 8, 128,
                   augment="plif-mnist"),
        PLIFPreset("fmnist", "fmnist", (1, 28, 28), 10, 128, 1, 2, (2048,), (0.5, 0.5), True, 8, 256,
                   augment="plif-fmnist"),
        PLIFPreset("cifar10", "cifar10", (3, 32, 32), 10, 256, 3, 2, (2048,), (0.5, 0.0), True, 8, 256,
                   augment="plif-cifar10"),
        PLIFPreset("nmnist", "nmnist-plif", (2, 34, 34), 10, 128, 1, 2, (2048,), (0.5, 0.5), False, 10, 64),
        PLIFPreset("cifar10dvs", "cifar10dvs", (2, 128, 128), 10, 128, 1, 4, (2048,), (0.5, 0.5), False, 20, 16),
        PLIFPreset("dvsgesture", "dvsgesture-plif", (2, 128, 128), 11, 128, 1, 5, (512,), (0.5, 0.5), False, 20, 16),
    )
}

_ALIASES = {
    "fashion-mnist": "fmnist", "nmnist-plif": "nmnist", "dvsgesture-plif": "dvsgesture", "cifar10-dvs": "cifar10dvs",
}


def plif_preset(name: str) -> PLIFPreset:
    """The preset ``name`` (any case; a data set name such as ``nmnist-plif`` names its preset too)."""
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    if key not in PLIF_PRESETS:
        raise ValueError(f"unknown PLIF preset {name!r}; choose one of {', '.join(PLIF_PRESETS)}")
    return PLIF_PRESETS[key]


def _check_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class PLIFNet(ParameterGroups, nn.Module):
    """A PLIF network (see the module docstring); :meth:`from_preset` builds the paper's ones.

    ``input_shape`` is the per-step ``(C, H, W)``; ``fc`` the hidden FC widths (``None``: one
    layer of a quarter of the flattened conv output, the paper's rule); ``dropout`` one ``p``
    for every FC layer or one per FC layer (hidden ones, then the output one).  ``config``
    holds the constructor arguments, so ``PLIFNet(**net.config)`` rebuilds the network.
    """

    def __init__(
        self, input_shape: Sequence[int], classes: int = 10, channels: int = 128, n_conv: int = 1, n_down: int = 2,
        fc: Sequence[int] | None = None, dropout: float | Sequence[float] = 0.5, pool: str = "max",
        neuron: str = "plif", neuron_options: dict | None = None, fast: bool = True, voting: int = 10,
        static: bool = False,
    ) -> None:
        super().__init__()
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"PLIFNet input_shape must be (C, H, W), got {tuple(input_shape)}")
        for name, value in (("classes", classes), ("channels", channels), ("n_conv", n_conv), ("n_down", n_down),
                            ("voting", voting)):
            _check_int(name, value)
        if pool not in POOLS:
            raise ValueError(f"PLIFNet pool must be one of {POOLS}, got {pool!r}")
        options = dict(neuron_options or {})
        self.input_shape = shape
        self.classes = classes

        self.layers = nn.ModuleDict()
        common = dict(classes=classes, neuron=neuron, fast=fast, neuron_options=options)
        in_shape = shape
        index = 0
        for stage in range(n_down):
            for i in range(n_conv):
                index += 1
                last = i == n_conv - 1
                block = Conv2dLIF(
                    in_shape[0], channels, 3, 1, 1, input_size=in_shape[1:], bias=False, batch_norm=True,
                    pool=pool if last else None, static=static and index == 1, **common,
                )
                self.layers[f"conv{index}"] = block
                in_shape = block.out_shape
        flat = math.prod(in_shape)
        widths = [max(1, flat // 4)] if fc is None else [_check_int("fc width", int(w)) for w in fc]
        ps = [float(dropout)] * (len(widths) + 1) if isinstance(dropout, (int, float)) else [float(p) for p in dropout]
        if len(ps) != len(widths) + 1:
            raise ValueError(
                f"dropout needs one p per FC layer ({len(widths)} hidden + the output = {len(widths) + 1}), "
                f"got {list(ps)}"
            )
        for p in ps:
            if not 0.0 <= p < 1.0:
                raise ValueError(f"dropout probabilities must lie in [0, 1), got {list(ps)}")
        features = flat
        for i, (width, p) in enumerate(zip([*widths, voting * classes], ps), start=1):
            if p > 0:
                self.layers[f"drop{i}"] = TimeSharedDropout(p)
            hidden = i <= len(widths)
            kwargs = dict(common) if hidden else {k: v for k, v in common.items() if k != "classes"}
            self.layers[f"fc{i}"] = FCLIF(features, width, hidden=hidden, bias=False, **kwargs)
            features = width
        self.vote = Voting(voting)
        self.static = bool(static)

        self.config = {
            "input_shape": list(shape), "classes": classes, "channels": channels, "n_conv": n_conv,
            "n_down": n_down, "fc": widths, "dropout": ps, "pool": pool, "neuron": neuron, "voting": voting,
            "static": self.static,
        }
        if options:
            self.config["neuron_options"] = options
        self.topology = self._describe()

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "PLIFNet":
        """The network of preset ``name`` (:data:`PLIF_PRESETS`); ``overrides`` replace its arguments."""
        preset = plif_preset(name)
        args = dict(
            input_shape=preset.input_shape, classes=preset.classes, channels=preset.channels, n_conv=preset.n_conv,
            n_down=preset.n_down, fc=preset.fc, dropout=preset.dropout, static=preset.static,
        )
        args.update(overrides)
        return cls(**args)

    def _describe(self) -> str:
        """A compact summary, e.g. ``1x28x28-[128c3]-mp-128c3-mp-do-fc2048-do-fc100-vote10`` (``[...]``: static)."""
        parts = ["x".join(map(str, self.input_shape))]
        for name, layer in self.layers.items():
            if isinstance(layer, Conv2dLIF):
                text = f"{layer.conv.out_channels}c3"
                parts.append(f"[{text}]" if layer.static else text)
                if layer.pool is not None:
                    parts.append("mp" if isinstance(layer.pool, nn.MaxPool2d) else "ap")
            elif isinstance(layer, TimeSharedDropout):
                parts.append("do")
            elif isinstance(layer, FCLIF):
                parts.append(f"fc{layer.fc.out_features}")
        parts.append(f"vote{self.vote.group}")
        return "-".join(parts)

    def blocks(self) -> list[SpikingBlock]:
        """The spiking layers in forward order (conv layers, hidden FC layers, output layer)."""
        return [layer for layer in self.layers.values() if isinstance(layer, SpikingBlock)]

    def adapt_input(self, x: Tensor) -> Tensor:
        """``[T, B, ...]`` with ``prod(input_shape)`` values per step -> ``[T, B, C, H, W]``."""
        return to_step_shape(x, self.input_shape, f"PLIFNet {self.topology}")

    def forward(self, x: Tensor) -> NetOutput:
        """``x`` ``[T, B, ...]`` -> voted rate ``[B, C]``, voted output ``[T, B, C]``, hidden taps."""
        x = self.adapt_input(x)
        taps: list[Tensor] = []
        for layer in self.layers.values():
            if isinstance(layer, SpikingBlock):
                x, spikes = layer(x)
                if layer.tap is not None:
                    taps.append(spikes)
            else:
                x = layer(x)
        voted = self.vote(x)
        return NetOutput(rate=voted.mean(0), spikes=voted, taps=taps)

    # -- parameters and learned dynamics ------------------------------------------------
    def taus(self) -> dict[str, float]:
        """The membrane time constant ``1 / sigmoid(a)`` of every PLIF / LIF layer, keyed by layer name."""
        return {
            name: layer.neuron.tau for name, layer in self.layers.items()
            if isinstance(layer, SpikingBlock) and isinstance(layer.neuron, ParametricLIF)
        }

    def learned_dynamics(self) -> dict[str, Tensor]:
        """A detached copy of every layer's learnable dynamics, keyed by layer name (``conv1``, ``fc1``...).

        PLIF layers give their tau ``1 / sigmoid(a)`` (a 0-d tensor), learnable MDN neurons their
        theta; fixed-tau LIF and frozen neurons give nothing.
        """
        return {name.removeprefix("layers."): value for name, value in learned_dynamics(self).items()}


# ---------------------------------------------------------------------------------------
# The registry entry
# ---------------------------------------------------------------------------------------
def _int_list(name: str, value) -> list[int] | None:
    """``2048``, ``"2048,512"``, ``[2048]`` -> ``[2048, ...]``; ``""`` / ``"none"`` -> ``[]`` (no hidden FC)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().strip("()[]")
        if text.lower() in ("", "none"):
            return []
        try:
            return [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"{name} must be whole numbers separated by commas, got {value!r}") from None
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def _float_list(name: str, value) -> float | list[float] | None:
    if value is None or isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            values = [float(v) for v in value.strip().strip("()[]").split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"{name} must be numbers separated by commas, got {value!r}") from None
        return values[0] if len(values) == 1 else values
    return [float(v) for v in value]


def _options_dict(value) -> dict:
    if value is None:
        return {}
    if isinstance(value, str):  # from the command line: a JSON object
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"neuron_options must be a JSON object such as '{{\"tau\": 16}}', got {value!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"neuron_options must be a mapping, got {value!r}")
    return dict(value)


def infer_plif_input_shape(inputs_shape: Sequence[int], preset: PLIFPreset | None = None) -> tuple[int, int, int]:
    """The ``(C, H, W)`` a PLIF net reads for data of per-step shape ``inputs_shape``.

    ``(C, H, W)`` as given; ``(H, W)`` as one channel; a flat vector as the preset's shape when the
    sizes agree (flat MNIST -> 1x28x28), else as a one-channel square image.
    """
    shape = tuple(int(s) for s in inputs_shape)
    n = math.prod(shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 2:
        return (1, *shape)  # type: ignore[return-value]
    if preset is not None and math.prod(preset.input_shape) == n:
        return preset.input_shape
    side = math.isqrt(n)
    if len(shape) == 1 and side * side == n:
        return (1, side, side)
    raise ValueError(
        f"cannot tell how data of per-step shape {list(shape)} feeds a PLIF net; pass input_shape=C,H,W "
        f"(image data sets load [C, H, W] with --data-option flatten=false)"
    )


@register_model("plif", PLIFNet)
def build_plif(
    inputs_shape: Sequence[int], classes: int, preset: str | None = None, channels: int | None = None,
    n_conv: int | None = None, n_down: int | None = None, fc: Sequence[int] | str | int | None = None,
    dropout: float | Sequence[float] | str | None = None, pool: str = "max", neuron: str = "plif",
    neuron_options: dict | str | None = None, tau: float | None = None, fast: bool = True,
    input_shape: Sequence[int] | str | None = None, voting: int = 10, static: bool | None = None,
) -> PLIFNet:
    """A :class:`PLIFNet` for data of per-step shape ``inputs_shape`` with ``classes`` classes.

    ``preset`` (a :data:`PLIF_PRESETS` name or its data set's name) supplies ``channels``, ``n_conv``,
    ``n_down``, ``fc``, ``dropout`` and ``static``; explicit options replace them.  Without a preset:
    128 channels, ``n_conv = 1``, ``n_down = 2``, one hidden FC of a quarter of its input, dropout
    0.5, ``static=False``.  ``tau`` is the initial (PLIF) or fixed (``lif-tau``) time constant,
    a shortcut for ``neuron_options={"tau": tau}``.  The per-step input shape is ``input_shape``
    if given, else the data's (:func:`infer_plif_input_shape`); classes come from the data, so
    the output layer has ``voting * classes`` neurons.  List options also take the command
    line's strings (``fc=2048,512``, ``input_shape=2,64,64``, ``neuron_options={"tau": 16}``).
    """
    spec = plif_preset(preset) if preset is not None else None
    options = _options_dict(neuron_options)
    if tau is not None:
        if neuron.lower() not in ("plif", "lif-tau"):
            raise ValueError(f"tau applies to the plif and lif-tau neurons, not {neuron!r}")
        options["tau"] = float(tau)
    shape = _int_list("input_shape", input_shape)
    shape = tuple(shape) if shape is not None else infer_plif_input_shape(inputs_shape, spec)
    have, want = math.prod(int(s) for s in inputs_shape), math.prod(shape)
    if have != want:
        raise ValueError(
            f"the plif net reads {want} values per step (input shape {list(shape)}), "
            f"but the data has per-step shape {list(inputs_shape)} ({have} values)"
        )

    def pick(value, preset_value, default):
        if value is not None:
            return value
        return preset_value if spec is not None else default

    fc_widths = _int_list("fc", fc)
    return PLIFNet(
        shape, classes,
        channels=pick(channels, spec and spec.channels, 128),
        n_conv=pick(n_conv, spec and spec.n_conv, 1),
        n_down=pick(n_down, spec and spec.n_down, 2),
        fc=pick(fc_widths, spec and list(spec.fc), None),
        dropout=pick(_float_list("dropout", dropout), spec and list(spec.dropout), 0.5),
        pool=pool, neuron=neuron, neuron_options=options, fast=fast, voting=voting,
        static=bool(pick(static, spec and spec.static, False)),
    )
