"""Linear synapses over time-major sequences whose output a neuron layer may overwrite, and that keep
spike inputs as bytes for the backward pass.

:func:`time_linear` computes ``y = x W^T + b`` over ``[..., in_features]`` exactly as
:func:`torch.nn.functional.linear` does (one product over all leading rows) with the same gradients,
but differs in two ways that matter for memory:

* its output is a tensor of its own, not a view of a 2-D product (``F.linear`` on a 3-D input returns
  a view), so a neuron layer with ``inplace=True`` can write its spikes over it without autograd
  copying the whole window in the backward pass, as it must for an in-place write into a view;
* with ``spikes=True`` (:func:`spike_linear`) it saves its input for ``dL/dW = dL/dy^T x`` as
  ``uint8`` (1 byte per element instead of 4), exact for spikes (0, 1, or NRR's 0 / 1 / 2), and forms
  ``dL/dW`` chunk by chunk over the rows from float copies of at most ``CHUNK_BYTES`` (2 MiB) each; only for
  spike tensors of at least ``BYTES_FROM`` (8 MiB of floats), below which the conversions cost more time than
  the memory is worth.  Behind a
  neuron layer this removes a window-sized float tensor from what a step holds while the next layer's
  backward runs (the spikes, the neuron's saved state and the spikes' gradient would be alive at once).

With ``spikes=True`` the caller guarantees that ``x`` holds spikes (small non-negative integers, a neuron
layer's output); the library's networks pass only their own neuron layers' outputs.  Without a gradient
or under autocast (``--precision bf16``) both are plain ``layer(x)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

#: the float copies made in the backward pass of :func:`spike_linear` hold at most this many bytes each (rows of
#: the input at a time): a bounded temporary however long the window, and one product for small inputs
CHUNK_BYTES = 2 * 2**20
#: spikes are kept as bytes only from this size of their float tensor on: below it the conversions (one pass
#: each way) cost more time than the memory saved is worth (at T = 20 on the 784-500-10 MLP, 4 MB of spikes,
#: they made the training step about 4 % slower on two CPU cores)
BYTES_FROM = 8 * 2**20


class _TimeLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, spikes: bool):  # type: ignore[override]
        out = x.new_empty((*x.shape[:-1], weight.shape[0]))  # a tensor of its own, written by the product
        x2, o2 = x.reshape(-1, x.shape[-1]), out.view(-1, weight.shape[0])
        if bias is None:
            torch.mm(x2, weight.t(), out=o2)
        else:
            torch.addmm(bias, x2, weight.t(), out=o2)
        ctx.save_for_backward(x.to(torch.uint8) if spikes else x, weight)
        ctx.spikes, ctx.has_bias = spikes, bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        saved, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out.matmul(weight.to(grad_out.dtype))
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        if ctx.needs_input_grad[1]:
            x2 = saved.reshape(-1, saved.shape[-1])
            if ctx.spikes:
                step = max(1, CHUNK_BYTES // (x2.shape[1] * grad_out.element_size()))
                grad_w = torch.zeros(weight.shape, dtype=grad_out.dtype, device=grad_out.device)
                for start in range(0, x2.shape[0], step):
                    grad_w.addmm_(g2[start:start + step].t(), x2[start:start + step].to(grad_out.dtype))
            else:
                grad_w = g2.t().mm(x2)
            grad_w = grad_w.to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g2.sum(0)
        return grad_x, grad_w, grad_b, None


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # PyTorch before 2.4: one query per device type
        return torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()


def time_linear(layer: nn.Linear, x: Tensor, spikes: bool = False) -> Tensor:
    """``layer(x)`` over ``[..., in_features]``, the result a tensor of its own (see the module docstring);
    ``spikes=True``: ``x`` is spikes, saved as bytes for the backward pass."""
    if not torch.is_grad_enabled() or _autocast_on(x.device.type) or not x.is_floating_point():
        return layer(x)
    spikes = spikes and x.numel() * x.element_size() >= BYTES_FROM
    return _TimeLinear.apply(x, layer.weight, layer.bias, spikes)


def spike_linear(layer: nn.Linear, spikes: Tensor) -> Tensor:
    """:func:`time_linear` of ``spikes``, a neuron layer's output, kept as bytes for the backward pass."""
    return time_linear(layer, spikes, spikes=True)


__all__ = ["time_linear", "spike_linear", "CHUNK_BYTES", "BYTES_FROM"]
