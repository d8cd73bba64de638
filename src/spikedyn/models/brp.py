"""BRP's convolutional SNNs (Zhang et al., spec brp.md sections 2-3).

A network is written as the authors' topology string, layer after layer, joined by ``_``:

* ``CONV_c_k_s_p``: :class:`~spikedyn.layers.Conv2dLIF`, Conv2d with ``c`` channels, ``k x k``
  kernel, stride ``s``, padding ``p`` (bias) -> neurons -> tap -> ``AvgPool2d(2, 2)``;
* ``C_c_k_s_p``: :class:`~spikedyn.layers.Conv1dLIF`, the same with Conv1d and ``AvgPool1d(k)``
  (kernel = stride = the conv kernel size);
* ``FC_n``: :class:`~spikedyn.layers.FCLIF` with ``n`` neurons; the last one is the output layer
  (no tap), every earlier one is hidden (tap).  The conv output is flattened before the first FC.

e.g. ``CONV_32_5_1_2_FC_1000_FC_10``.  Every layer uses the same neuron kind, by default BRP's
decay-LIF cell (``lif-identity``: ``V_t = 0.2 V_{t-1} (1 - S_{t-1}) + W x_t + b``, fire on
``V_t > 0.5``); any kind of :func:`~spikedyn.neurons.make_neuron` can replace it (``neuron=``).
The read-out is the output rate ``r = count / T`` (:class:`~spikedyn.models.mdn.NetOutput`).

The Table II networks are data (:data:`BRP_PRESETS`), with their per-step input shape, ``T`` and
encoder scale.

**Input adapter.**  The network takes ``[T, B, ...]`` with any trailing shape holding
``prod(input_shape)`` values per step and reshapes each step to ``input_shape``
(:meth:`BRPNet.adapt_input`): flat MNIST ``[T, B, 784]`` -> ``[T, B, 1, 28, 28]``, DvsGesture
frames ``[T, B, 1024]`` -> ``[T, B, 1, 32, 32]``.  For the spoken digits:

* 1D (``tidigits-1d`` / ``fsdd-1d``): the data set is a sequence ``[N, 30, 30]``; the trainer
  takes its first ``T`` rows and puts time first, ``[T, B, 30]``, and step ``t``'s 30 values
  become the Conv1d input ``[B, 1, 30]`` (one channel of length 30), i.e.
  ``[T, B, 30] -> [T, B, 1, 30]``, folded to ``[T*B, 1, 30]`` for the convolution.  With the
  loaders' default ``time_axis="frames"`` row ``t`` is frame ``t`` (its 30 mel-band energies);
  ``time_axis="bands"`` stores the transpose, so step ``t`` takes column ``t`` of the frame-major
  array, one band over 30 frames, as the authors' code does (spec common.md section 7, axis
  quirk).  With ``T = 20`` only 20 of the 30 rows are seen.
* 2D (``tidigits-2d`` / ``fsdd-2d``): the whole spectrogram is one static sample (the trainer's
  ``input_view="static"``, ``[N, 900]``) encoded afresh every step, ``[T, B, 900] -> [T, B, 1, 30, 30]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

from torch import Tensor, nn

from ..layers.time import to_step_shape
from ..layers import Conv1dLIF, Conv2dLIF, FCLIF, SpikingBlock
from ..neurons.base import ParameterGroups
from .mdn import NetOutput
from .registry import register_model


class TopologyError(ValueError):
    """A malformed BRP topology string (the message says where and what is expected)."""


@dataclass(frozen=True)
class ConvLayer:
    """``CONV_c_k_s_p`` (``dims = 2``) or ``C_c_k_s_p`` (``dims = 1``)."""

    dims: int
    channels: int
    kernel: int
    stride: int
    padding: int

    def token(self) -> str:
        name = "CONV" if self.dims == 2 else "C"
        return f"{name}_{self.channels}_{self.kernel}_{self.stride}_{self.padding}"


@dataclass(frozen=True)
class FCLayer:
    """``FC_n``."""

    units: int

    def token(self) -> str:
        return f"FC_{self.units}"


Layer = Union[ConvLayer, FCLayer]

_KEYWORDS = {"CONV": ("Conv2d", ("channels", "kernel", "stride", "padding")),
             "C": ("Conv1d", ("channels", "kernel", "stride", "padding")),
             "FC": ("fully connected", ("units",))}
_GRAMMAR = "layers CONV_c_k_s_p (Conv2d), C_c_k_s_p (Conv1d) or FC_n joined by '_', e.g. CONV_32_5_1_2_FC_1000_FC_10"


def parse_topology(text: str) -> tuple[Layer, ...]:
    """The layers of a topology string (keywords case-insensitive).

    Rules: at least one layer; conv layers (all of one kind, 1-D or 2-D) come before the FC
    layers; the last layer is an FC layer (the output); channels, kernel, stride and units
    are >= 1, padding >= 0.  Raises :class:`TopologyError` otherwise.
    """
    if not isinstance(text, str) or not text.strip():
        raise TopologyError(f"empty topology {text!r}; expected {_GRAMMAR}")
    tokens = text.strip().split("_")
    layers: list[Layer] = []
    i = 0
    while i < len(tokens):
        word = tokens[i].upper()
        if word not in _KEYWORDS:
            raise TopologyError(f"topology {text!r}: unknown layer {tokens[i]!r} (token {i + 1}); expected {_GRAMMAR}")
        kind, names = _KEYWORDS[word]
        values = tokens[i + 1 : i + 1 + len(names)]
        if len(values) < len(names) or not all(v.isdigit() for v in values):
            got = "_".join(tokens[i : i + 1 + len(names)])
            raise TopologyError(
                f"topology {text!r}: {word} ({kind}) takes {len(names)} whole number(s) "
                f"({', '.join(names)}), got {got!r}"
            )
        numbers = [int(v) for v in values]
        for name, value in zip(names, numbers):
            low = 0 if name == "padding" else 1
            if value < low:
                raise TopologyError(f"topology {text!r}: {word} {name} must be >= {low}, got {value}")
        if word == "FC":
            layers.append(FCLayer(numbers[0]))
        else:
            if any(isinstance(layer, FCLayer) for layer in layers):
                raise TopologyError(f"topology {text!r}: conv layer {word} after an FC layer; conv layers come first")
            layer = ConvLayer(2 if word == "CONV" else 1, *numbers)
            if layers and layers[0].dims != layer.dims:
                raise TopologyError(f"topology {text!r}: mixes Conv1d (C) and Conv2d (CONV) layers")
            layers.append(layer)
        i += 1 + len(names)
    if not isinstance(layers[-1], FCLayer):
        raise TopologyError(f"topology {text!r} must end with the output layer FC_<classes>")
    return tuple(layers)


def format_topology(layers: Sequence[Layer]) -> str:
    """The canonical topology string of ``layers`` (inverse of :func:`parse_topology`)."""
    return "_".join(layer.token() for layer in layers)


@dataclass(frozen=True)
class BRPPreset:
    """One network of the paper's Table II: topology, per-step input shape, ``T``, encoder scale and data view."""

    topology: str
    input_shape: tuple[int, ...]
    steps: int
    alpha: float
    data: str

    @property
    def classes(self) -> int:
        return parse_topology(self.topology)[-1].units


