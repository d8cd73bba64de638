"""Which back end a fast path takes (spikedyn.kernels.use_triton), without running any kernel."""

from __future__ import annotations

import pytest
import torch

from spikedyn import kernels
from spikedyn.neurons import DecayLIF
from spikedyn.surrogate import ATan, Surrogate


class Custom(Surrogate):
    def grad(self, x):
        return torch.ones_like(x)


def test_cpu_tensors_take_the_torch_loops_by_default(monkeypatch):
    monkeypatch.delenv("SPIKEDYN_KERNELS", raising=False)
    assert kernels.selected_backend() == "auto"
    assert not kernels.use_triton(torch.zeros(2, 3))


def test_forcing_triton_on_cpu_follows_the_interpreter(monkeypatch):
    if not kernels.triton_importable():
        pytest.skip("triton is not installed")
    with kernels.backend("triton"):
        monkeypatch.setenv("TRITON_INTERPRET", "1")
        assert kernels.use_triton(torch.zeros(2, 3), ATan())
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
            kernels.use_triton(torch.zeros(2, 3))


def test_other_dtypes_and_surrogates_keep_the_torch_loops():
    with kernels.backend("triton"):
        assert not kernels.use_triton(torch.zeros(2, 3, dtype=torch.float64))
        assert not kernels.use_triton(torch.zeros(2, 3), Custom())
    with kernels.backend("torch"):
        assert not kernels.use_triton(torch.zeros(2, 3), ATan())


def test_environment_choice_and_its_errors(monkeypatch):
    monkeypatch.setenv("SPIKEDYN_KERNELS", "Torch")
    assert kernels.selected_backend() == "torch"
    monkeypatch.setenv("SPIKEDYN_KERNELS", "cuda")
    with pytest.raises(ValueError, match="SPIKEDYN_KERNELS='cuda' is not a kernel back end; choose one of auto"):
        kernels.selected_backend()
    with pytest.raises(ValueError, match="unknown kernel back end 'fast'"):
        with kernels.backend("fast"):
            pass


def test_missing_triton_is_a_clear_error_when_asked_for(monkeypatch):
    monkeypatch.setattr(kernels, "triton_importable", lambda: False)
    assert not kernels.use_triton(torch.zeros(2, 3))  # auto: the torch loops, silently
    with kernels.backend("triton"), pytest.raises(RuntimeError, match="Triton is not installed: pip install triton"):
        DecayLIF()(torch.zeros(3, 2, 4))


def test_a_deferred_state_check_warns_at_a_later_call(monkeypatch):
    """On a GPU the membrane check is read at a later call (no host wait); forced here on the CPU."""
    from spikedyn.neurons.base import NeuronStateWarning, read_deferred_state_checks

    layer = DecayLIF()
    monkeypatch.setattr(type(layer), "defer_watch", lambda self, healthy: True)
    bad = torch.zeros(3, 2, 4)
    bad[1, 0, 0] = float("inf")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(bad)  # queued, not read yet
    with pytest.warns(NeuronStateWarning, match="at the end of a recent call is non-finite"):
        layer(torch.zeros(3, 2, 4))  # reads the earlier call's check
    layer2 = DecayLIF()
    monkeypatch.setattr(type(layer2), "defer_watch", lambda self, healthy: True)
    layer2(bad)
    with pytest.warns(NeuronStateWarning, match="V at the end of a recent call"):
        read_deferred_state_checks(torch.nn.Sequential(layer2))
    layer3 = DecayLIF()
    layer3(torch.zeros(3, 2, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_deferred_state_checks(torch.nn.Sequential(layer3))  # nothing pending, nothing wrong
