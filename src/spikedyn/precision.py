"""Mixed-precision training: the synaptic products in bfloat16, the neurons in float32.

``TrainConfig.precision`` (``spikedyn train --precision``) picks the arithmetic of a run:

* ``"fp32"`` (default): everything in float32.
* ``"bf16"``: the forward pass (and the backward of what it computed) runs under
  :func:`torch.autocast` with ``dtype=torch.bfloat16``: PyTorch's autocast computes the
  convolutions and matrix products, which dominate a step of these networks, with bfloat16
  inputs and float32 accumulation, while parameters, optimiser state and the loss stay float32.
  The neuron layers lift the bfloat16 synaptic current they receive back to float32
  (:meth:`spikedyn.neurons.base.NeuronLayer.promote`), so membrane potentials, thresholds and
  surrogate windows are computed in single precision as without autocast; spikes (0/1) and
  pooled spike averages are exact in bfloat16, so only the weights and analog inputs are rounded
  (8 significant bits) on their way into a product.

Where it pays: on CPUs with bfloat16 matrix units (Intel AMX, ``amx_bf16`` in ``/proc/cpuinfo``)
a large product runs about four times faster than in float32; on GPUs with bfloat16 tensor cores
(NVIDIA Ampere and later) likewise.  Elsewhere PyTorch emulates it, which can be far slower: on an
AVX2-only CPU (AMD EPYC, 2 threads) the forward and backward of the PLIF MNIST net's 128-channel 3x3
convolution took 17x and of its 6272 -> 2048 product 9x as long as in float32 (``benchmarks/bf16_cpu.py``,
``results/bf16_cpu.md``), so the trainer warns (:func:`warn_if_emulated`) when a CPU run asks for
bf16 on a CPU without bfloat16 units.  A run may switch precision when resumed (it changes the
arithmetic, not the model).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import ContextManager

import torch

#: the choices of ``TrainConfig.precision`` / ``--precision``
PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ``ValueError`` naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"unknown precision {precision!r} (--precision); choose one of {', '.join(PRECISIONS)} "
            f"(fp32: float32 throughout; bf16: bfloat16 synaptic products under autocast, float32 neurons)"
        )
    return precision


def autocast(precision: str, device: torch.device | str) -> ContextManager:
    """The context a forward pass of a ``precision`` run runs in on ``device``.

    ``fp32``: a no-op context; ``bf16``: ``torch.autocast(device_type, dtype=torch.bfloat16)``.
    Raises ``ValueError`` where the device cannot run bfloat16 autocast (a CUDA GPU without
    bfloat16 support, or a device type autocast does not know).
    """
    check_precision(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    if device_type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"--precision bf16 needs a GPU with bfloat16 support (NVIDIA Ampere or later); {torch.cuda.get_device_name()} "
            f"has none: use --precision fp32"
        )
    if not torch.amp.is_autocast_available(device_type):
        raise ValueError(f"--precision bf16: PyTorch has no autocast for device type {device_type!r}; use --precision fp32")
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16)


def cpu_has_bf16_units() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX tiles), as PyTorch detects it."""
    probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(bool(probe()) for probe in probes if probe is not None)


def warn_if_emulated(precision: str, device: torch.device | str) -> None:
    """Warn when ``precision`` is ``bf16`` on a CPU that has to emulate bfloat16 (no AVX512-BF16, no AMX),
    where a conv net's step runs many times slower than in float32 (module docstring)."""
    if precision == "bf16" and torch.device(device).type == "cpu" and not cpu_has_bf16_units():
        warnings.warn(
            "--precision bf16 on a CPU without bfloat16 units (neither AVX512-BF16 nor AMX): PyTorch emulates the "
            "bfloat16 products here, which made a conv net's products many times slower than float32 (a 3x3 "
            "convolution's forward and backward 17x, benchmarks/bf16_cpu.py); use --precision fp32 on this machine",
            stacklevel=2,
        )


def lift_to_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` as float32 when autocast produced it in a lower precision (bfloat16 / float16) for a neuron
    layer; unchanged otherwise (a model converted to bfloat16 on purpose keeps its dtype outside autocast)."""
    if x.dtype in (torch.bfloat16, torch.float16) and torch.is_autocast_enabled(x.device.type):
        return x.float()
    return x
