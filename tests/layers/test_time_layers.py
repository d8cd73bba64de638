"""Time folding, time-shared dropout, per-step batch norm and voting over ``[T, B, ...]``."""

import copy

import pytest
import torch
from torch import nn

from spikedyn import kernels
from spikedyn.layers import StepBatchNorm, TimeFolded, TimeSharedDropout, Voting, fold_time


def test_folded_conv2d_equals_conv2d_at_every_step():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.rand(4, 2, 2, 5, 5)  # [T, B, C, H, W]
    per_step = torch.stack([conv(x_t) for x_t in x])
    assert fold_time(conv, x).shape == (4, 2, 3, 5, 5)
    torch.testing.assert_close(fold_time(conv, x), per_step)
    torch.testing.assert_close(TimeFolded(conv)(x), per_step)


def test_time_folded_layers_compose_in_sequential():
    torch.manual_seed(1)
    conv, lin = nn.Conv1d(1, 2, 3), nn.Linear(2 * 4, 5)
    net = nn.Sequential(TimeFolded(conv), TimeFolded(nn.Flatten()), TimeFolded(lin))
    x = torch.rand(3, 2, 1, 6)
    expected = torch.stack([lin(conv(x_t).flatten(1)) for x_t in x])
    torch.testing.assert_close(net(x), expected)


