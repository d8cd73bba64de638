"""Each surrogate's derivative against finite differences of its primitive."""

import pytest
import torch

from spikedyn.surrogate import ATan, RectWindow, Sigmoid, heaviside, make_surrogate

SURROGATES = [RectWindow(0.5, 1.0), RectWindow(0.3, 2.0), ATan(2.0), ATan(5.0), Sigmoid(4.0)]


@pytest.mark.parametrize("surrogate", SURROGATES, ids=repr)
def test_grad_is_derivative_of_primitive(surrogate):
    # avoid the kinks of the rectangular window's primitive at +-w
    x = torch.linspace(-2.0, 2.0, 401, dtype=torch.float64)
    if isinstance(surrogate, RectWindow):
        x = x[((x.abs() - surrogate.half_width).abs() > 1e-3)]
    h = 1e-6
    numeric = (surrogate.primitive(x + h) - surrogate.primitive(x - h)) / (2 * h)
    torch.testing.assert_close(surrogate.grad(x), numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("surrogate", SURROGATES, ids=repr)
def test_spike_forward_is_heaviside_and_backward_is_surrogate(surrogate):
    x = torch.linspace(-1.5, 1.5, 31, dtype=torch.float64, requires_grad=True)
    s = surrogate.spike(x)
    assert torch.equal(s, (x > 0).double())
    s.sum().backward()
    torch.testing.assert_close(x.grad, surrogate.grad(x.detach()))


def test_primitive_is_a_smoothed_step():
    for surrogate in (ATan(2.0), Sigmoid(4.0), RectWindow(0.5)):
        lo, hi = surrogate.primitive(torch.tensor([-50.0, 50.0])).tolist()
        assert lo == pytest.approx(0.0, abs=1e-2) and hi == pytest.approx(1.0 if not isinstance(surrogate, RectWindow) else 1.0, abs=1e-2)


def test_rect_window_constants_of_casia_code():
    g = RectWindow(0.5, 1.0).grad(torch.tensor([-0.6, -0.49, 0.0, 0.49, 0.5, 0.7]))
    assert g.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_atan_peak_value():
    assert ATan(2.0).grad(torch.tensor(0.0)).item() == pytest.approx(1.0)  # alpha / 2


def test_heaviside_inclusive_flag():
    x = torch.tensor([-1.0, 0.0, 1.0])
    assert heaviside(x, inclusive=True).tolist() == [0.0, 1.0, 1.0]
    assert heaviside(x, inclusive=False).tolist() == [0.0, 0.0, 1.0]


def test_make_surrogate_by_name():
    assert make_surrogate("atan", alpha=2.0) == ATan(2.0)
    with pytest.raises(ValueError, match="unknown surrogate"):
        make_surrogate("tanh")


@pytest.mark.parametrize("surrogate", SURROGATES, ids=repr)
def test_in_place_grad_matches_grad(surrogate):
    x = torch.linspace(-2.0, 2.0, 101, dtype=torch.float64)
    buf = x.clone()
    out = surrogate.grad_(buf)
    assert out.data_ptr() == buf.data_ptr()
    torch.testing.assert_close(out, surrogate.grad(x))
