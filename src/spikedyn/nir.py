"""Export to and import from NIR, the Neuromorphic Intermediate Representation.

:func:`export` turns a trained ``mdn``, ``brp`` or ``plif`` network of decay-LIF, PLIF or
fixed-tau LIF neurons into a ``nir.NIRGraph``; :func:`import_` turns a NIR graph (ours or
another tool's) back into a PyTorch module, :class:`NIRNet`, that runs ``[T, B, ...]``
sequences like the library's networks.  Save and load graphs with ``nir.write`` / ``nir.read``.
The ``nir`` package is an optional dependency (``pip install 'spikedyn[nir]'``).

**Time step.**  NIR describes neurons in continuous time; the library's neurons are discrete
maps, one step per input frame.  A graph states the step ``dt`` it was exported for (graph
metadata ``dt``), and the mapping assumes the forward-Euler step every NIR simulator of
discrete-time SNNs uses (snnTorch, Norse, ...)::

    NIR LIF:   tau dv/dt = (v_leak - v) + R I,   z = [v > v_threshold],   v <- v_reset where z
    Euler:     v_t = v_{t-1} + (dt / tau) (v_leak - v_{t-1} + R I_t)
                   = (1 - dt/tau) v_{t-1} + (dt/tau) v_leak + (dt/tau) R I_t
    NIR IF:    dv/dt = R I   ->   v_t = v_{t-1} + dt R I_t

(snnTorch's NIR importer assumes ``dt = 1e-4``: export with ``dt=1e-4`` for it.)

**Decay-LIF** (``lif-identity``, BRP / NRR feed-forward cell; decay ``lambda``, threshold
``V_th``)::

    V_t = lambda V_{t-1} (1 - S_{t-1}) + I_t,    S_t = [V_t > V_th]

maps to a NIR ``LIF`` node with::

    tau = dt / (1 - lambda),   R = 1 / (1 - lambda),   v_leak = 0,   v_threshold = V_th,   v_reset = 0

so that ``1 - dt/tau = lambda`` and ``(dt/tau) R = 1``; ``lambda = 1`` (no leak) maps to a NIR
``IF`` node with ``R = 1 / dt``.  *Reset flag*: the library keeps ``V_t`` above threshold for
the step it fires and applies the reset as the factor ``(1 - S_{t-1})`` at the start of the next
step, while NIR sets ``v = v_reset = 0`` at once; either way the next step starts from
``lambda * 0 + I_{t+1}``, so the spikes are identical (only the recorded membrane of a firing
step differs: the library's ``V_t`` against NIR's 0).

**PLIF and fixed-tau LIF** (``plif``, ``lif-tau``; ``k = sigmoid(a) = 1 / tau_p``)::

    H_t = V_{t-1} + k (X_t - (V_{t-1} - V_reset)),   S_t = [H_t >= V_th],   V_t = V_reset where S_t, else H_t

i.e. ``H_t = (1 - k) V_{t-1} + k V_reset + k X_t``, maps to a NIR ``LIF`` node with::

    tau = dt / k = tau_p dt,   R = 1,   v_leak = V_reset,   v_reset = V_reset,
    v_threshold = the largest number below V_th in the network's float type

The library fires on ``H >= V_th``, NIR on ``v > v_threshold``: with ``v_threshold`` one unit in
the last place below ``V_th`` (``0.99999994`` for ``V_th = 1`` in float32) the two conditions
are the same for every membrane value of that float type.  PLIF's ``tau_p`` is one learned
scalar per layer; it is written out per neuron, as NIR wants.  The initial membrane is
``V_reset`` (0) in both families, which :class:`NIRLIF` also uses.

**Synapses and the rest**, per step (the library runs them over the folded sequence):
``Linear`` -> ``Affine`` (``Linear`` without bias); ``Conv2d`` / ``Conv1d`` -> the same NIR node
(bias 0 where the layer has none); PLIF's batch norm (evaluation mode, running statistics) is
folded into the convolution, ``W' = W gamma / sqrt(var + eps)``, ``b' = (b - mean) gamma /
sqrt(var + eps) + beta`` (computed in float64, then rounded once to the weights' type);
``AvgPool2d`` -> ``AvgPool2d``; spike ``MaxPool2d`` -> ``SumPool2d`` then ``Threshold(0)``
(exact for 0/1 spikes: a window's maximum is 1 iff its sum is above 0); BRP's ``AvgPool1d(k)``
-> a ``Conv1d`` with stride ``k`` and weight ``1/k`` from each channel to itself (0 across channels); the flatten before the first FC
layer -> ``Flatten`` (dimensions counted without the batch axis); PLIF's voting -> ``Linear``
with weights ``1/G`` on each group of ``G`` output neurons.  Dropout and NRR's input noise are
training-only and left out: a graph describes the network in evaluation mode.  The graph's
output is what ``NetOutput.spikes`` holds (PLIF: the voted scores).

**Refused, with a message saying why**: the ``lif`` kind (MDN's 1st-order neuron applies a
sigmoid to its synaptic input, and NIR has no sigmoid node), MDN's 2nd-order neurons (``mdn``,
``2nd-*``: a quadratic membrane with a recovery variable, no NIR primitive), NRR-SNN's
two-channel adaptive-threshold recurrent cell (``nrr`` model), and batch norm without running
statistics.

**Metadata.**  Each neuron node carries the library's own parameters in its ``metadata``
(``spikedyn_neuron``: ``decay-lif``, ``plif`` or ``lif-tau``, with ``decay`` / ``a``, ``v_th``,
``v_reset``), as do the two compositions that are not bit-exact in another tool's arithmetic
(``spikedyn_layer``: ``avg_pool1d``, ``voting``).  :func:`import_` uses them, when they agree with
the NIR parameters and the ``dt`` used, to rebuild the library's own layers, so that export ->
``nir.write`` -> ``nir.read`` -> import gives bit-identical spikes.  Without metadata (another
tool's graph, or ``native=False``) LIF and IF nodes run as :class:`NIRLIF`, the Euler map above.
"""

