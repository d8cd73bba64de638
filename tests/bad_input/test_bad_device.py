"""--device names this machine cannot use: say why and what to pass instead."""

import torch
from bad_input_helpers import assert_user_error, run_cli


def test_cuda_on_a_cpu_only_pytorch_build(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    rc, _, err = run_cli(capsys, "train", "--device", "cuda", "--out", str(tmp_path / "run"), "--quiet")
    assert_user_error(rc, err, "CUDA is not available in this PyTorch build", "CUDA build of PyTorch", "--device cpu")


def test_cuda_build_without_a_visible_gpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    rc, _, err = run_cli(capsys, "train", "--device", "cuda:0", "--out", str(tmp_path / "run"), "--quiet")
    assert_user_error(rc, err, "no GPU is visible", "--device cpu")


def test_unknown_device_name(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "train", "--device", "foo", "--out", str(tmp_path / "run"), "--quiet")
    assert_user_error(rc, err, "unknown device 'foo'", "cpu, cuda, cuda:N")


def test_unknown_device_name_in_eval(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "eval", str(tmp_path), "--device", "foo")
    assert_user_error(rc, err, "unknown device 'foo'")
