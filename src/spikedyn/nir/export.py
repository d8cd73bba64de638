"""A trained network -> a ``nir.NIRGraph`` (the mapping of every layer: :mod:`spikedyn.nir`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..layers import FCLIF, SpikingBlock, TimeSharedDropout
from ..layers.blocks import _ConvLIF
from ..layers.noise import InputNoise
from ..models.brp import BRPNet
from ..models.mdn import MDNNet
from ..models.nrr import NRRNet
from ..models.plif import PLIFNet
from ..neurons import DecayLIF, ParametricLIF, RecurrentNRR, SecondOrder
from ..neurons.base import NeuronLayer, label_neuron_layers
from .errors import NIRExportError, check_dt, require_nir

if TYPE_CHECKING:  # pragma: no cover
    import nir as nir_module


def _float_below(value: float, dtype: torch.dtype) -> float:
    """The largest number of ``dtype`` (float32 or float64) below ``value``."""
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    return float(np.nextafter(np_dtype(value), np_dtype(-np.inf)))


def _numpy(tensor: Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def neuron_node(layer: nn.Module, shape: Sequence[int], dt: float = 1.0) -> Any:
    """The NIR node of one neuron layer of neuron shape ``shape`` (see the module docstring).

    Raises :class:`~spikedyn.nir.errors.NIRExportError` for the neurons NIR cannot express.
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


def export(model: nn.Module, dt: float = 1.0) -> "nir_module.NIRGraph":
    """The NIR graph of ``model`` (an ``mdn``, ``brp`` or ``plif`` network)
    for time step ``dt`` (see the module docstring for the mapping).

    The graph reads one step of the network's per-step input shape (``input_shape``; MDN: the
    flattened input) and outputs what ``NetOutput.spikes`` holds at that step.  Raises
    :class:`~spikedyn.nir.errors.NIRExportError` (a ``ValueError``) naming the layer for networks NIR cannot express,
    and :class:`~spikedyn.nir.errors.NIRUnavailableError` when the ``nir`` package is missing.
    """
    dt = check_dt(dt)
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