from __future__ import annotations

import math
import os
from collections import deque
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .layers import FCLIF, SpikingBlock, TimeSharedDropout, Voting
from .layers.blocks import _ConvLIF
from .layers.noise import InputNoise
from .layers.time import TimeFolded, to_step_shape
from .models.brp import BRPNet
from .models.mdn import MDNNet, NetOutput
from .models.nrr import NRRNet
from .models.plif import PLIFNet
from .neurons import DecayLIF, LIFState, ParametricLIF, RecurrentNRR, SecondOrder
from .neurons.base import NeuronLayer, label_neuron_layers
from .surrogate import ATan, Surrogate

if TYPE_CHECKING:  # pragma: no cover
    import nir as nir_module

__all__ = [
    "export", "import_", "neuron_node", "require_nir", "NIRNet", "NIRLIF", "NIRExportError", "NIRImportError",
    "NIRUnavailableError",
]


class NIRUnavailableError(ImportError, ValueError):
    """The optional ``nir`` package is not installed (the message says how to install it)."""


class NIRExportError(ValueError):
    """A network (or one of its layers) that NIR cannot express; the message says which and why."""


class NIRImportError(ValueError):
    """A NIR graph that :func:`import_` cannot run; the message says which node and why."""


def require_nir() -> Any:
    """The ``nir`` package; :class:`NIRUnavailableError` (an ``ImportError`` and a ``ValueError``) saying how
    to install it when it is missing."""
    try:
        import nir
    except ImportError as exc:
        raise NIRUnavailableError(
            "NIR export/import needs the optional 'nir' package: pip install 'spikedyn[nir]' (or pip install nir)"
        ) from exc
    return nir


def _float_below(value: float, dtype: torch.dtype) -> float:
    """The largest number of ``dtype`` (float32 or float64) below ``value``."""
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    return float(np.nextafter(np_dtype(value), np_dtype(-np.inf)))


