"""Every Triton kernel launch the layers make compiles to GPU machine code, without a GPU.

Triton's interpreter (which runs the other kernel tests on a machine without a GPU) executes the kernels
as NumPy code, so it never sees what only the compiler does: a construct the code generator rejects,
or code that blows up in size.  The first real GPU run found one of those: the NRR kernel's recurrent
product, unrolled over the layer's width, made 1.2 MB of PTX for a 256-neuron layer and kept ``ptxas``
busy for minutes per kernel.  Here the launches of small forward and backward passes of every family
and option (the NRR cell also at the widths the papers use, 256 and 500) are recorded in the
interpreter, then a fresh process without the interpreter compiles each one ahead of time for an
H100 (sm_90) with Triton's own compiler and ``ptxas`` and reports the size of its PTX.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import pytest
import torch

from spikedyn import kernels
from spikedyn.neurons import DecayLIF, ParametricLIF, RecurrentNRR, SecondOrder, make_neuron
from spikedyn.surrogate import ATan, RectWindow, Sigmoid

triton = pytest.importorskip("triton", reason="the Triton kernel tests need the triton package (pip install triton)")
if not kernels.interpreter_mode():
    pytest.skip("the launches are recorded in Triton's interpreter (on a GPU the kernel tests compile them)",
                allow_module_level=True)

#: PTX of a kernel above this size means something was unrolled that should not be (the wide NRR kernels
#: are about 100-220 kB as loops; unrolled, 1.2 MB at 256 neurons)
MAX_PTX_KB = 400
COMPILE = r"""
import json, sys, time
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler.compiler import ASTSource
import importlib
target = GPUTarget("cuda", 90, 32)
out = []
for mod, name, signature, constants, options in json.load(sys.stdin):
    fn = getattr(importlib.import_module(mod), name)
    start = time.perf_counter()
    try:
        compiled = triton.compile(ASTSource(fn, signature, constants), target=target, options=options)
        out.append({"kernel": name, "constants": constants, "ptx_kb": len(compiled.asm["ptx"]) / 1000,
                    "seconds": time.perf_counter() - start})
    except Exception as err:  # reported by the test
        out.append({"kernel": name, "constants": constants, "error": f"{type(err).__name__}: {err}"[:2000]})
print(json.dumps(out))
"""


def _type_of(value) -> str:
    if isinstance(value, torch.Tensor):
        return "*" + {torch.float32: "fp32", torch.float64: "fp64", torch.int64: "i64", torch.int32: "i32"}[value.dtype]
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -(2**31) <= value < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"
    raise TypeError(f"no Triton type for {value!r}")


def _record_launches(exercise) -> list:
    """``(module, kernel, signature, constexprs, options)`` of every launch while ``exercise()`` runs."""
    from triton.runtime.interpreter import InterpretedFunction

    seen: dict[str, list] = {}
    original = InterpretedFunction.run

    def recording(self, *args, **kwargs):
        params = inspect.signature(self.fn).parameters
        launch = {k: v for k, v in kwargs.items() if k not in ("grid", "warmup")}
        options = {k: launch.pop(k) for k in ("num_warps", "num_stages") if k in launch}
        bound = dict(zip(params, args), **launch)
        signature, constants = {}, {}
        for name, param in params.items():
            if "constexpr" in str(param.annotation):
                signature[name], constants[name] = "constexpr", bound[name]
            else:
                signature[name] = _type_of(bound[name])
        entry = [self.fn.__module__, self.fn.__name__, signature, constants, options]
        seen[json.dumps(entry, sort_keys=True)] = entry
        return original(self, *args, **kwargs)

    InterpretedFunction.run = recording
    try:
        exercise()
    finally:
        InterpretedFunction.run = original
    return list(seen.values())


def _every_family_forward_and_backward() -> None:
    torch.manual_seed(0)

    def run(layer, x):
        x = x.clone().requires_grad_(True)
        out = layer(x)
        (out * torch.rand_like(out)).sum().backward()

    x = 1.5 * torch.rand(3, 2, 5)
    with kernels.backend("triton"):
        for surrogate in (RectWindow(), ATan(), Sigmoid()):
            for detach in (False, True):
                run(DecayLIF(surrogate=surrogate, detach_reset=detach), x)
        for learnable in (True, False):
            for detach in (False, True):
                run(ParametricLIF(tau=2.0, learnable=learnable, detach_reset=detach), x)
        for kind in ("mdn", "2nd-fs"):
            run(make_neuron(kind, 5), x)
        run(SecondOrder(shape=5, surrogate=ATan()), x)
        run(SecondOrder(shape=5, theta_slots=2), x)  # the authors' per-batch-slot theta
        for width in (37, 256, 500):  # a small layer and the papers' widths
            for detach in (False, True):
                layer = RecurrentNRR(4, width, mask_seed=1, detach_prev=detach)
                run(layer, torch.rand(2, 3, 4))
        run(RecurrentNRR(4, 37, mask_seed=1, recurrent_input="membrane", detach_prev=False), torch.rand(2, 3, 4))
        run(RecurrentNRR(4, 37, recurrent=False, detach_prev=False), torch.rand(2, 3, 4))


@pytest.mark.skipif(sys.platform != "linux", reason="Triton compiles for GPUs on Linux only")
def test_every_kernel_launch_compiles_for_an_h100():
    launches = _record_launches(_every_family_forward_and_backward)
    kernels_seen = {entry[1] for entry in launches}
    assert {"_decay_lif_forward", "_decay_lif_backward", "_plif_forward", "_plif_backward", "_second_order_forward",
            "_second_order_backward", "_nrr_forward", "_nrr_backward"} <= kernels_seen
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    try:  # about 20 s on two cores; an unrolled kernel keeps ptxas busy for minutes
        done = subprocess.run([sys.executable, "-c", COMPILE], input=json.dumps(launches), capture_output=True,
                              text=True, env=env, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("compiling the kernels took over 5 minutes: a loop was probably unrolled over a wide dimension")
    if done.returncode != 0 and "ptxas" in done.stderr and "not found" in done.stderr.lower():
        pytest.skip("this Triton has no ptxas to compile with")
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(results) == len(launches)
    failed = [r for r in results if "error" in r]
    assert not failed, failed
    too_big = [r for r in results if r["ptx_kb"] > MAX_PTX_KB]
    assert not too_big, too_big