_SPOKEN_1D = BRPPreset(
    "C_100_3_1_1_FC_1000_FC_10", (1, 30), 20, 0.1,
    "sequence [N, 30, 30]: step t feeds row t as a 1x30 vector (time_axis='bands' reproduces the authors' code)",
)
_SPOKEN_2D = BRPPreset(
    "CONV_32_5_1_2_FC_1000_FC_10", (1, 30, 30), 20, 0.1,
    "static view (input_view='static'): the whole 1x30x30 spectrogram, Bernoulli-encoded afresh every step",
)

#: BRP Table II (spec brp.md section 3), by name.
BRP_PRESETS: dict[str, BRPPreset] = {
    "mnist": BRPPreset(
        "CONV_32_5_1_2_FC_1000_FC_10", (1, 28, 28), 20, 1.0,
        "images in [0, 1], Bernoulli rate (alpha 1) with fresh noise every step",
    ),
    "cifar10": BRPPreset(
        "CONV_32_5_1_2_FC_1000_FC_10", (3, 32, 32), 20, 1.0,
        "mean/std-normalised images, Bernoulli rate (alpha 1); negative values never spike",
    ),
    "tidigits-1d": _SPOKEN_1D,
    "fsdd-1d": _SPOKEN_1D,
    "tidigits-2d": _SPOKEN_2D,
    "fsdd-2d": _SPOKEN_2D,
    "dvsgesture": BRPPreset(
        "CONV_32_5_1_2_FC_1000_FC_11", (1, 32, 32), 30, 1.0,
        "binary 32x32 event frames, frame t at step t (the first T of 100)",
    ),
}