def _numpy(tensor: Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


# ---------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------
def neuron_node(layer: nn.Module, shape: Sequence[int], dt: float = 1.0) -> Any:
    """The NIR node of one neuron layer of neuron shape ``shape`` (see the module docstring).

    Raises :class:`NIRExportError` for the neurons NIR cannot express.
    """
    nir = require_nir()
    shape = tuple(int(s) for s in shape)
    ones = np.ones(shape, dtype=np.float64)
    zeros = np.zeros(shape, dtype=np.float64)
    if isinstance(layer, DecayLIF):
        if layer.input_fn != "identity":
            raise NIRExportError(
                f"{layer.describe()}: this decay-LIF (neuron kind 'lif', MDN's 1st-order neuron) applies a "
                f"{layer.input_fn} to its synaptic input, I = {layer.input_fn}(W x + b), and NIR has no "
                f"{layer.input_fn} node; train with neuron kind 'lif-identity' (I = W x + b) to export"
            )
        decay, v_th = float(layer.decay), float(layer.v_th)
        meta = {"spikedyn_neuron": "decay-lif", "decay": decay, "v_th": v_th, "detach_reset": bool(layer.detach_reset)}
        if decay == 1.0:
            return nir.IF(r=ones / dt, v_threshold=ones * v_th, v_reset=zeros, metadata=meta)
        return nir.LIF(
            tau=ones * (dt / (1.0 - decay)), r=ones / (1.0 - decay), v_leak=zeros,
            v_threshold=ones * v_th, v_reset=zeros, metadata=meta,
        )
    if isinstance(layer, ParametricLIF):
        a = layer.a.detach()
        k = float(torch.sigmoid(a))  # as the layer computes it, in its own dtype
        v_reset = float(layer.v_reset)
        meta = {
            "spikedyn_neuron": "plif" if layer.learnable else "lif-tau", "a": float(a), "v_th": float(layer.v_th),
            "v_reset": v_reset, "detach_reset": bool(layer.detach_reset),
        }
        return nir.LIF(
            tau=ones * (dt / k), r=ones, v_leak=ones * v_reset,
            v_threshold=ones * _float_below(layer.v_th, a.dtype), v_reset=ones * v_reset, metadata=meta,
        )
    if isinstance(layer, SecondOrder):
        raise NIRExportError(
            f"{layer.describe()}: MDN's 2nd-order neuron (dV/dt = V^2 - V - U + I with a recovery variable U, "
            f"neuron kinds 'mdn' and '2nd-*') has no NIR primitive (NIR's neurons are linear: LI, LIF, CubaLIF, "
            f"IF); export supports the decay-LIF ('lif-identity'), PLIF ('plif') and LIF ('lif-tau') neurons"
        )
    if isinstance(layer, RecurrentNRR):
        raise _nrr_error()
    name = layer.describe() if isinstance(layer, NeuronLayer) else type(layer).__name__
    raise NIRExportError(
        f"{name}: no NIR mapping; export supports the decay-LIF ('lif-identity'), PLIF ('plif') and LIF "
        f"('lif-tau') neurons"
    )


def _nrr_error() -> NIRExportError:
    return NIRExportError(
        "NRR-SNN's two-channel recurrent cell (model 'nrr') has no NIR primitive: its adaptive threshold trace "
        "a_t = alpha a_{t-1} + beta S_{t-1}, its memory-less recurrent channel firing on its own threshold and its "
        "spike counts S in {0, 1, 2} cannot be written with NIR's LIF/CubaLIF/IF nodes; export supports the mdn, "
        "brp and plif networks of decay-LIF ('lif-identity'), PLIF ('plif') and LIF ('lif-tau') neurons"
    )


class _Chain:
    """A feed-forward NIR graph under construction: each node is fed by the one before."""

    def __init__(self, input_shape: Sequence[int]) -> None:
        self.nir = require_nir()
        self.shape = tuple(int(s) for s in input_shape)
        self.nodes: dict[str, Any] = {"input": self.nir.Input(input_type={"input": np.array(self.shape)})}
        self.edges: list[tuple[str, str]] = []
        self.last = "input"

    def add(self, name: str, node: Any, shape: Sequence[int]) -> None:
        if name in self.nodes:
            raise ValueError(f"duplicate NIR node name {name!r}")
        self.nodes[name] = node
        self.edges.append((self.last, name))
        self.last = name
        self.shape = tuple(int(s) for s in shape)

    def flatten(self, name: str) -> None:
        """A ``Flatten`` node when the current per-step shape has more than one axis."""
        if len(self.shape) > 1:
            node = self.nir.Flatten(input_type={"input": np.array(self.shape)}, start_dim=0, end_dim=-1)
            self.add(name, node, (math.prod(self.shape),))

    def linear(self, name: str, fc: nn.Linear) -> None:
        weight = _numpy(fc.weight)
        if fc.bias is None:
            node = self.nir.Linear(weight=weight)
        else:
            node = self.nir.Affine(weight=weight, bias=_numpy(fc.bias))
        self.add(name, node, (fc.out_features,))

    def neuron(self, name: str, layer: nn.Module, dt: float) -> None:
        self.add(name, neuron_node(layer, self.shape, dt), self.shape)

    def graph(self, metadata: dict) -> Any:
        self.nodes["output"] = self.nir.Output(output_type={"output": np.array(self.shape)})
        self.edges.append((self.last, "output"))
        return self.nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata, type_check=True)


