"""Which implementation runs a neuron layer's whole-window fast path.

Three back ends compute the same thing:

* ``torch``: the hand-written PyTorch time loops of :mod:`spikedyn.neurons` (a few in-place
  tensor operations per step), the reference for the other two and the fallback;
* ``cpp``: the same loops compiled for CPU tensors (:mod:`spikedyn.kernels.cpu`: one pass over a
  step's elements instead of one operator per elementwise operation; built once on first use) for
  every family (decay-LIF, PLIF / fixed-tau LIF, the MDN 2nd-order neuron, the NRR cell);
* ``triton``: one fused kernel per direction and layer (:mod:`spikedyn.kernels.triton_neurons`):
  the forward keeps the membrane state in registers over all T steps and writes only the spikes
  and what backward needs; the backward runs the recursion through time in registers and writes
  the input's gradient (and per-element partial sums for the learnable dynamics).

The choice is automatic by device: a float32 CUDA tensor goes to Triton when it is importable
(it ships with PyTorch's CUDA builds), a CPU tensor to the compiled loops when they build, everything
else to the torch loops.  ``SPIKEDYN_KERNELS`` overrides it for the process: ``torch`` uses neither;
``cpp`` insists on the compiled loops for CPU tensors (an error when they cannot be built);
``triton`` uses Triton also for CPU tensors,
which only works under Triton's interpreter (``TRITON_INTERPRET=1`` set before Triton is first
imported) and is how the test suite checks the kernels' logic without a GPU.  :func:`backend`
does the same for a block of code.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
from typing import Iterator

import torch
from torch import Tensor

from ..surrogate import ATan, RectWindow, Sigmoid, Surrogate

#: surrogate classes compiled into the Triton kernels and the compiled CPU loops (others run the torch loops)
TRITON_SURROGATES = (RectWindow, ATan, Sigmoid)
#: their kinds in the kernels (see :func:`surrogate_args`)
SURROGATE_RECT, SURROGATE_ATAN, SURROGATE_SIGMOID = 0, 1, 2
BACKENDS = ("auto", "torch", "triton", "cpp")
_forced: str | None = None


def surrogate_args(surrogate: Surrogate) -> tuple[int, float, float]:
    """``(kind, p0, p1)`` of a compiled surrogate, as both kinds of kernels take it: rect
    ``p1 [|x| < p0]`` (half-width, height); atan ``p0 / (2 (1 + (p1 x)^2))`` (alpha, pi alpha / 2);
    sigmoid ``p0 s (1 - s)``, ``s = sigmoid(p0 x)`` (alpha, unused)."""
    if type(surrogate) is RectWindow:
        return SURROGATE_RECT, surrogate.half_width, surrogate.height
    if type(surrogate) is ATan:
        return SURROGATE_ATAN, surrogate.alpha, math.pi / 2.0 * surrogate.alpha
    if type(surrogate) is Sigmoid:
        return SURROGATE_SIGMOID, surrogate.alpha, 0.0
    raise TypeError(f"no compiled kernel for the surrogate {surrogate!r}; use the torch back end (SPIKEDYN_KERNELS=torch)")


def triton_importable() -> bool:
    """True when the ``triton`` package can be imported (it is not imported here)."""
    return importlib.util.find_spec("triton") is not None


def interpreter_mode() -> bool:
    """True when Triton kernels run in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def selected_backend() -> str:
    """The back end chosen for this process: :func:`backend`'s, else ``$SPIKEDYN_KERNELS``, else ``auto``."""
    choice = _forced or os.environ.get("SPIKEDYN_KERNELS", "auto").lower()
    if choice not in BACKENDS:
        raise ValueError(f"SPIKEDYN_KERNELS={choice!r} is not a kernel back end; choose one of {', '.join(BACKENDS)}")
    return choice


def use_triton(x: Tensor, surrogate: Surrogate | None = None) -> bool:
    """Whether a fast path fed ``x`` (with ``surrogate``) runs the Triton kernels.

    ``auto``: ``x`` is a float32 CUDA tensor and Triton is importable.  ``triton``: any float32
    tensor (a CPU tensor needs the interpreter: a clear error otherwise).  ``torch``, ``cpp``: never.
    Other dtypes (float64; bf16 is lifted to float32 by the neurons first) and surrogates without
    a compiled kind (:data:`TRITON_SURROGATES`) always take the torch loops.
    """
    choice = selected_backend()
    if choice in ("torch", "cpp") or x.dtype != torch.float32:
        return False
    if surrogate is not None and type(surrogate) not in TRITON_SURROGATES:
        return False
    if choice == "auto":
        return x.is_cuda and triton_importable()
    if not triton_importable():
        raise RuntimeError(
            "the Triton kernel back end was requested (SPIKEDYN_KERNELS=triton) but Triton is not installed: "
            "pip install triton, or unset SPIKEDYN_KERNELS"
        )
    if not x.is_cuda and not interpreter_mode():
        raise RuntimeError(
            "the Triton kernels got a CPU tensor: on a machine without a GPU they run only in Triton's interpreter; "
            "set TRITON_INTERPRET=1 before the first import of triton, or use SPIKEDYN_KERNELS=torch"
        )
    return True


def use_cpp(x: Tensor, surrogate: Surrogate | None = None, float64: bool = True) -> bool:
    """Whether a fast path fed ``x`` runs the compiled CPU loops (:mod:`spikedyn.kernels.cpu`).

    ``auto``: ``x`` is a float32 or float64 CPU tensor and the loops build (they are compiled on
    the first call; a failed build warns once and gives False).  ``cpp``: the same, but a failed
    build is an error.  ``torch`` and ``triton``: never.  A family whose compiled loop computes the
    surrogate itself passes it: then only float32 and the surrogates of :data:`TRITON_SURROGATES` qualify;
    ``float64=False``: a family whose compiled loop is float32 only.
    """
    choice = selected_backend()
    if choice in ("torch", "triton") or x.is_cuda or x.dtype not in (torch.float32, torch.float64):
        return False
    if (surrogate is not None or not float64) and x.dtype != torch.float32:
        return False
    if surrogate is not None and type(surrogate) not in TRITON_SURROGATES:
        return False
    from . import cpu

    if cpu.available():
        return True
    if choice == "cpp":
        raise RuntimeError(
            f"the compiled CPU kernels were requested (SPIKEDYN_KERNELS=cpp) but cannot be used: "
            f"{cpu.unavailable_reason()}; unset SPIKEDYN_KERNELS to fall back to the PyTorch loops"
        )
    return False


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """Run the enclosed code with the fast paths on back end ``name`` (``auto``, ``torch``, ``triton``, ``cpp``)."""
    global _forced
    if name not in BACKENDS:
        raise ValueError(f"unknown kernel back end {name!r}; choose one of {', '.join(BACKENDS)}")
    previous, _forced = _forced, name
    try:
        yield
    finally:
        _forced = previous


__all__ = ["BACKENDS", "TRITON_SURROGATES", "backend", "surrogate_args", "interpreter_mode", "selected_backend", "triton_importable", "use_cpp", "use_triton"]
