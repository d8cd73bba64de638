"""`spikedyn train` without --out, run twice: the second run gets a fresh directory and says which."""

from bad_input_helpers import TINY, assert_user_error, run_cli


def test_second_run_goes_to_a_fresh_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "runs" / "digits-2nd-fs-seed3154", tmp_path / "runs" / "digits-2nd-fs-seed3154-2"
    assert run_cli(capsys, "train", *TINY)[0] == 0
    rc, out, err = run_cli(capsys, "train", *TINY)
    assert rc == 0, err
    assert "runs/digits-2nd-fs-seed3154 already holds a run" in out and "runs/digits-2nd-fs-seed3154-2" in out
    assert (first / "checkpoint.pt").exists() and (second / "checkpoint.pt").exists()


def test_an_explicit_out_with_a_checkpoint_still_needs_resume(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_cli(capsys, "train", *TINY, "--out", out)[0] == 0
    rc, _, err = run_cli(capsys, "train", *TINY, "--out", out)
    assert_user_error(rc, err, "already exists", "--resume")