def _conv_node(block: _ConvLIF) -> Any:
    """The block's convolution (with its eval-mode batch norm folded in) as a NIR Conv1d/Conv2d node."""
    nir = require_nir()
    conv = block.conv
    dtype = conv.weight.dtype
    weight = conv.weight.detach().double()
    bias = conv.bias.detach().double() if conv.bias is not None else weight.new_zeros(conv.out_channels)
    if block.norm is not None:
        bn = block.norm.bn
        if bn.running_mean is None or bn.running_var is None:
            raise NIRExportError(
                f"{type(block).__name__}: its batch norm keeps no running statistics (track_running_stats=False), "
                f"so it normalises with each batch's own statistics, which NIR cannot express"
            )
        scale = 1.0 / torch.sqrt(bn.running_var.detach().double() + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.detach().double()
        shift = -bn.running_mean.detach().double() * scale
        if bn.bias is not None:
            shift = shift + bn.bias.detach().double()
        weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
        bias = bias * scale + shift
    weight_np = _numpy(weight.to(dtype))
    bias_np = _numpy(bias.to(dtype))
    spatial = block.in_shape[1:]
    if weight.dim() == 4:
        return nir.Conv2d(
            input_shape=tuple(int(s) for s in spatial), weight=weight_np, stride=tuple(conv.stride),
            padding=tuple(conv.padding), dilation=tuple(conv.dilation), groups=conv.groups, bias=bias_np,
        )
    return nir.Conv1d(
        input_shape=int(spatial[0]), weight=weight_np, stride=int(conv.stride[0]), padding=int(conv.padding[0]),
        dilation=int(conv.dilation[0]), groups=conv.groups, bias=bias_np,
    )


def _add_pool(chain: _Chain, name: str, block: _ConvLIF) -> None:
    pool = block.pool
    if pool is None:
        return
    nir = chain.nir
    out_shape = block.out_shape
    if isinstance(pool, (nn.AvgPool2d, nn.MaxPool2d)):
        k = int(pool.kernel_size) if isinstance(pool.kernel_size, int) else int(pool.kernel_size[0])
        s = int(pool.stride) if isinstance(pool.stride, int) else int(pool.stride[0])
        args = dict(kernel_size=np.array([k, k]), stride=np.array([s, s]), padding=np.array([0, 0]))
        if isinstance(pool, nn.AvgPool2d):
            chain.add(name, nir.AvgPool2d(**args), out_shape)
        else:  # max of 0/1 spikes = [sum > 0]
            meta = {"spikedyn_layer": "max_pool2d"}
            chain.add(name + "_sum", nir.SumPool2d(**args, metadata=meta), out_shape)
            chain.add(name + "_any", nir.Threshold(threshold=np.zeros(out_shape), metadata=meta), out_shape)
        return
    if isinstance(pool, nn.AvgPool1d):
        # per channel: a Conv1d whose weight is 1/k on its own channel and 0 on the others (NIR's type
        # inference ignores groups, so a depthwise convolution would not type-check)
        k = int(pool.kernel_size[0])
        s = int(pool.stride[0])
        channels, length = block.neuron_shape
        dtype = block.conv.weight.dtype
        weight = torch.zeros(channels, channels, k, dtype=torch.float64)
        weight[torch.arange(channels), torch.arange(channels)] = 1.0 / k
        node = nir.Conv1d(
            input_shape=int(length), weight=_numpy(weight.to(dtype)), stride=s, padding=0, dilation=1, groups=1,
            bias=np.zeros(channels, dtype=weight_dtype(dtype)),
            metadata={"spikedyn_layer": "avg_pool1d", "kernel_size": k, "stride": s},
        )
        chain.add(name, node, out_shape)
        return
    raise NIRExportError(f"{type(block).__name__}: its pooling {type(pool).__name__} has no NIR mapping")


def weight_dtype(dtype: torch.dtype) -> type:
    """The numpy float type of a torch float type."""
    return np.float64 if dtype == torch.float64 else np.float32


def _add_block(chain: _Chain, name: str, block: SpikingBlock, dt: float) -> None:
    if isinstance(block, _ConvLIF):
        chain.add(f"{name}_conv", _conv_node(block), block.neuron_shape)
        chain.neuron(f"{name}_neuron", block.neuron, dt)
        _add_pool(chain, f"{name}_pool", block)
    elif isinstance(block, FCLIF):
        chain.flatten(f"{name}_flatten")
        chain.linear(f"{name}_fc", block.fc)
        chain.neuron(f"{name}_neuron", block.neuron, dt)
    else:
        raise NIRExportError(f"block {name!r} ({type(block).__name__}) has no NIR mapping")


def _check_dt(dt: float) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt (the time step the graph is exported for) must be a positive number, got {dt!r}")
    return float(dt)


def export(model: nn.Module, dt: float = 1.0) -> "nir_module.NIRGraph":
    """The NIR graph of ``model`` (an ``mdn``, ``brp`` or ``plif`` network)
    for time step ``dt`` (see the module docstring for the mapping).

    The graph reads one step of the network's per-step input shape (``input_shape``; MDN: the
    flattened input) and outputs what ``NetOutput.spikes`` holds at that step.  Raises
    :class:`NIRExportError` (a ``ValueError``) naming the layer for networks NIR cannot express,
    and :class:`NIRUnavailableError` when the ``nir`` package is missing.
    """
    dt = _check_dt(dt)
    label_neuron_layers(model)  # errors name the layer
    meta: dict[str, Any] = {"dt": dt, "source": "spikedyn", "discretisation": "forward Euler"}
    if isinstance(model, NRRNet) or any(isinstance(m, RecurrentNRR) for m in model.modules()):
        raise _nrr_error()
    if isinstance(model, MDNNet):
        chain = _Chain((model.fc1.in_features,))
        chain.linear("fc1", model.fc1)
        chain.neuron("neuron1", model.neuron1, dt)
        chain.linear("fc2", model.fc2)
        chain.neuron("neuron2", model.neuron2, dt)
        meta.update(model="mdn")
        return chain.graph(meta)
    if isinstance(model, BRPNet):
        chain = _Chain(model.input_shape)
        for index, block in enumerate(model.blocks):
            _add_block(chain, f"block{index}", block, dt)
        meta.update(model="brp", topology=model.topology)
        return chain.graph(meta)
    if isinstance(model, PLIFNet):
        chain = _Chain(model.input_shape)
        for name, layer in model.layers.items():
            if isinstance(layer, SpikingBlock):
                _add_block(chain, name, layer, dt)
            elif isinstance(layer, (TimeSharedDropout, InputNoise)):
                continue  # training only: the identity in evaluation mode
            else:
                raise NIRExportError(f"PLIF layer {name!r} ({type(layer).__name__}) has no NIR mapping")
        group = model.vote.group
        n = chain.shape[0]
        weight = torch.zeros(n // group, n, dtype=torch.float64)
        for c in range(n // group):
            weight[c, c * group:(c + 1) * group] = 1.0 / group
        dtype = next(model.parameters()).dtype
        node = chain.nir.Linear(weight=_numpy(weight.to(dtype)), metadata={"spikedyn_layer": "voting", "group": group})
        chain.add("vote", node, (n // group,))
        meta.update(model="plif", topology=model.topology)
        return chain.graph(meta)
    raise NIRExportError(
        f"export supports the mdn, brp and plif networks (MDNNet, BRPNet, PLIFNet), got {type(model).__name__}"
    )


# ---------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------
class NIRLIF(NeuronLayer):
    """NIR's LIF / IF node run with forward-Euler steps (the generic import of a spiking node).

    One step, from the post-reset membrane ``v`` (initially ``v_reset``)::

        u_t = decay v_{t-1} + gain I_t + offset,     S_t = [u_t > v_th],     v_t = v_reset where S_t, else u_t

    with ``decay = 1 - dt/tau``, ``gain = dt R / tau``, ``offset = dt v_leak / tau`` (LIF) or
    ``decay = 1``, ``gain = dt R``, ``offset = 0`` (IF); every parameter is a buffer of the
    neuron shape.  The spike function's gradient is ATan(2)'s (only for fine-tuning; NIR says
    nothing about gradients), and the reset is detached.
    """

    def __init__(
        self, decay: Tensor, gain: Tensor, offset: Tensor, v_th: Tensor, v_reset: Tensor,
        surrogate: Surrogate | None = None,
    ) -> None:
        shape = tuple(v_th.shape)
        super().__init__(input_fn="identity", fast=False, shape=shape if shape else None)
        for name, value in (("decay", decay), ("gain", gain), ("offset", offset), ("v_th", v_th), ("v_reset", v_reset)):
            self.register_buffer(name, torch.as_tensor(value).expand(shape).clone())
        self.surrogate = surrogate if surrogate is not None else ATan(2.0)

    def initial_state(self, like: Tensor) -> LIFState:
        return LIFState(self.v_reset.to(like.dtype).expand_as(like).clone(), torch.zeros_like(like))

    def step_current(self, i_t: Tensor, state: LIFState) -> tuple[Tensor, LIFState]:
        u = self.decay * state.v + self.gain * i_t + self.offset
        s = self.surrogate.spike(u - self.v_th, inclusive=False)
        fired = s.detach()
        v = u * (1.0 - fired) + self.v_reset * fired
        return s, LIFState(v, s)

    def fast_sequence(self, current: Tensor) -> Tensor:
        return self.run_current(current).spikes

    def extra_repr(self) -> str:
        return f"shape={self.shape}, surrogate={self.surrogate}"


class _Flatten(nn.Module):
    """NIR's ``Flatten(start_dim, end_dim)`` (dimensions without the batch axis) on ``[N, ...]``."""

    def __init__(self, start_dim: int, end_dim: int) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Tensor) -> Tensor:
        start = self.start_dim + 1 if self.start_dim >= 0 else self.start_dim
        end = self.end_dim + 1 if self.end_dim >= 0 else self.end_dim
        return x.flatten(start, end)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim} (without the batch axis)"


class _Threshold(nn.Module):
    """NIR's ``Threshold``: ``[x > threshold]`` (no state, no gradient)."""

    def __init__(self, threshold: Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", threshold)

    def forward(self, x: Tensor) -> Tensor:
        return (x > self.threshold).to(x.dtype)


class _Scale(nn.Module):
    """NIR's ``Scale``: ``x * scale`` elementwise."""

    def __init__(self, scale: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


def _pair(value: Any, n: int) -> tuple[int, ...]:
    array = np.atleast_1d(np.asarray(value)).astype(int).ravel()
    return tuple(int(v) for v in (array if len(array) == n else np.repeat(array[:1], n)))


def _tensor(array: Any) -> Tensor:
    return torch.from_numpy(np.array(array, copy=True))


def _meta_value(meta: dict, key: str) -> Any:
    value = meta[key]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes):
        value = value.decode("utf8")
    return value.item() if isinstance(value, np.generic) else value


def _uniform(array: Any) -> float | None:
    """The single value of ``array`` if all its entries are equal, else None."""
    flat = np.asarray(array, dtype=np.float64).ravel()
    return float(flat[0]) if flat.size and np.all(flat == flat[0]) else None


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _native_neuron(node: Any, dt: float) -> NeuronLayer | None:
    """The library's own layer described by a node's ``spikedyn_neuron`` metadata, if its NIR parameters agree."""
    nir = require_nir()
    meta = getattr(node, "metadata", None) or {}
    if "spikedyn_neuron" not in meta:
        return None
    kind = _meta_value(meta, "spikedyn_neuron")
    shape = tuple(int(s) for s in np.shape(node.v_threshold))
    try:
        if kind == "decay-lif":
            decay, v_th = float(_meta_value(meta, "decay")), float(_meta_value(meta, "v_th"))
            if isinstance(node, nir.IF):
                ok = decay == 1.0 and _close(_uniform(node.r), 1.0 / dt)
            else:
                ok = (isinstance(node, nir.LIF) and _close(_uniform(node.tau), dt / (1.0 - decay))
                      and _close(_uniform(node.r), 1.0 / (1.0 - decay)) and _uniform(node.v_leak) == 0.0)
            ok = ok and _close(_uniform(node.v_threshold), v_th) and _uniform(node.v_reset) == 0.0
            if not ok:
                return None
            return DecayLIF(decay=decay, v_th=v_th, input_fn="identity", shape=shape or None,
                            detach_reset=bool(_meta_value(meta, "detach_reset")) if "detach_reset" in meta else False)
        if kind in ("plif", "lif-tau"):
            a = float(_meta_value(meta, "a"))
            v_th, v_reset = float(_meta_value(meta, "v_th")), float(_meta_value(meta, "v_reset"))
            k = 1.0 / (1.0 + math.exp(-a))
            ok = (isinstance(node, nir.LIF) and _close(_uniform(node.tau), dt / k) and _close(_uniform(node.r), 1.0)
                  and _close(_uniform(node.v_leak), v_reset) and _close(_uniform(node.v_reset), v_reset)
                  and _close(_uniform(node.v_threshold), v_th))
            if not ok:
                return None
            layer = ParametricLIF(
                tau=2.0, learnable=kind == "plif", v_th=v_th, v_reset=v_reset, shape=shape or None,
                detach_reset=bool(_meta_value(meta, "detach_reset")) if "detach_reset" in meta else True,
            )
            with torch.no_grad():
                layer.a.copy_(torch.tensor(a, dtype=torch.float64))
            return layer
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _generic_neuron(name: str, node: Any, dt: float) -> NIRLIF:
    nir = require_nir()
    v_th = _tensor(node.v_threshold).double()
    v_reset = _tensor(node.v_reset).double() if node.v_reset is not None else torch.zeros_like(v_th)
    r = _tensor(node.r).double()
    if isinstance(node, nir.IF):
        return NIRLIF(torch.ones_like(v_th), dt * r, torch.zeros_like(v_th), v_th, v_reset)
    tau = _tensor(node.tau).double()
    if bool((tau <= 0).any()):
        raise NIRImportError(f"NIR node {name!r} (LIF) has a non-positive tau")
    ratio = dt / tau
    if bool((ratio > 1.0 + 1e-9).any()):
        raise NIRImportError(
            f"NIR node {name!r} (LIF) has tau down to {float(tau.min()):g}, below the time step dt = {dt:g}: the "
            f"forward-Euler decay 1 - dt/tau would be negative; import with a smaller dt"
        )
    return NIRLIF((1.0 - ratio).clamp_min(0.0), ratio * r, ratio * _tensor(node.v_leak).double(), v_th, v_reset)


def _node_module(name: str, node: Any, dt: float, native: bool) -> nn.Module | None:
    """The module running one NIR node over ``[T, B, ...]`` (None: passes its input on)."""
    nir = require_nir()
    meta = getattr(node, "metadata", None) or {}
    layer_kind = _meta_value(meta, "spikedyn_layer") if "spikedyn_layer" in meta else None
    if isinstance(node, (nir.Input, nir.Output)) or type(node).__name__ == "Identity":
        return None
    if isinstance(node, (nir.LIF, nir.IF)):
        return (_native_neuron(node, dt) if native else None) or _generic_neuron(name, node, dt)
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = _tensor(node.weight)
        if weight.dim() != 2:
            raise NIRImportError(f"NIR node {name!r} ({type(node).__name__}) has a {weight.dim()}-D weight; only 2-D is supported")
        if native and layer_kind == "voting" and isinstance(node, nir.Linear):
            group = int(_meta_value(meta, "group"))
            expected = torch.zeros_like(weight, dtype=torch.float64)
            for c in range(weight.shape[0]):
                expected[c, c * group:(c + 1) * group] = 1.0 / group
            if weight.shape[1] == weight.shape[0] * group and torch.allclose(weight.double(), expected, atol=1e-6):
                return Voting(group)
        fc = nn.Linear(weight.shape[1], weight.shape[0], bias=isinstance(node, nir.Affine))
        fc.weight = nn.Parameter(weight)
        if isinstance(node, nir.Affine):
            fc.bias = nn.Parameter(_tensor(node.bias))
        return TimeFolded(fc)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        weight = _tensor(node.weight)
        dims = weight.dim() - 2
        if native and layer_kind == "avg_pool1d" and dims == 1:
            k, s = int(_meta_value(meta, "kernel_size")), int(_meta_value(meta, "stride"))
            channels = weight.shape[0]
            expected = torch.zeros(channels, channels, k, dtype=torch.float64)
            expected[torch.arange(channels), torch.arange(channels)] = 1.0 / k
            if tuple(weight.shape) == tuple(expected.shape) and torch.allclose(weight.double(), expected, atol=1e-6):
                return TimeFolded(nn.AvgPool1d(k, stride=s))
        padding = node.padding if isinstance(node.padding, str) else _pair(node.padding, dims)
        conv_cls = nn.Conv2d if dims == 2 else nn.Conv1d
        conv = conv_cls(
            weight.shape[1] * int(node.groups), weight.shape[0], tuple(weight.shape[2:]), stride=_pair(node.stride, dims),
            padding=padding, dilation=_pair(node.dilation, dims), groups=int(node.groups), bias=True,
        )
        conv.weight = nn.Parameter(weight)
        bias = _tensor(node.bias) if node.bias is not None else torch.zeros(weight.shape[0], dtype=weight.dtype)
        conv.bias = nn.Parameter(bias.reshape(-1).expand(weight.shape[0]).clone())
        return TimeFolded(conv)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        pool = nn.AvgPool2d(
            _pair(node.kernel_size, 2), stride=_pair(node.stride, 2), padding=_pair(node.padding, 2),
            divisor_override=1 if isinstance(node, nir.SumPool2d) else None,
        )
        return TimeFolded(pool)
    if isinstance(node, nir.Flatten):
        return TimeFolded(_Flatten(int(node.start_dim), int(node.end_dim)))
    if isinstance(node, nir.Threshold):
        return TimeFolded(_Threshold(_tensor(node.threshold)))
    if isinstance(node, nir.Scale):
        return TimeFolded(_Scale(_tensor(node.scale)))
    raise NIRImportError(
        f"NIR node {name!r} is a {type(node).__name__}, which import_ does not run; supported: Input, Output, "
        f"Affine, Linear, Conv1d, Conv2d, AvgPool2d, SumPool2d, Flatten, Threshold, Scale, LIF, IF"
    )


def _key(name: str, used: set[str]) -> str:
    key = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "node"
    if key[0].isdigit():
        key = "n" + key
    base, i = key, 1
    while key in used:
        i += 1
        key = f"{base}_{i}"
    used.add(key)
    return key


class NIRNet(nn.Module):
    """A NIR graph as a PyTorch module over time-major sequences (built by :func:`import_`).

    ``forward(x [T, B, ...]) -> NetOutput(rate, spikes, taps)``: ``x`` holds ``prod(input_shape)``
    values per step (reshaped to the graph's input shape), the nodes run in topological order
    (stateless nodes folded over time, spiking nodes over the whole window from their initial
    state; a node fed by several edges gets their sum), ``spikes`` is the output node's sequence
    ``[T, B, ...]``, ``rate`` its mean over time and ``taps`` the spikes of every spiking node
    but the last, in graph order.  ``node_names`` maps each module key to its NIR node name.
    """

    def __init__(
        self, order: list[str], modules: dict[str, nn.Module | None], inputs: dict[str, list[str]],
        input_name: str, output_name: str, input_shape: Sequence[int], dt: float, metadata: dict | None = None,
    ) -> None:
        super().__init__()
        used: set[str] = set()
        self.order = list(order)
        self.keys = {name: _key(name, used) for name in order}
        self.node_names = {key: name for name, key in self.keys.items()}
        self.layers = nn.ModuleDict({self.keys[n]: m for n, m in modules.items() if m is not None})
        self.inputs = {name: list(preds) for name, preds in inputs.items()}
        self.input_name, self.output_name = input_name, output_name
        self.input_shape = tuple(int(s) for s in input_shape)
        self.dt = float(dt)
        self.metadata = dict(metadata or {})
        spiking = [n for n in order if isinstance(modules.get(n), NeuronLayer)]
        self.tap_names = spiking[:-1]
        label_neuron_layers(self)

    def forward(self, x: Tensor) -> NetOutput:
        x = to_step_shape(x, self.input_shape, "the imported NIR graph")
        values: dict[str, Tensor] = {self.input_name: x}
        for name in self.order:
            if name == self.input_name:
                continue
            preds = self.inputs[name]
            if not preds:
                raise NIRImportError(f"NIR node {name!r} has no input edge")
            z = values[preds[0]]
            for p in preds[1:]:
                z = z + values[p]
            key = self.keys[name]
            values[name] = self.layers[key](z) if key in self.layers else z
        out = values[self.output_name]
        return NetOutput(rate=out.mean(0), spikes=out, taps=[values[n] for n in self.tap_names])

    def extra_repr(self) -> str:
        return f"input_shape={self.input_shape}, dt={self.dt:g}, nodes={len(self.order)}"


def import_(
    graph: "nir_module.NIRGraph | str | os.PathLike", dt: float | None = None, *, native: bool = True,
    dtype: torch.dtype | None = None,
) -> NIRNet:
    """A :class:`NIRNet` running the NIR ``graph`` (or the ``.nir`` file at that path) over ``[T, B, ...]``.

    ``dt`` is the time step of the forward-Euler map of the LIF/IF nodes (see the module
    docstring); ``None`` takes the graph's ``dt`` metadata (written by :func:`export`) and fails
    if there is none, since NIR itself fixes no time step.  ``native=True`` rebuilds the
    library's own neuron, pooling and voting layers where the nodes' metadata describes them
    and agrees with their NIR parameters (bit-identical spikes after a round trip);
    ``native=False`` runs every LIF/IF node as :class:`NIRLIF`.  ``dtype``: the float type of
    the module (default: the graph's weights' type, float32 if it has none).

    The graph must have one ``Input`` and one ``Output`` node and no cycles (recurrent graphs
    and nested sub-graphs are refused with :class:`NIRImportError`).
    """
    nir = require_nir()
    if isinstance(graph, (str, os.PathLike)):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise NIRImportError(f"import_ takes a nir.NIRGraph or the path of a .nir file, got {type(graph).__name__}")
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if dt is None:
        if "dt" not in meta:
            raise NIRImportError(
                "the NIR graph does not state its time step (no 'dt' in its metadata) and NIR fixes none; pass "
                "dt=, the step of the forward-Euler update v_t = v + dt/tau (v_leak - v + R I) (snnTorch uses 1e-4)"
            )
        dt = float(_meta_value(meta, "dt"))
    dt = _check_dt(dt)
    nodes = graph.nodes
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRImportError(
            f"import_ runs graphs with one Input and one Output node, got {len(inputs)} and {len(outputs)}"
        )
    for name, node in nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise NIRImportError(
                f"NIR node {name!r} is a nested sub-graph (e.g. a recurrent layer); import_ runs flat feed-forward graphs"
            )
    preds: dict[str, list[str]] = {name: [] for name in nodes}
    succs: dict[str, list[str]] = {name: [] for name in nodes}
    for a, b in graph.edges:
        if a not in nodes or b not in nodes:
            raise NIRImportError(f"NIR edge ({a!r}, {b!r}) names a node the graph does not have")
        preds[b].append(a)
        succs[a].append(b)
    # topological order (Kahn), keeping the graph's node order among ready nodes
    indegree = {name: len(p) for name, p in preds.items()}
    ready = deque(n for n in nodes if indegree[n] == 0)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for nxt in succs[name]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if len(order) != len(nodes):
        cyclic = sorted(n for n in nodes if indegree[n] > 0)
        raise NIRImportError(
            f"the NIR graph has a cycle through {', '.join(cyclic)} (a recurrent connection); import_ runs "
            f"feed-forward graphs only"
        )
    unreachable = [n for n in order if n != inputs[0] and not preds[n]]
    if unreachable:
        raise NIRImportError(f"NIR node(s) {', '.join(unreachable)} have no input edge")
    modules = {name: _node_module(name, nodes[name], dt, native) for name in order}
    if dtype is None:
        dtype = next(
            (p.dtype for m in modules.values() if m is not None for p in m.parameters() if p.is_floating_point()),
            torch.float32,
        )
    shape = nodes[inputs[0]].input_type.get("input")
    if shape is None:
        raise NIRImportError(f"the graph's Input node {inputs[0]!r} states no shape; import_ needs the per-step input shape")
    input_shape = np.asarray(shape).astype(int).reshape(-1).tolist()
    net = NIRNet(order, modules, preds, inputs[0], outputs[0], input_shape, dt, meta)
    return net.to(dtype).eval()
