"""NRR-SNN networks (Jia et al. 2021, spec nrr.md sections 2-4): recurrent adaptive-threshold layers
with a non-spiking linear read-out at every step.

**Shallow** (the paper's "RFC500-FC10/39")::

    x_t -> RFC (RecurrentNRR, ``hidden`` neurons) -> S_t in {0, 1, 2}^N -> o_t = W_o S_t + b_o

``layers > 1`` stacks that many RFC layers (each reading the spikes of the one below).  **Deep**
(``deep=True``, spec section 4, proposed default)::

    static image (x input_scale) -> Conv2d(1 -> 32, 5x5, pad 2) -> decay-LIF -> tap -> AvgPool2
        -> RFC500 -> read-out

with the whole spectrogram fed as a static image at every step (``--input-view static --encoder
direct``; the convolution runs once, :class:`~spikedyn.layers.Conv2dLIF` ``static=True``, unless
the net trains on noisy input) and
the authors' input scaling x10 on the conv path (x1 on the shallow path).

Each RFC layer is a :class:`~spikedyn.neurons.RecurrentNRR`: a leaky feed-forward channel, a
memory-less recurrent channel over ``W_r * M`` (``M`` drops the fraction ``sparseness`` of the
``N^2`` connections and every self-loop; masked weights stay exactly 0 under any optimiser) and
an adaptive threshold (gain ``gamma``)::

    a_t = alpha a_{t-1} + beta S_{t-1}
    V^f_t = lambda V_{t-1} (1 - S_{t-1}) + W_f x_t + b_f - gamma a_t,   s^f_t = H(V^f_t - V_th)
    V^r_t = (W_r * M) S_{t-1} + b_r,                                     s^r_t = H(V^r_t - V_th)
    V_t = V^f_t + V^r_t,   S_t = s^f_t + s^r_t

**Read-out and learning.**  ``readout_kind = "step"`` (:mod:`spikedyn.readout`): the trainer
scores ``o_t`` at every step against per-step targets (the class repeated over ``T``, or the
frame's label), loss ``mean_{t,b,k} (o_{t,b,k} - y*_{t,b,k})^2`` over the valid frames.
``NetOutput.spikes`` holds ``o`` ``[T, B, C]`` (analog scores, not spikes) and ``rate`` its mean
over time; ``taps`` the un-detached spikes of every hidden layer (the conv layer, then each RFC
layer).  Every hidden layer has a :class:`~spikedyn.layers.SpikeTap` with its own fixed ``B_l``,
so the rules of :mod:`spikedyn.learning` drive it:

* ``bptt`` (BP-RSNN): full surrogate BPTT through the read-out, the layers and time, including
  every reuse of ``S_{t-1}``;
* ``brp`` (NRR's reward propagation): ``dL/dS_t := y*_t B`` for both channels of an RFC layer
  (the same ``B``), every reuse of ``S_{t-1}`` detached (reset factor, threshold trace,
  recurrent input, read-out input), gradient back in time only through the membrane
  ``V_{t-1} -> V^f_t``; the read-out gets the exact gradient of the loss;
* ``err`` / ``sign``: the same with ``o_t - y*_t`` / ``sign(o_t - y*_t)`` projected.

Ablations (spec section 5, Table 2) are options: ``recurrent=False`` (pure feed-forward, no
``W_r``), ``adaptive=False`` (``gamma = 0``), ``sparseness=0`` (full loops ``1 - I``).
``recurrent_input="membrane"`` (not in the paper) adds ``W~_r S_{t-1} + b_r`` to the leaky membrane
instead of a channel of its own (one threshold, ``S`` in {0, 1}); with ``adaptive=False`` the RFC
layer is a plain recurrent decay-LIF layer.
``input_noise=p`` trains on noisy input ``x_t (1 + p xi_t)``, ``xi = +-1`` (the "train noisy" side
of the robustness ratio, spec section 5; :class:`~spikedyn.layers.InputNoise`, training mode only);
:mod:`spikedyn.analysis.robustness` tests any run under noise.

**Non-spiking baseline** (``spiking=False``; the paper's "DNN" of Figs. 4, 6 and 7, whose exact
form it does not give): the same sizes, masks and read-out, with every RFC layer replaced by a
vanilla recurrent layer of a non-spiking ``activation`` (``tanh``, default, or ``relu``),
:class:`AnalogRecurrent`::

    h_t = act(W_f x_t + b_f + (W_r * M) h_{t-1} + b_r),   o_t = W_o h_t + b_o

(``recurrent=False``: ``h_t = act(W_f x_t + b_f)``).  No leak, threshold or reset, so the
options ``gamma``, ``alpha``, ``beta``, ``decay``, ``v_th`` and ``adaptive`` do not apply; it is
meant for rule ``bptt`` (plain BPTT).  Shallow nets only.
:data:`NRR_SETTINGS` holds the spec's per-data-set run settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import Conv2dLIF, InputNoise, SpikeTap
from ..layers.time import fold_time, to_step_shape
from ..neurons import RecurrentNRR
from ..neurons.adaptive import MaskedRecurrentSynapses
from ..neurons.base import ParameterGroups
from .mdn import NetOutput
from .registry import register_model


@dataclass(frozen=True)
class NRRSettings:
    """The spec's run settings for one data set (spec nrr.md section 4, [A] where the paper is silent)."""

    dataset: str
    data_options: dict
    steps: int
    batch_size: int
    lr: float
    lr_step: int = 20
    lr_gamma: float = 0.8
    input_view: str = "native"
    encoder: str | None = None

    def train_options(self) -> dict:
        """Keyword settings for :class:`~spikedyn.train.TrainConfig` (model ``nrr``)."""
        out = {
            "dataset": self.dataset, "data_options": dict(self.data_options), "model": "nrr", "steps": self.steps,
            "batch_size": self.batch_size, "lr": self.lr, "lr_step": self.lr_step, "lr_gamma": self.lr_gamma,
            "input_view": self.input_view,
        }
        if self.encoder is not None:
            out["encoder"] = self.encoder
        return out