def resolve_topology(topology: str) -> tuple[str, BRPPreset | None]:
    """``(topology string, preset)`` for a preset name (any case) or ``(topology, None)`` for a string."""
    preset = BRP_PRESETS.get(topology.lower()) if isinstance(topology, str) else None
    return (preset.topology, preset) if preset is not None else (topology, None)


def infer_input_shape(topology: str, feature_shape: Sequence[int]) -> tuple[int, ...]:
    """The per-step input shape a topology should see for data of per-step shape ``feature_shape``.

    Conv2d first: ``(C, H, W)`` as given, ``(H, W)`` as one channel, a flat ``F = s*s`` as a
    1 x s x s image.  Conv1d first: ``(C, L)`` as given, flat ``L`` as one channel.  FC first:
    the flat vector.  Anything else needs an explicit ``input_shape``.
    """
    first = parse_topology(topology)[0]
    shape = tuple(int(s) for s in feature_shape)
    n = math.prod(shape)
    if isinstance(first, FCLayer):
        return (n,)
    if first.dims == 2:
        if len(shape) == 3:
            return shape
        if len(shape) == 2:
            return (1, *shape)
        side = math.isqrt(n)
        if len(shape) == 1 and side * side == n:
            return (1, side, side)
    else:
        if len(shape) == 2:
            return shape
        if len(shape) == 1:
            return (1, n)
    raise ValueError(
        f"cannot tell how data of per-step shape {list(shape)} feeds the first layer {first.token()} of {topology!r}; "
        f"pass input_shape=({'C, H, W' if first.dims == 2 else 'C, L'})"
    )


