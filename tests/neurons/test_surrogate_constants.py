"""Every neuron family's spike gradient, on the reference and the fused path, against hand values.

The fast-vs-reference tests compare two paths that share one surrogate object, so a wrong
constant (window width 0.4 instead of 0.5, height 0.5 instead of 1, ATan alpha) passes them.
Here the gradients are computed by hand from the spec's constants instead:

* CASIA cells (decay-LIF, MDN 2nd-order, NRR): ``dS/dV = 1`` if ``|V - 0.5| < 0.5`` else 0
  (RectWindow, width 0.5, height 1, common.md section 2; strict edges);
* PLIF: ``dS/dH = alpha / (2 (1 + (pi alpha x / 2)^2))``, ``x = H - 1``, alpha = 2, i.e.
  ``1 / (1 + pi^2 x^2)`` (plif.md section 2).

One-step windows isolate the surrogate; a two-step decay-LIF case also pins the reset-flag path.
"""

import math

import pytest
import torch

from spikedyn.neurons import RecurrentNRR, make_neuron

BOTH_PATHS = pytest.mark.parametrize("fast", [False, True], ids=["reference", "fused"])


def input_grad(layer, x: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_()
    spikes = layer(x)
    (spikes if weights is None else spikes * weights).sum().backward()
    return spikes.detach(), x.grad


@BOTH_PATHS
@pytest.mark.parametrize("kind", ["lif-identity", "lif"])
def test_decay_lif_one_step_window(kind, fast):
    """V_1 = I_1, so dS/dI is the window itself at V - 0.5 in {-0.7, -0.5, -0.45, -0.1, 0, 0.3, 0.45, 0.5, 0.6}.

    Catches width 0.4 (the +-0.45 points), height 0.5, and a closed window (exact +-0.5 points).
    ``lif`` feeds I = sigmoid(z): the gradient picks up I (1 - I).
    """
    current = torch.tensor([-0.2, 0.0, 0.05, 0.4, 0.5, 0.8, 0.95, 1.0, 1.1], dtype=torch.float64)
    window = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    layer = make_neuron(kind, 1, fast=fast)
    if kind == "lif-identity":
        spikes, grad = input_grad(layer, current.reshape(1, -1, 1))
        expected = window
    else:  # sigmoid input: feed z = logit(I) for the currents strictly inside (0, 1)
        inside = (current > 0) & (current < 1)
        current, window = current[inside], window[inside]
        spikes, grad = input_grad(layer, torch.logit(current).reshape(1, -1, 1))
        expected = window * current * (1 - current)
    assert spikes.flatten().tolist() == (current > 0.5).double().tolist()
    torch.testing.assert_close(grad.flatten(), expected, rtol=1e-9, atol=1e-12)


@BOTH_PATHS
@pytest.mark.parametrize("detach_reset", [False, True])
def test_decay_lif_two_steps_through_the_reset_flag(fast, detach_reset):
    """``V_2 = 0.2 V_1 (1 - S_1) + I_2``; loss ``S_2``; the reset flag S_1 is differentiated.

    Sample 1: I = (0.3, 0.6): V_1 = 0.3 (S_1 = 0), V_2 = 0.66; dS_2/dI_2 = 1,
    dS_2/dI_1 = 1 * (0.2 (1 - S_1) - 0.2 V_1 * 1) = 0.2 - 0.06 = 0.14.
    Sample 2: I = (0.8, 0.3): V_1 = 0.8 (S_1 = 1), V_2 = 0.3; dS_2/dI_1 = 0 - 0.2 * 0.8 = -0.16.
    Height 0.5 would give 0.5 (0.2 - 0.03) = 0.085 for sample 1.
    With ``detach_reset=True`` the reset-flag term goes: dS_2/dI_1 = 0.2 (1 - S_1) = 0.2 and 0.
    """
    layer = make_neuron("lif-identity", 1, fast=fast, detach_reset=detach_reset)
    x = torch.tensor([[0.3, 0.8], [0.6, 0.3]], dtype=torch.float64).reshape(2, 2, 1)
    only_last = torch.tensor([0.0, 1.0], dtype=torch.float64).reshape(2, 1, 1)
    spikes, grad = input_grad(layer, x, only_last)
    assert spikes.flatten().tolist() == [0.0, 1.0, 1.0, 0.0]
    first = [0.2, 0.0] if detach_reset else [0.14, -0.16]
    torch.testing.assert_close(grad.reshape(2, 2), torch.tensor([first, [1.0, 1.0]], dtype=torch.float64),
                               rtol=1e-9, atol=1e-12)


@BOTH_PATHS
@pytest.mark.parametrize("kind", ["2nd-fs", "mdn"])
def test_second_order_one_step_window(kind, fast):
    """V_1 = V_0^2 - U_0 + I = I - 0.08 (V_0 = 0, U_0 = 0.08), I = sigmoid(z); dS/dz = window(V_1 - 0.5) I (1 - I).

    I = 0.05, 0.1, 0.5, 0.9 puts V_1 - 0.5 at -0.53 (outside), -0.48 (inside; outside for width
    0.4), -0.08, 0.32: dS/dz = 0, 0.09, 0.25, 0.09.
    """
    current = torch.tensor([0.05, 0.1, 0.5, 0.9], dtype=torch.float64)
    layer = make_neuron(kind, 1, fast=fast).double()
    spikes, grad = input_grad(layer, torch.logit(current).reshape(1, -1, 1))
    assert spikes.flatten().tolist() == [0.0, 0.0, 0.0, 1.0]  # V_1 = 0.82 > 0.5
    torch.testing.assert_close(grad.flatten(), torch.tensor([0.0, 0.09, 0.25, 0.09], dtype=torch.float64),
                               rtol=1e-9, atol=1e-12)


@BOTH_PATHS
@pytest.mark.parametrize("kind", ["plif", "lif-tau"])
def test_plif_one_step_atan(kind, fast):
    """H_1 = k X with k = 1/tau = 0.5, x = H_1 - 1; dS/dX = k / (1 + pi^2 x^2) (ATan, alpha = 2).

    X = 2, 3, 0, 1: x = 0, 0.5, -1, -0.5: dS/dX = 0.5, 0.5 / (1 + pi^2/4), 0.5 / (1 + pi^2), 0.5 / (1 + pi^2/4).
    For PLIF, dS/da = sum dS/dH * X * k (1 - k) (plif.md section 2, dH/da = X k (1 - k) with V_0 = 0).
    """
    x = torch.tensor([2.0, 3.0, 0.0, 1.0], dtype=torch.float64)
    surrogate = torch.tensor(
        [1.0, 1 / (1 + math.pi**2 / 4), 1 / (1 + math.pi**2), 1 / (1 + math.pi**2 / 4)], dtype=torch.float64
    )
    layer = make_neuron(kind, 1, fast=fast).double()
    spikes, grad = input_grad(layer, x.reshape(1, -1, 1))
    assert spikes.flatten().tolist() == [1.0, 1.0, 0.0, 0.0]  # fires at H = V_th exactly
    torch.testing.assert_close(grad.flatten(), 0.5 * surrogate, rtol=1e-9, atol=1e-12)
    if kind == "plif":
        torch.testing.assert_close(layer.a.grad, (surrogate * x * 0.25).sum(), rtol=1e-9, atol=1e-12)


@BOTH_PATHS
def test_nrr_cell_one_step_both_channels(fast):
    """NRR at t = 1: a_1 = 0, S_0 = 0, so V^f_1 = z^f_1 = x (W_f = identity, b_f = 0) and V^r_1 = b_r.

    dS/dx_j = window(x_j - 0.5), dS/db_r_j = window(b_r_j - 0.5), the window of width 0.5, height 1,
    strict edges, for both channels.
    """
    values = torch.tensor([-0.2, 0.0, 0.05, 0.5, 0.95, 1.0, 1.2], dtype=torch.float64)
    window = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    n = len(values)
    layer = RecurrentNRR(n, n, fast=fast, mask_seed=0).double()
    with torch.no_grad():
        layer.fc_f.weight.copy_(torch.eye(n, dtype=torch.float64))
        layer.fc_f.bias.zero_()
        layer.fc_r.weight.zero_()
        layer.fc_r.bias.copy_(values.flip(0))
    spikes, grad = input_grad(layer, values.reshape(1, 1, n))
    assert spikes.flatten().tolist() == ((values > 0.5).double() + (values.flip(0) > 0.5).double()).tolist()
    torch.testing.assert_close(grad.flatten(), window, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(layer.fc_r.bias.grad, window.flip(0), rtol=1e-9, atol=1e-12)
