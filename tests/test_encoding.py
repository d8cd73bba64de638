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
