import pytest
import torch

from spikedyn.encoding import BernoulliRate, Direct, make_encoder, to_time_major


def test_bernoulli_rate_probability_is_p_over_alpha():
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([0.0, 0.05, 0.3, 0.8, 1.0])
    s = BernoulliRate(1.0)(x, 4000, generator=g)
    assert s.shape == (4000, 5)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(s.mean(0), x, atol=0.03, rtol=0)
    s = BernoulliRate(0.1)(x, 4000, generator=g)
    torch.testing.assert_close(s.mean(0), (x / 0.1).clamp(max=1.0), atol=0.03, rtol=0)


def test_bernoulli_rate_is_reproducible_under_a_seed():
    x = torch.rand(3, 7)
    a = BernoulliRate()(x, 5, generator=torch.Generator().manual_seed(1))
    b = BernoulliRate()(x, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_direct_repeats_and_time_major():
    x = torch.rand(2, 3)
    d = Direct()(x, 4)
    assert d.shape == (4, 2, 3) and torch.equal(d[2], x)
    seq = torch.arange(24.0).reshape(2, 4, 3)  # [B, T, F]
    tm = to_time_major(seq)
    assert tm.shape == (4, 2, 3) and torch.equal(tm[1, 0], seq[0, 1])


def test_make_encoder_errors():
    with pytest.raises(ValueError, match="unknown encoder"):
        make_encoder("poisson")
    with pytest.raises(ValueError, match="alpha must be > 0"):
        BernoulliRate(0.0)


def test_bernoulli_draws_are_independent_across_batch_and_features():
    """Catches one random number shared by the whole batch and all features of a step.

    Every element is fed intensity 0.5, so each spike is a fair coin (spec common.md section 4:
    ``u ~ U[0, 1)`` i.i.d.): the fraction of ones is 0.5 and two batch rows (or two features)
    are uncorrelated.  With a shared draw the rows are identical (correlation 1).  With 400 x 64
    draws per row the sampling standard deviation of a correlation is about 0.006.
    """
    g = torch.Generator().manual_seed(11)
    x = torch.full((2, 64), 0.5)
    s = BernoulliRate(1.0)(x, 400, generator=g)  # [T, B, F]
    assert s.mean().item() == pytest.approx(0.5, abs=0.01)
    rows = torch.stack([s[:, 0].flatten(), s[:, 1].flatten()])
    assert abs(torch.corrcoef(rows)[0, 1].item()) < 0.05, "batch rows must draw their own numbers"
    features = torch.stack([s[:, :, 0].flatten(), s[:, :, 1].flatten()])
    assert abs(torch.corrcoef(features)[0, 1].item()) < 0.15, "features must draw their own numbers"
    steps = torch.stack([s[:-1].flatten(), s[1:].flatten()])
    assert abs(torch.corrcoef(steps)[0, 1].item()) < 0.05, "steps must draw fresh numbers"


def test_bernoulli_rate_extremes():
    """p = 0 never spikes and p >= alpha always does (strict ``p > alpha u`` with u in [0, 1))."""
    g = torch.Generator().manual_seed(2)
    s = BernoulliRate(0.5)(torch.tensor([0.0, 0.5, 0.7]), 2000, generator=g)
    assert s[:, 0].sum() == 0 and bool(s[:, 1:].all())
    assert s.dtype == torch.float32


def test_make_encoder_builds_the_named_encoder():
    """``--encoder rate`` keeps its alpha (default 1, MDN); ``direct`` repeats the analog value."""
    rate = make_encoder("rate", alpha=0.1)
    assert isinstance(rate, BernoulliRate) and rate.alpha == 0.1
    assert make_encoder("rate").alpha == 1.0 and BernoulliRate().alpha == 1.0
    assert isinstance(make_encoder("direct"), Direct)
    assert repr(BernoulliRate(0.5)) == "BernoulliRate(alpha=0.5)" and repr(Direct()) == "Direct()"


def test_bernoulli_rate_with_alpha_above_one():
    """alpha = 2 halves the spike probability (p / alpha = 0.25 for p = 0.5): catches a skipped scaling."""
    s = BernoulliRate(2.0)(torch.full((8, 50), 0.5), 200, generator=torch.Generator().manual_seed(4))
    assert s.mean().item() == pytest.approx(0.25, abs=0.01)


def test_bernoulli_spikes_keep_the_input_dtype_and_device():
    """The draws are made on the input's device in its dtype: float64 in gives float64 spikes, and a
    tensor on another device (the shape-only "meta" device stands in for a GPU) stays there."""
    s = BernoulliRate()(torch.full((2, 3), 0.5, dtype=torch.float64), 4, generator=torch.Generator().manual_seed(0))
    assert s.dtype == torch.float64
    meta = BernoulliRate(2.0)(torch.full((2, 3), 0.5, device="meta"), 4)
    assert meta.device.type == "meta" and meta.shape == (4, 2, 3)