#: spoken digits: 39 mel bands x 39 frames, one frame per step (TIDigits in the paper; FSDD here the same
#: pipeline); TIMIT: 39 MFCC features per 10 ms frame, each batch cut to its longest utterance (<= 780).
NRR_SETTINGS: dict[str, NRRSettings] = {
    "tidigits": NRRSettings("tidigits", {"frames": 39}, 39, 50, 1e-4),
    "fsdd": NRRSettings("fsdd", {"frames": 39}, 39, 50, 1e-4),
    "timit-phones": NRRSettings("timit-phones", {}, 780, 50, 1e-3),
    "tidigits-deep": NRRSettings("tidigits", {"frames": 39}, 39, 50, 1e-4, input_view="static", encoder="direct"),
    "fsdd-deep": NRRSettings("fsdd", {"frames": 39}, 39, 50, 1e-4, input_view="static", encoder="direct"),
}


def image_shape(feature_shape: Sequence[int]) -> tuple[int, int, int]:
    """The ``(C, H, W)`` a per-step sample of shape ``feature_shape`` is read as by the deep net's conv.

    ``(C, H, W)`` as given, ``(H, W)`` as one channel, a flat square ``s*s`` as ``(1, s, s)``;
    anything else raises ``ValueError`` saying how to feed a spectrogram as an image.
    """
    shape = tuple(int(s) for s in feature_shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) == 2:
        return (1, *shape)  # type: ignore[return-value]
    side = math.isqrt(math.prod(shape))
    if len(shape) == 1 and side * side == shape[0] and side > 1:
        return (1, side, side)
    raise ValueError(
        f"the deep NRR net convolves a 2-D image at every step, but the data has per-step shape {list(shape)}; "
        f"feed the whole spectrogram as a static image (--input-view static --encoder direct) or give "
        f"--model-option input_shape=C,H,W"
    )


#: the non-spiking activations of :class:`AnalogRecurrent`
ACTIVATIONS = {"tanh": torch.tanh, "relu": F.relu}


