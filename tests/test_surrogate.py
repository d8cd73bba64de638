"""The surrogate derivatives and primitives.

Two kinds of checks: each ``grad`` is the derivative of its ``primitive`` (finite differences,
any constants), and -- because that passes with a wrong constant used in both -- the values of
``grad``, ``grad_`` and ``primitive`` pinned against numbers computed by hand from the spec's
formulas (common.md section 2): RectWindow ``dS/dV = 1 if |V - V_th| < 0.5 else 0`` (height 1,
not normalised), ATan ``alpha / (2 (1 + (pi alpha x / 2)^2))`` with alpha = 2.
"""

import math

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
    """Backward multiplies the incoming gradient (not 1) by the surrogate derivative."""
    x = torch.linspace(-1.5, 1.5, 31, dtype=torch.float64, requires_grad=True)
    s = surrogate.spike(x)
    assert torch.equal(s, (x > 0).double())
    upstream = torch.linspace(-2.0, 3.0, 31, dtype=torch.float64)
    (s * upstream).sum().backward()
    torch.testing.assert_close(x.grad, upstream * surrogate.grad(x.detach()))
    at_zero = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    assert surrogate.spike(at_zero, inclusive=True).tolist() == [0.0, 1.0, 1.0]
    assert surrogate.spike(at_zero).tolist() == [0.0, 0.0, 1.0]


#: (surrogate, x, expected grad) computed by hand from the spec's formulas.
#: RectWindow(w, h): h inside the open window |x| < w (0 exactly at |x| = w);
#: ATan(alpha): alpha / (2 (1 + (pi alpha x / 2)^2)), e.g. alpha = 2, x = 0.5: 1 / (1 + pi^2 / 4) = 0.28840044;
#: Sigmoid(4): 4 s (1 - s), s = sigmoid(4 x), e.g. x = 0.5: 4 * 0.88079708 * 0.11920292 = 0.41997434.
HAND_GRADS = [
    (RectWindow(0.5, 1.0), [-0.7, -0.5, -0.45, 0.0, 0.45, 0.5, 0.7], [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]),
    (RectWindow(0.3, 2.0), [-0.5, -0.3, -0.29, 0.0, 0.29, 0.3, 0.5], [0.0, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0]),
    (ATan(2.0), [0.0, 0.5, -0.25, 1.0], [1.0, 0.288400439142001, 0.6184864581588363, 0.09199966835037524]),
    (ATan(5.0), [0.0, 0.1], [2.5, 1.5462161453970906]),
    (Sigmoid(4.0), [0.0, 0.5, -0.5], [1.0, 0.41997434161402647, 0.41997434161402647]),
]


@pytest.mark.parametrize("surrogate, x, expected", HAND_GRADS, ids=[repr(c[0]) for c in HAND_GRADS])
def test_grad_values_computed_by_hand(surrogate, x, expected):
    """Catches a wrong window width or height, alpha, or a non-strict window edge, in grad and grad_."""
    xs = torch.tensor(x, dtype=torch.float64)
    want = torch.tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(surrogate.grad(xs), want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(surrogate.grad_(xs.clone()), want, rtol=1e-12, atol=1e-12)


def test_default_constants_are_the_spec_constants():
    """Catches a changed default: RectWindow() is width 0.5, height 1; ATan() is alpha 2; Sigmoid() alpha 4."""
    x = torch.tensor([-0.45, 0.45, 0.55], dtype=torch.float64)
    assert RectWindow().grad(x).tolist() == [1.0, 1.0, 0.0]
    assert make_surrogate("rect").grad(x).tolist() == [1.0, 1.0, 0.0]
    assert ATan().grad(torch.tensor(0.5, dtype=torch.float64)).item() == pytest.approx(1 / (1 + math.pi**2 / 4), rel=1e-12)
    assert Sigmoid().grad(torch.tensor(0.0)).item() == pytest.approx(1.0)  # alpha / 4 with alpha = 4


def test_primitive_values_computed_by_hand():
    """The primitives themselves: a smoothed step from 0 to 2 w h (RectWindow) or to 1 (ATan, Sigmoid).

    RectWindow(0.3, 2): P(x) = 2 clamp(x + 0.3, 0, 0.6); ATan(2): arctan(pi x)/pi + 1/2, at 0.5:
    0.81954646; Sigmoid(4): sigmoid(4 x).
    """
    x = torch.tensor([-1.0, -0.3, 0.0, 0.1, 0.3, 1.0], dtype=torch.float64)
    torch.testing.assert_close(RectWindow(0.3, 2.0).primitive(x), torch.tensor([0.0, 0.0, 0.6, 0.8, 1.2, 1.2], dtype=torch.float64))
    torch.testing.assert_close(RectWindow(0.5, 1.0).primitive(x), torch.tensor([0.0, 0.2, 0.5, 0.6, 0.8, 1.0], dtype=torch.float64))
    far = torch.tensor([-50.0, 0.0, 0.5, 50.0], dtype=torch.float64)
    lo, mid, half, hi = ATan(2.0).primitive(far).tolist()
    assert (lo, mid, hi) == pytest.approx((0.0, 0.5, 1.0), abs=1e-2) and half == pytest.approx(0.8195464633859458, rel=1e-12)
    lo, mid, hi = Sigmoid(4.0).primitive(torch.tensor([-50.0, 0.0, 50.0])).tolist()
    assert (lo, mid, hi) == pytest.approx((0.0, 0.5, 1.0), abs=1e-6)


def test_rect_window_rejects_a_non_positive_width():
    with pytest.raises(ValueError, match="half_width must be > 0"):
        RectWindow(0.0)


def test_atan_peak_value():
    assert ATan(2.0).grad(torch.tensor(0.0)).item() == pytest.approx(1.0)  # alpha / 2


def test_heaviside_inclusive_flag():
    """PLIF fires at x = 0 (inclusive); the CASIA cells, and the default, only above it."""
    x = torch.tensor([-1.0, 0.0, 1.0])
    assert heaviside(x).tolist() == [0.0, 0.0, 1.0]
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


def test_surrogates_compare_by_kind_and_constants():
    """Equality and hashing look at the class and every constant (layers compare their surrogates)."""
    assert RectWindow(0.5, 1.0) == RectWindow() and hash(RectWindow(0.5, 1.0)) == hash(RectWindow())
    assert RectWindow(0.5, 1.0) != RectWindow(0.4, 1.0) and RectWindow(0.5, 1.0) != RectWindow(0.5, 0.5)
    assert ATan(2.0) != Sigmoid(2.0) and len({ATan(2.0), ATan(2.0), ATan(3.0)}) == 2
    assert repr(RectWindow()) == "RectWindow(half_width=0.5, height=1.0)"
    assert make_surrogate("ATan") == ATan(2.0) and make_surrogate("sigmoid", alpha=3.0) == Sigmoid(3.0)


@pytest.mark.parametrize("surrogate", SURROGATES, ids=repr)
def test_in_place_grad_times_incoming_gradient(surrogate):
    """Catches a fused ``grad_mul_`` (the BPTT kernels' first chain-rule product) that differs from grad * g."""
    x = torch.linspace(-2.0, 2.0, 101, dtype=torch.float64)
    g = torch.linspace(3.0, -1.0, 101, dtype=torch.float64)
    buf = x.clone()
    out = surrogate.grad_mul_(buf, g)
    assert out.data_ptr() == buf.data_ptr()
    torch.testing.assert_close(out, surrogate.grad(x) * g)
