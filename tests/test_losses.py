"""The read-out losses pinned on a hand-computed example (the spec, common.md section 5).

Example: T = 2 steps, B = 2 samples, C = 2 classes, one-hot targets of classes 0 and 1::

    S_1 = [[1, 0], [0, 0]]      S_2 = [[1, 1], [0, 1]]      y* = [[1, 0], [0, 1]]

* rates r = (S_1 + S_2) / 2 = [[1, .5], [0, .5]]; r - y* = [[0, .5], [0, -.5]];
  rate-MSE = mean_{b,k} (r - y*)^2 = (0 + .25 + 0 + .25) / 4 = 0.125
  (a sum instead of the mean would give 0.5);
* per step: S_1 - y* = [[0, 0], [0, -1]], S_2 - y* = [[0, 1], [0, 0]];
  per-step MSE = mean_{t,b,k} = (1 + 1) / 8 = 0.25 (a loss returning 0, or the rate-MSE, fails).
"""

import pytest
import torch

from spikedyn.losses import LOSSES, rate_mse, step_mse, target_matrix

SPIKES = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [0.0, 1.0]]], dtype=torch.float64)
TARGET = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)


def test_rate_mse_is_the_mean_over_batch_and_classes():
    """Catches a rate-MSE with reduction='sum' (0.5) or over the raw counts instead of the rates."""
    assert rate_mse(SPIKES, TARGET).item() == pytest.approx(0.125, abs=1e-12)


def test_rate_mse_gradient_by_hand():
    """dL/dS_{t,b,k} = 2 (r - y*)_{b,k} / (B C T) = (r - y*) / 4: catches a wrong scale or sign."""
    spikes = SPIKES.clone().requires_grad_()
    rate_mse(spikes, TARGET).backward()
    per_step = torch.tensor([[0.0, 0.125], [0.0, -0.125]], dtype=torch.float64)
    torch.testing.assert_close(spikes.grad, per_step.expand(2, 2, 2), rtol=0, atol=1e-12)


def test_step_mse_is_the_mean_over_steps_batch_and_classes():
    """Catches a per-step MSE that returns 0, sums, or averages the rates first (0.125)."""
    assert step_mse(SPIKES, TARGET).item() == pytest.approx(0.25, abs=1e-12)


def test_step_mse_gradient_by_hand():
    """dL/dS_{t,b,k} = 2 (S_t - y*)_{b,k} / (T B C) = (S_t - y*) / 4."""
    spikes = SPIKES.clone().requires_grad_()
    step_mse(spikes, TARGET).backward()
    expected = (SPIKES - TARGET) / 4
    torch.testing.assert_close(spikes.grad, expected, rtol=0, atol=1e-12)


def test_target_matrix_one_hot_and_multi_hot():
    """Class indices become one-hot rows in the asked dtype; multi-hot rows (NETtalk) pass through."""
    one_hot = target_matrix(torch.tensor([2, 0]), 4, torch.float64)  # class 3 absent: still 4 columns
    assert one_hot.dtype == torch.float64
    assert one_hot.tolist() == [[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]]
    multi = target_matrix(torch.tensor([[1, 0, 1], [0, 1, 1]]), 3, torch.float32)
    assert multi.dtype == torch.float32 and multi.tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]


def test_loss_names_of_the_command_line():
    """``--loss rate-mse`` / ``step-mse`` reach the functions pinned above."""
    assert LOSSES == {"rate-mse": rate_mse, "step-mse": step_mse}


#: per-step targets for the same spikes: Y_1 = y*, Y_2 = [[0, 0], [1, 0]]
#: S_1 - Y_1 = [[0, 0], [0, -1]] (squares 0, 0 | 0, 1); S_2 - Y_2 = [[1, 1], [-1, 1]] (1, 1 | 1, 1)
STEP_TARGETS = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [1.0, 0.0]]], dtype=torch.float64)


def test_step_mse_with_per_step_targets():
    """[T, B, C] targets: mean over all (t, b, k) = (1 + 4) / 8 = 0.625; [B, C] targets repeat."""
    assert step_mse(SPIKES, STEP_TARGETS).item() == pytest.approx(0.625, abs=1e-12)
    assert step_mse(SPIKES, STEP_TARGETS[0]).item() == pytest.approx(0.25, abs=1e-12)


@pytest.mark.parametrize(
    "mask, expected",
    [
        ([[1, 0], [1, 1]], 4 / 6),  # (t, b) = (1, 1), (2, 1), (2, 2) count: (0 + 2 + 2) / (3 pairs * 2 classes)
        ([[1, 1], [0, 0]], 1 / 4),  # step 1 only: (0 + 1) / (2 * 2)
        ([[1, 1], [1, 1]], 0.625),  # all valid: the plain mean
        ([[0, 0], [0, 0]], 0.0),  # nothing valid: 0, not NaN
    ],
)
def test_step_mse_mask_counts_only_the_valid_steps(mask, expected):
    """The mask [T, B] keeps only the valid (step, sample) pairs: the mean over them and the classes."""
    for as_bool in (False, True):
        m = torch.tensor(mask, dtype=torch.bool if as_bool else torch.float64)
        assert step_mse(SPIKES, STEP_TARGETS, m).item() == pytest.approx(expected, abs=1e-12)


def test_step_mse_mask_single_valid_value():
    """One valid step of one sample with one class: the loss is that squared error itself (1), not halved."""
    spikes = torch.tensor([[[1.0]], [[0.0]]])
    assert step_mse(spikes, torch.tensor([[0.0]]), torch.tensor([[1], [0]])).item() == 1.0
    one_step = torch.tensor([[[1.0, 0.0]]])  # T = 1, B = 1, C = 2: (1 + 0) / 2
    assert step_mse(one_step, torch.tensor([[0.0, 0.0]]), torch.tensor([[True]])).item() == 0.5


def test_step_mse_masked_steps_get_no_gradient():
    spikes = SPIKES.clone().requires_grad_()
    step_mse(spikes, STEP_TARGETS, torch.tensor([[1, 0], [1, 1]])).backward()
    expected = 2 * (SPIKES - STEP_TARGETS) / 6
    expected[0, 1] = 0.0
    torch.testing.assert_close(spikes.grad, expected, rtol=0, atol=1e-12)


def test_step_mse_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"per-step targets of shape \(3, 2, 2\) do not match the outputs \(2, 2, 2\)"):
        step_mse(SPIKES, torch.zeros(3, 2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3\) does not match the outputs \(2, 2, 2\); expected \[T, B\]"):
        step_mse(SPIKES, TARGET, torch.ones(2, 3))