class BRPNet(ParameterGroups, nn.Module):
    """A BRP network from a topology string or a :data:`BRP_PRESETS` name.

    ``input_shape`` is the per-step shape the first layer reads (``(C, H, W)`` before a Conv2d,
    ``(C, L)`` before a Conv1d, ``(F,)`` before an FC layer); a preset supplies its own.
    ``classes``, when given, must equal the output width of the topology.  ``neuron`` and
    ``neuron_options`` go to every layer's :func:`~spikedyn.neurons.make_neuron`.

    ``forward([T, B, ...]) -> NetOutput(rate, spikes, taps)``: ``taps`` holds the un-detached
    spikes of every hidden layer (before pooling), in the order of
    :func:`~spikedyn.layers.spike_taps`.  ``config`` holds the constructor arguments (topology
    as its canonical string), so ``BRPNet(**net.config)`` rebuilds the network.
    """

    def __init__(
        self, topology: str, input_shape: Sequence[int] | None = None, classes: int | None = None,
        neuron: str = "lif-identity", fast: bool = True, neuron_options: dict | None = None,
    ) -> None:
        super().__init__()
        text, preset = resolve_topology(topology)
        layers = parse_topology(text)
        if input_shape is None:
            if preset is None:
                raise ValueError(f"BRPNet({topology!r}) needs input_shape (a preset name supplies its own)")
            input_shape = preset.input_shape
        shape = tuple(int(s) for s in input_shape)
        self._check_input_shape(layers, shape, text)
        out_classes = layers[-1].units
        if classes is not None and classes != out_classes:
            raise ValueError(
                f"topology {text!r} has {out_classes} output neurons but classes={classes}; "
                f"end the topology with FC_{classes}"
            )
        options = dict(neuron_options or {})
        self.input_shape = shape
        self.classes = out_classes
        self.blocks = nn.ModuleList()
        for index, layer in enumerate(layers):
            common = dict(classes=out_classes, neuron=neuron, fast=fast, neuron_options=options)
            if isinstance(layer, ConvLayer):
                block_cls = Conv2dLIF if layer.dims == 2 else Conv1dLIF
                size = shape[1:] if layer.dims == 2 else shape[1]
                block: SpikingBlock = block_cls(
                    shape[0], layer.channels, layer.kernel, layer.stride, layer.padding, input_size=size, **common
                )
            else:
                hidden = index < len(layers) - 1
                if not hidden:
                    common.pop("classes")
                block = FCLIF(math.prod(shape), layer.units, hidden=hidden, **common)
            self.blocks.append(block)
            shape = block.out_shape
        self.topology = format_topology(layers)
        self.config = {
            "topology": self.topology, "input_shape": list(self.input_shape), "classes": out_classes, "neuron": neuron,
        }
        if options:
            self.config["neuron_options"] = options

    @staticmethod
    def _check_input_shape(layers: Sequence[Layer], shape: tuple[int, ...], text: str) -> None:
        first = layers[0]
        rank = first.dims + 1 if isinstance(first, ConvLayer) else 1
        if len(shape) != rank or min(shape) < 1:
            wanted = {3: "(C, H, W)", 2: "(C, L)", 1: "(F,)"}[rank]
            raise ValueError(f"topology {text!r} starts with {first.token()}: input_shape must be {wanted}, got {shape}")

    def adapt_input(self, x: Tensor) -> Tensor:
        """``[T, B, ...]`` with ``prod(input_shape)`` values per step -> ``[T, B, *input_shape]``."""
        return to_step_shape(x, self.input_shape, f"BRPNet {self.topology}")

    def forward(self, x: Tensor) -> NetOutput:
        """``x`` ``[T, B, ...]`` -> output rate ``[B, classes]``, spikes ``[T, B, classes]``, hidden taps."""
        x = self.adapt_input(x)
        taps: list[Tensor] = []
        for block in self.blocks:
            x, spikes = block(x)
            if block.tap is not None:
                taps.append(spikes)
        return NetOutput(rate=x.mean(0), spikes=x, taps=taps)

@register_model("brp", BRPNet)
def build_brp(
    inputs_shape: Sequence[int], classes: int, topology: str | None = None, neuron: str = "lif-identity",
    fast: bool = True, neuron_options: dict | None = None, input_shape: Sequence[int] | None = None,
) -> BRPNet:
    """A :class:`BRPNet` for data of per-step shape ``inputs_shape`` with ``classes`` classes.

    ``topology`` is a :data:`BRP_PRESETS` name or a topology string.  The per-step input shape is
    ``input_shape`` if given, else the preset's, else inferred (:func:`infer_input_shape`); it
    must hold as many values as ``inputs_shape``.
    """
    if topology is None:
        raise ValueError(
            f"the brp model needs topology=: a preset ({', '.join(BRP_PRESETS)}) "
            "or a string such as CONV_32_5_1_2_FC_1000_FC_10"
        )
    text, preset = resolve_topology(topology)
    if input_shape is None:
        input_shape = preset.input_shape if preset is not None else infer_input_shape(text, inputs_shape)
    have, want = math.prod(int(s) for s in inputs_shape), math.prod(int(s) for s in input_shape)
    if have != want:
        hint = f"; the preset expects {preset.data}" if preset is not None else ""
        raise ValueError(
            f"brp topology {topology!r} reads {want} values per step (input shape {list(input_shape)}), "
            f"but the data has per-step shape {list(inputs_shape)} ({have} values){hint}"
        )
    return BRPNet(text, input_shape, classes=classes, neuron=neuron, fast=fast, neuron_options=neuron_options)