def test_spike_max_pooling_is_folded_max_pool():
    spikes = torch.zeros(2, 1, 1, 4, 4)
    spikes[0, 0, 0, 0, 1] = 1  # top-left window, step 0
    spikes[1, 0, 0, 3, 3] = 1  # bottom-right window, step 1
    pooled = TimeFolded(nn.MaxPool2d(2))(spikes)
    assert pooled[0, 0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert pooled[1, 0, 0].tolist() == [[0.0, 0.0], [0.0, 1.0]]


def test_fold_time_rejects_a_single_step_tensor():
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        fold_time(nn.Linear(3, 2), torch.rand(2, 3))


def test_shared_dropout_mask_is_the_same_at_every_step_and_differs_between_samples():
    torch.manual_seed(2)
    drop = TimeSharedDropout(0.5)
    out = drop(torch.ones(4, 3, 64))
    assert set(out.unique().tolist()) <= {0.0, 2.0}  # kept units scaled by 1 / (1 - p)
    for t in range(1, 4):
        assert torch.equal(out[t], out[0])
    assert not torch.equal(out[0, 0], out[0, 1])
    assert not torch.equal(drop(torch.ones(4, 3, 64))[0], out[0])  # a new mask per call


def test_shared_dropout_is_the_identity_in_eval_mode_and_checks_p():
    x = torch.rand(2, 3, 5)
    assert torch.equal(TimeSharedDropout(0.5).eval()(x), x)
    assert torch.equal(TimeSharedDropout(0.0)(x), x)
    for p in (-0.1, 1.0):
        with pytest.raises(ValueError, match="dropout probability"):
            TimeSharedDropout(p)


def test_step_batch_norm_uses_each_steps_statistics_in_training():
    torch.manual_seed(3)
    x = torch.randn(3, 8, 2, 4, 4) * torch.tensor([1.0, 5.0, 9.0]).view(3, 1, 1, 1, 1)
    out = StepBatchNorm(2)(x)
    for t in range(3):
        mean = x[t].mean(dim=(0, 2, 3), keepdim=True)
        var = x[t].var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        torch.testing.assert_close(out[t], (x[t] - mean) / torch.sqrt(var + 1e-5))


def test_step_batch_norm_uses_running_statistics_in_eval():
    norm = StepBatchNorm(2, dims=1).eval()
    norm.bn.running_mean.copy_(torch.tensor([1.0, -2.0]))
    norm.bn.running_var.copy_(torch.tensor([4.0, 0.25]))
    x = torch.rand(2, 3, 2, 5)
    expected = (x - torch.tensor([1.0, -2.0]).view(2, 1)) / torch.sqrt(torch.tensor([4.0, 0.25]).view(2, 1) + 1e-5)
    torch.testing.assert_close(norm(x), expected)


def test_voting_averages_groups_of_output_neurons():
    x = torch.arange(12.0).reshape(1, 12)
    assert Voting(3)(x).tolist() == [[1.0, 4.0, 7.0, 10.0]]
    assert Voting(2)(torch.ones(5, 2, 6)).shape == (5, 2, 3)
    with pytest.raises(ValueError, match="not a multiple of 3"):
        Voting(3)(torch.ones(1, 10))


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dims", [2, 1])
@pytest.mark.parametrize("backend", ["cpp", "torch"])  # the backward: compiled CPU kernel, or T calls of PyTorch's
def test_step_batch_norm_equals_one_layer_call_per_step(momentum, affine, dims, backend):
    """Catches a one-buffer step batch norm that drifts from T calls of the PyTorch layer: outputs,
    gradients of the input and of weight and bias, running statistics and the batch counter."""
    torch.manual_seed(5)
    norm = StepBatchNorm(3, dims=dims, momentum=momentum, affine=affine)
    plain = (torch.nn.BatchNorm2d if dims == 2 else torch.nn.BatchNorm1d)(3, momentum=momentum, affine=affine)
    if affine:
        with torch.no_grad():
            norm.bn.weight.uniform_(0.5, 1.5)
            norm.bn.bias.uniform_(-0.5, 0.5)
        plain.load_state_dict(norm.bn.state_dict())
    shape = (4, 6, 3, 5, 5) if dims == 2 else (4, 6, 3, 7)
    scale = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(4, *[1] * (len(shape) - 1))
    x = (torch.randn(*shape) * scale + 0.5).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    g = torch.randn(*shape)
    with kernels.backend(backend):
        for _ in range(2):  # twice: the running statistics carry over
            out = norm(x)
            ref = torch.stack([plain(x_t) for x_t in x2])
            torch.testing.assert_close(out, ref, rtol=0, atol=0)
        (out * g).sum().backward()
    (ref * g).sum().backward()
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(norm.bn, name), getattr(plain, name), rtol=0, atol=0)
    # gradients: within 1e-5 (relative to the whole tensor) of the same per-step layers in float64, as the
    # float32 PyTorch layer is (weight's gradient is a sum that cancels: elementwise, float32 rounding shows)
    exact = copy.deepcopy(plain).double()
    exact.zero_grad(set_to_none=True)
    x64 = x.detach().double().requires_grad_()
    (torch.stack([exact(x_t) for x_t in x64]) * g.double()).sum().backward()
    pairs = [(x.grad, x2.grad, x64.grad)]
    if affine:
        pairs += [(norm.bn.weight.grad, None, exact.weight.grad), (norm.bn.bias.grad, None, exact.bias.grad)]
    for got, torch32, want in pairs:
        for grad in (got, torch32):
            if grad is not None:
                assert float((grad.double() - want).norm() / want.norm()) < 1e-5


def test_step_batch_norm_of_a_bfloat16_input_keeps_float32_statistics():
    """Catches the one-buffer step batch norm failing on (or drifting from the PyTorch layer for) a bfloat16
    input with float32 parameters, which is what a conv under bf16 autocast feeds it."""
    torch.manual_seed(6)
    norm, plain = StepBatchNorm(3), torch.nn.BatchNorm2d(3)
    x = torch.randn(3, 4, 3, 5, 5).bfloat16().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    out, ref = norm(x), torch.stack([plain(x_t) for x_t in x2])
    assert out.dtype == torch.bfloat16 and norm.bn.running_mean.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    torch.testing.assert_close(norm.bn.running_var, plain.running_var, rtol=0, atol=0)
    out.float().sum().backward()
    ref.float().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(norm.bn.weight.grad, plain.weight.grad, rtol=1e-3, atol=1e-3)
