"""A ``nir.NIRGraph`` (ours or another tool's) -> :class:`NIRNet`, a module that runs ``[T, B, ...]``
sequences; the library's own layers where the graph's metadata allows (:mod:`spikedyn.nir`)."""

from __future__ import annotations

import math
import os
from collections import deque
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..layers import Voting
from ..layers.time import TimeFolded, to_step_shape
from ..models.mdn import NetOutput
from ..neurons import DecayLIF, LIFState, ParametricLIF
from ..neurons.base import NeuronLayer, label_neuron_layers
from ..surrogate import ATan, Surrogate
from .errors import NIRImportError, check_dt, require_nir

if TYPE_CHECKING:  # pragma: no cover
    import nir as nir_module


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
    docstring); ``None`` takes the graph's ``dt`` metadata (written by :func:`~spikedyn.nir.export.export`) and fails
    if there is none, since NIR itself fixes no time step.  ``native=True`` rebuilds the
    library's own neuron, pooling and voting layers where the nodes' metadata describes them
    and agrees with their NIR parameters (bit-identical spikes after a round trip);
    ``native=False`` runs every LIF/IF node as :class:`NIRLIF`.  ``dtype``: the float type of
    the module (default: the graph's weights' type, float32 if it has none).

    The graph must have one ``Input`` and one ``Output`` node and no cycles (recurrent graphs
    and nested sub-graphs are refused with :class:`~spikedyn.nir.errors.NIRImportError`).
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
    dt = check_dt(dt)
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
