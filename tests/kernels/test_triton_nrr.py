"""The NRR cell's fused Triton kernels against its per-step reference path (spec nrr.md section 2).

Run in Triton's interpreter without a GPU (``tests/conftest.py``), on the device with one.  Every form of
the cell: NRR's two channels with and without the adaptive threshold, the recurrent input on the membrane,
no recurrence (the feed-forward ablation), both gradient forms (BPTT and reward propagation's detached
``S_{t-1}``), a batch spread over several kernel instances (the last one partial) and a layer width that
is not a power of two.  The golden trace of the spec is checked on the kernels too.

The bugs these tests catch: a recurrent product that reads this step's spikes instead of the last step's,
a missing reset-factor / threshold-trace / ``W~_r`` term of BPTT's ``dL/dS``, the membrane gradient left
off the recurrent channel, or padding columns leaking into the product.
"""

from __future__ import annotations

import pytest
import torch

from spikedyn import kernels
from spikedyn.neurons import RecurrentNRR

pytest.importorskip("triton", reason="the Triton kernel tests need the triton package (pip install triton)")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and not kernels.interpreter_mode():
    pytest.skip("no GPU and TRITON_INTERPRET is not set: the kernels cannot run here", allow_module_level=True)

FORMS = {
    "nrr-bptt": dict(detach_prev=False),
    "nrr-rp": dict(detach_prev=True),
    "nrr-half-gamma-bptt": dict(gamma=0.5, detach_prev=False),
    "no-adaptive-threshold": dict(adaptive=False, detach_prev=False),
    "membrane-bptt": dict(recurrent_input="membrane", detach_prev=False),
    "membrane-rp": dict(recurrent_input="membrane", detach_prev=True),
    "feed-forward-only": dict(recurrent=False, detach_prev=False),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_nrr_kernels_match_the_reference_path(form):
    torch.manual_seed(0)
    layer = RecurrentNRR(7, 37, mask_seed=1, **FORMS[form]).to(DEVICE)
    if layer.fc_r is not None:
        with torch.no_grad():
            layer.fc_r.weight.mul_(3.0)  # a recurrence strong enough to make spikes of its own
        layer.apply_mask_()
    x = 1.5 * torch.rand(11, 19, 7, generator=torch.Generator().manual_seed(2)).to(DEVICE)  # 19 samples: 2 instances
    weight = torch.randn(11, 19, 37, generator=torch.Generator().manual_seed(3)).to(DEVICE)
    params = [p for p in layer.parameters() if p.requires_grad]

    def spikes_and_grads(run):
        s = run(x)
        return s.detach(), torch.autograd.grad((s * weight).sum(), params)

    ref_s, ref_g = spikes_and_grads(lambda inp: layer.run(inp).spikes)
    with kernels.backend("triton"):
        tri_s, tri_g = spikes_and_grads(layer)
    assert torch.equal(tri_s, ref_s)
    assert 0.05 < float((ref_s > 0).float().mean()) < 0.95
    names = [n for n, p in layer.named_parameters() if p.requires_grad]
    for name, r, t in zip(names, ref_g, tri_g):
        assert r.abs().max() > 0, f"{name}: zero reference gradient"
        torch.testing.assert_close(t, r, rtol=1e-5, atol=1e-5 * float(r.abs().max()), msg=lambda m: f"{name}: {m}")
    if layer.fc_r is not None:  # masked recurrent weights get exactly zero gradient on the kernel path too
        assert torch.all(tri_g[names.index("fc_r.weight")][layer.mask == 0] == 0)


@pytest.mark.parametrize("adaptive, expected", [(True, [1, 0, 1, 0, 1, 0, 0, 0]), (False, [1] * 8)])
def test_nrr_kernel_reference_trace_from_the_spec(adaptive, expected):
    """spec nrr.md section 2: one neuron, no recurrent input, constant drive 0.6; gamma 1 gives the spikes
    of the trace (0.6, 0, 1) (0.5, 0.1, 0) (0.61, 0.09, 1) ...; gamma 0 fires every step."""
    from spikedyn.kernels.triton_nrr import NRRTriton

    layer = RecurrentNRR(1, 1, recurrent=False, adaptive=adaptive).to(DEVICE)
    zf = torch.full((8, 1, 1), 0.6, device=DEVICE)
    s = NRRTriton.apply(zf, None, None, layer.params, layer.surrogate, False, False)
    assert s.flatten().tolist() == expected
