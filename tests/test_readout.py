"""Per-step read-out pieces on hand-computed examples: masked per-step MSE, frame and per-sample
accuracy, per-step targets, batch cutting (spec nrr.md sections 3 and 5)."""

import pytest
import torch

from spikedyn.data import SpikeDataset
from spikedyn.losses import step_mse
from spikedyn.metrics import make_metric
from spikedyn.readout import PAD_LABEL, READOUTS, frame_batch, readout_of


def test_masked_step_mse_is_the_mean_over_valid_frames_and_classes():
    """T = 2, B = 2, C = 2; frame (t=1, b=1) padded.  Valid squared errors: (t0,b0) 0+1, (t0,b1) 1+0,
    (t1,b0) 4+0 -> 6 / (3 frames * 2 classes) = 1."""
    o = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[3.0, 0.0], [9.0, 9.0]]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    mask = torch.tensor([[True, True], [True, False]])
    loss = step_mse(o, y, mask)
    assert loss.item() == pytest.approx(1.0, abs=1e-12)
    loss.backward()
    assert o.grad[1, 1].abs().sum() == 0  # the padded frame gets no gradient
    torch.testing.assert_close(o.grad[0, 0], torch.tensor([0.0, 2 / 6], dtype=torch.float64))
    assert step_mse(o.detach(), y, torch.ones(2, 2)).item() == pytest.approx(step_mse(o.detach(), y).item())
    assert step_mse(o.detach(), y, torch.zeros(2, 2)).item() == 0.0
    with pytest.raises(ValueError, match=r"\[T, B\]"):
        step_mse(o, y, torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"\[T, B, C\]"):
        step_mse(o, y[:1], None)


def test_frame_accuracy_and_per_sample_accuracy_on_frame_labels():
    # scores [B=2, T=3, C=2]: sample 0 predicts 0, 1, 1; sample 1 predicts 1, 1, (padded)
    scores = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0], [5.0, 0.0]]])
    labels = torch.tensor([[0, 0, 1], [1, 0, PAD_LABEL]])
    metric = make_metric("frame-accuracy")
    metric.update(scores, labels)
    assert metric.value() == pytest.approx(3 / 5)  # 2 of 3 + 1 of 2 valid frames
    assert metric.extras() == {"sample_accuracy": pytest.approx((2 / 3 + 1 / 2) / 2)}  # each utterance weighs the same


def test_frame_accuracy_on_class_labels_and_per_sample_by_summed_scores():
    # sample 0 (label 0): steps predict 1, 0, 0 -> 2 of 3 frames; sum over steps favours 1 (0.9 + 2 * 0.1 < 3)
    scores = torch.tensor([[[0.0, 3.0], [0.9, 0.0], [0.2, 0.1]], [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]])
    metric = make_metric("frame-accuracy")
    metric.update(scores, torch.tensor([0, 1]))
    assert metric.value() == pytest.approx(5 / 6)
    assert metric.extras()["sample_accuracy"] == pytest.approx(1 / 2)  # argmax sum_t o_t: sample 0 wrong


def test_step_targets_repeat_the_class_or_follow_the_frames():
    step = READOUTS["step"]
    classes = SpikeDataset("c", None, None, 3, kind="sequence")
    target = step.target(torch.tensor([2, 0]), classes, torch.float32, 4)
    assert target.mask is None and target.values.shape == (4, 2, 3)
    assert target.values[3].tolist() == [[0, 0, 1], [1, 0, 0]]
    frames = SpikeDataset("f", None, None, 3, kind="sequence", target="frame_class")
    target = step.target(torch.tensor([[1, 2, PAD_LABEL]]), frames, torch.float32, 3)
    assert target.values[:, 0].tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert target.mask[:, 0].tolist() == [True, True, False]
    with pytest.raises(ValueError, match=r"\[B, 5\]"):
        step.target(torch.tensor([[1, 2, 0]]), frames, torch.float32, 5)


def test_frame_batch_cuts_and_marks():
    x = torch.arange(2 * 6, dtype=torch.float32).reshape(2, 6, 1)
    y = torch.ones(2, 6, dtype=torch.long)
    cx, cy = frame_batch(x, y, torch.tensor([2, 4]), steps=10)
    assert cx.shape == (2, 4, 1) and cy.tolist() == [[1, 1, PAD_LABEL, PAD_LABEL], [1, 1, 1, 1]]
    cx, cy = frame_batch(x, y, torch.tensor([2, 4]), steps=3)  # T caps the cut
    assert cy.tolist() == [[1, 1, PAD_LABEL], [1, 1, 1]]
    cx, cy = frame_batch(x, y, None, steps=5)
    assert cx.shape == (2, 5, 1) and (cy == 1).all()


def test_models_declare_their_readout():
    from spikedyn.models import MDNNet, NRRNet

    assert readout_of(MDNNet).kind == "rate" and readout_of(NRRNet).kind == "step"
    assert READOUTS["rate"].default_loss == "rate-mse" and READOUTS["step"].default_loss == "step-mse"