class AnalogRecurrent(MaskedRecurrentSynapses, nn.Module):
    """The non-spiking stand-in for an RFC layer: ``x`` ``[T, B, inputs]`` -> ``h`` ``[T, B, hidden]``.

    ``h_t = act(W_f x_t + b_f + (W_r * M) h_{t-1} + b_r)``, ``h_0 = 0``, with the same parameters
    as :class:`~spikedyn.neurons.RecurrentNRR` (``fc_f``, ``fc_r``, the connectivity buffer
    ``mask`` drawn by :func:`~spikedyn.neurons.sparse_recurrent_mask`, masked weights kept at
    exactly 0) and a :class:`~spikedyn.layers.SpikeTap` on ``h`` when ``classes`` is given.
    When a rule makes the tap local, ``h_{t-1}`` is detached in the recurrence too (as the NRR
    cell detaches every reuse of ``S_{t-1}``).
    """

    spiking = False

    def __init__(
        self, inputs: int, hidden: int = 500, classes: int | None = None, *, sparseness: float = 0.5,
        recurrent: bool = True, activation: str = "tanh", mask_seed: int | None = None,
    ) -> None:
        super().__init__()
        if inputs < 1 or hidden < 1:
            raise ValueError(f"AnalogRecurrent needs positive inputs and hidden sizes, got {inputs} and {hidden}")
        if not 0.0 <= sparseness <= 1.0:
            raise ValueError(f"sparseness must lie in [0, 1], got {sparseness}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"NRR option activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.inputs, self.hidden = int(inputs), int(hidden)
        self.sparseness, self.recurrent, self.activation = float(sparseness), bool(recurrent), activation
        self.adaptive, self.gamma = False, 0.0  # no threshold: read by NRRNet.topology
        self.init_synapses(inputs, hidden, recurrent, sparseness, mask_seed, classes)

    def forward(self, x: Tensor) -> Tensor:
        """Activations ``h`` ``[T, B, hidden]`` (not detached; pass them through ``tap``)."""
        if x.dim() != 3 or x.shape[2] != self.inputs:
            raise ValueError(
                f"AnalogRecurrent with {self.inputs} inputs expects a sequence [T, B, {self.inputs}], "
                f"got shape {tuple(x.shape)}"
            )
        act = ACTIVATIONS[self.activation]
        z = self.fc_f(x)  # the feed-forward drive of the whole sequence, one matmul
        if self.fc_r is None:
            return act(z)
        w, b = self.fc_r.weight * self.mask, self.fc_r.bias
        detach = self.tap is not None and self.tap.local
        h = torch.zeros_like(z[0])
        out = []
        for z_t in z:
            h = act(z_t + F.linear(h.detach() if detach else h, w, b))
            out.append(h)
        return torch.stack(out)


class NRRNet(ParameterGroups, nn.Module):
    """RFC layers of :class:`~spikedyn.neurons.RecurrentNRR` (after an optional conv block) -> linear read-out.

    ``inputs``: values per step (shallow) or the per-step image shape ``(C, H, W)`` (deep).
    ``forward([T, B, ...]) -> NetOutput(rate, spikes=o [T, B, C], taps)``; ``config`` holds the
    constructor arguments (``NRRNet(**net.config)`` rebuilds it; the recurrent masks come back
    with the state dict).  See the module docstring for the options.
    """

    readout_kind = "step"

    def __init__(
        self, inputs: int | Sequence[int], hidden: int = 500, classes: int = 10, *, layers: int = 1,
        deep: bool = False, conv_channels: int = 32, conv_kernel: int = 5, conv_neuron: str = "lif-identity",
        input_scale: float | None = None, sparseness: float = 0.5, gamma: float = 1.0, alpha: float = 0.9,
        beta: float = 0.1, decay: float = 0.2, v_th: float = 0.5, recurrent: bool = True, adaptive: bool = True,
        mask_seed: int | None = None, input_noise: float = 0.0, fast: bool = True, spiking: bool = True,
        activation: str = "tanh", recurrent_input: str = "channel",
    ) -> None:
        super().__init__()
        if not isinstance(spiking, bool):
            raise ValueError(f"NRR option spiking must be true or false, got {spiking!r}")
        if deep and not spiking:
            raise ValueError("NRR option spiking=false (the non-spiking baseline) applies to the shallow net only, "
                             "not with deep=true")
        if activation not in ACTIVATIONS:
            raise ValueError(f"NRR option activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        if not spiking and recurrent_input != "channel":
            raise ValueError("NRR option recurrent_input applies to the spiking net only, not with spiking=false")
        self.spiking = spiking
        for name, value in (("hidden", hidden), ("classes", classes), ("layers", layers),
                            ("conv_channels", conv_channels), ("conv_kernel", conv_kernel)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"NRR option {name} must be a positive integer, got {value!r}")
        if conv_kernel % 2 == 0:
            raise ValueError(f"NRR option conv_kernel must be odd (the conv keeps the image size), got {conv_kernel}")
        if input_scale is not None and not (isinstance(input_scale, (int, float)) and input_scale > 0):
            raise ValueError(f"NRR option input_scale must be a positive number, got {input_scale!r}")
        self.deep = bool(deep)
        self.noise = InputNoise(input_noise)
        self.input_scale = float(input_scale) if input_scale is not None else (10.0 if self.deep else 1.0)
        self.classes = int(classes)
        if self.deep:
            shape = image_shape((inputs,) if isinstance(inputs, int) else inputs)
            self.input_shape: tuple[int, ...] = shape
            self.conv: Conv2dLIF | None = Conv2dLIF(
                shape[0], conv_channels, conv_kernel, 1, conv_kernel // 2, input_size=shape[1:], classes=classes,
                neuron=conv_neuron, fast=fast, static=self.noise.p == 0.0,  # noisy steps differ: convolve each
            )
            rfc_inputs = math.prod(self.conv.out_shape)
        else:
            flat = inputs if isinstance(inputs, int) else math.prod(int(s) for s in inputs)
            self.input_shape = (int(flat),)
            self.conv = None
            rfc_inputs = int(flat)
        if spiking:
            cell = dict(sparseness=sparseness, gamma=gamma, alpha=alpha, beta=beta, decay=decay, v_th=v_th,
                        recurrent=recurrent, adaptive=adaptive, fast=fast, recurrent_input=recurrent_input)
        else:
            cell = dict(sparseness=sparseness, recurrent=recurrent, activation=activation)
        layer_class = RecurrentNRR if spiking else AnalogRecurrent
        self.rfc = nn.ModuleList()
        for index in range(layers):
            seed = None if mask_seed is None else int(mask_seed) + index
            self.rfc.append(layer_class(rfc_inputs if index == 0 else hidden, hidden, classes, mask_seed=seed, **cell))
        self.out = nn.Linear(hidden, classes)  # W_o, b_o: the non-spiking read-out
        self.config: dict = {"inputs": list(self.input_shape) if self.deep else self.input_shape[0],
                             "hidden": hidden, "classes": classes}
        options = dict(layers=layers, deep=self.deep, conv_channels=conv_channels, conv_kernel=conv_kernel,
                       conv_neuron=conv_neuron, input_scale=input_scale, sparseness=sparseness, gamma=gamma,
                       alpha=alpha, beta=beta, decay=decay, v_th=v_th, recurrent=recurrent, adaptive=adaptive,
                       mask_seed=mask_seed, input_noise=input_noise, spiking=spiking, activation=activation,
                       recurrent_input=recurrent_input)
        defaults = NRRNet.__init__.__kwdefaults__
        self.config.update({k: v for k, v in options.items() if v != defaults[k]})

    @property
    def topology(self) -> str:
        """e.g. ``RFC500-FC10`` or ``CONV32-RFC500-FC10`` (with the ablations named); the non-spiking
        baseline ``RNN500-FC10 (non-spiking tanh)`` (``DNN500-FC10`` without recurrence)."""
        first = self.rfc[0]
        if self.spiking:
            kind = "RFC" if first.recurrent else "FC"
        else:
            kind = "RNN" if first.recurrent else "DNN"
        parts = ([f"CONV{self.conv.conv.out_channels}"] if self.conv is not None else [])
        parts += [f"{kind}{first.hidden}"] * len(self.rfc) + [f"FC{self.classes}"]
        notes = [] if self.spiking else [f"non-spiking {first.activation}"]
        if first.recurrent and first.sparseness != 0.5:
            notes.append(f"sparseness {first.sparseness:g}")
        if self.spiking and (not first.adaptive or first.gamma == 0.0):
            notes.append("no adaptive threshold")
        if self.spiking and first.recurrent and first.merged:
            notes.append("recurrent input into the membrane")
        return "-".join(parts) + (f" ({', '.join(notes)})" if notes else "")

    @property
    def taps(self) -> list[SpikeTap]:
        """The hidden layers' taps in forward order (conv first)."""
        return ([self.conv.tap] if self.conv is not None else []) + [layer.tap for layer in self.rfc]

    def forward(self, x: Tensor) -> NetOutput:
        """``x`` ``[T, B, ...]`` -> read-out ``o`` ``[T, B, classes]`` (in ``spikes``), its mean over time, hidden spikes."""
        taps: list[Tensor] = []
        x = self.noise(x)  # identity unless training with input_noise > 0
        if self.conv is not None:
            x = to_step_shape(x, self.input_shape, "the deep NRR net")
            if self.input_scale != 1.0:
                x = x * self.input_scale
            x, spikes = self.conv(x)
            taps.append(spikes)
            x = x.flatten(2)
        else:
            x = x.flatten(2) if x.dim() > 3 else x
            if self.input_scale != 1.0:
                x = x * self.input_scale
        for layer in self.rfc:
            spikes = layer(x)
            taps.append(spikes)
            x = layer.tap(spikes)
        o = fold_time(self.out, x)
        return NetOutput(rate=o.mean(0), spikes=o, taps=taps)

    def apply_masks_(self) -> None:
        """Re-zero the masked recurrent weights of every RFC layer (after editing weights by hand)."""
        for layer in self.rfc:
            layer.apply_mask_()


def _shape_option(value: Sequence[int] | str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(int(v) for v in value.replace("x", ",").split(",") if v.strip())
        except ValueError:
            raise ValueError(f"NRR option input_shape takes whole numbers such as 1,39,39, got {value!r}") from None
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)


@register_model("nrr", NRRNet)
def build_nrr(
    inputs_shape: Sequence[int], classes: int, hidden: int = 500, neuron: str = "nrr", layers: int = 1,
    deep: bool = False, sparseness: float = 0.5, gamma: float = 1.0, alpha: float = 0.9, beta: float = 0.1,
    decay: float = 0.2, v_th: float = 0.5, recurrent: bool = True, adaptive: bool = True,
    input_scale: float | None = None, conv_channels: int = 32, conv_kernel: int = 5,
    conv_neuron: str = "lif-identity", mask_seed: int | None = None, input_shape: Sequence[int] | str | None = None,
    input_noise: float = 0.0, fast: bool = True, spiking: bool = True, activation: str = "tanh",
    recurrent_input: str = "channel",
) -> NRRNet:
    """An :class:`NRRNet` for data of per-step shape ``inputs_shape`` with ``classes`` classes.

    ``neuron`` must be ``nrr`` (the RFC layers are always the NRR two-channel cell; the ablations
    are ``recurrent``, ``adaptive``/``gamma`` and ``sparseness``; the deep net's conv neurons are
    ``conv_neuron``).  ``input_shape`` (deep only) overrides how a step is read as ``(C, H, W)``.
    ``spiking=False``: the non-spiking baseline of the same sizes (:class:`AnalogRecurrent` layers,
    ``activation`` ``tanh`` or ``relu``).
    """
    if neuron != "nrr":
        raise ValueError(
            f"the nrr model's hidden layers are NRR two-channel adaptive-threshold cells (neuron 'nrr'), "
            f"got neuron {neuron!r}; use the model options recurrent=false, adaptive=false, sparseness=P for the "
            f"ablations, conv_neuron=KIND for the deep net's conv layer"
        )
    shape = _shape_option(input_shape)
    if shape is not None:
        if not deep:
            raise ValueError("NRR option input_shape applies to the deep net (deep=true) only")
        if math.prod(shape) != math.prod(int(s) for s in inputs_shape):
            raise ValueError(
                f"NRR option input_shape={list(shape)} holds {math.prod(shape)} values, but the data has per-step "
                f"shape {list(inputs_shape)}"
            )
    inputs = shape or tuple(int(s) for s in inputs_shape)
    if deep:
        inputs = image_shape(inputs)
    return NRRNet(
        inputs if deep else math.prod(inputs), hidden, classes, layers=layers, deep=deep, conv_channels=conv_channels,
        conv_kernel=conv_kernel, conv_neuron=conv_neuron, input_scale=input_scale, sparseness=sparseness,
        gamma=gamma, alpha=alpha, beta=beta, decay=decay, v_th=v_th, recurrent=recurrent, adaptive=adaptive,
        mask_seed=mask_seed, input_noise=input_noise, fast=fast, spiking=spiking, activation=activation,
        recurrent_input=recurrent_input,
    )
