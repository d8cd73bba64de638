import argparse
import json
import re

from spikedyn.cli import main


def test_cli_train_then_eval(tmp_path, capsys):
    """The accuracy the command prints, the one in metrics.jsonl and the one ``eval`` recomputes from
    the checkpoint agree (catches an eval that scores another model, split or randomness, or a
    printed number that is not the run's), and the run scores above chance."""
    out = tmp_path / "run"
    capsys.readouterr()
    rc = main(["train", "--epochs", "2", "--hidden", "32", "--steps", "5", "--out", str(out), "--quiet"])
    assert rc == 0
    assert (out / "checkpoint.pt").exists()
    printed = re.search(r"final test accuracy (\d+\.\d\d)%  \(best (\d+\.\d\d)%\)", capsys.readouterr().out)
    assert printed, "the final accuracy line is printed even with --quiet"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last, best = records[-1]["test_accuracy"], max(r["test_accuracy"] for r in records)
    assert float(printed.group(1)) == round(100 * last, 2) and float(printed.group(2)) == round(100 * best, 2)
    assert main(["eval", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["epoch"] == 2 and result["split"] == "test"
    assert result["accuracy"] == last and result["loss"] == records[-1]["test_loss"]
    assert last > 0.12  # 10 classes: chance is 0.1 (0.19 on the reference machine after 2 epochs)


def test_cli_resume_continues(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--epochs", "1", "--hidden", "16", "--steps", "4", "--out", str(out), "--quiet"])
    assert main(["train", "--epochs", "2", "--hidden", "16", "--steps", "4", "--out", str(out), "--quiet", "--resume"]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_cli_reports_missing_data_clearly(tmp_path, capsys):
    rc = main(["train", "--dataset", "mnist", "--data-root", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "train-images-idx3-ubyte" in err and "Put it here" in err


def test_cli_data_list_and_info(capsys):
    assert main(["data", "list"]) == 0
    assert "digits" in capsys.readouterr().out.split()
    assert main(["data", "info", "digits"]) == 0
    assert "1437" in capsys.readouterr().out


def test_cli_data_options_reach_the_loader(tmp_path, capsys):
    import pytest

    from spikedyn.cli import parse_data_options

    assert parse_data_options(["split=speaker", "frames=39", "flatten=false", "alpha=0.5"]) == {
        "split": "speaker", "frames": 39, "flatten": False, "alpha": 0.5
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_data_options(["split"])
    assert main(["data", "info", "digits", "--data-option", "flatten=false", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["x_shape"] == [1437, 1, 8, 8]


def test_cli_interrupt_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from spikedyn.train import Trainer

    def interrupted(self, resume=False, stop_after=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    rc = main(["train", "--epochs", "1", "--hidden", "8", "--steps", "2", "--out", str(tmp_path / "run"), "--quiet"])
    assert rc == 130
    assert "--resume" in capsys.readouterr().err


def test_unknown_data_option_is_a_clear_error(capsys):
    assert main(["data", "info", "digits", "--data-option", "colour=red"]) == 2
    err = capsys.readouterr().err
    assert "no option colour" in err and "flatten" in err


def test_help_texts_show_no_docstring_markup(capsys):
    """`spikedyn --help` and every command's help are plain text: no reST roles or double backticks."""
    import re

    from spikedyn.cli import build_parser

    parser = build_parser()
    texts = [parser.format_help()]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    texts += [p.format_help() for p in sub.choices.values()]
    for text in texts:
        assert not re.search(r"``|:(class|func|data|meth|mod):", text), text[:300]


def test_eval_presents_each_sample_for_the_steps_asked(tmp_path, capsys):
    """``eval --steps T`` scores the checkpoint with every test sample presented for T steps: with the
    deterministic direct code its accuracy equals the model run by hand on each image repeated T
    times (catches a --steps that is ignored or that also changes what was trained); the run's own
    T is reported beside it, and a T below 1 is a clear error."""
    import torch

    from spikedyn.batching import run_dataset
    from spikedyn.train import load_checkpoint

    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--hidden", "32", "--steps", "4", "--encoder", "direct", "--out", str(out),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    at_trained = json.loads(capsys.readouterr().out)
    assert main(["eval", str(out), "--steps", "11"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["steps"], result["trained_steps"], at_trained["steps"]) == (11, 4, 4)
    model, config, _ = load_checkpoint(str(out), device="cpu")
    x, y = run_dataset(config).test.tensors[:2]
    with torch.no_grad():
        model.eval()
        by_hand = {t: model(x.float().unsqueeze(0).expand(t, *x.shape)).rate for t in (4, 11)}
    assert not torch.equal(by_hand[4], by_hand[11])  # the presentation length changes the read-out
    correct = int((by_hand[11].argmax(1) == y).sum())
    assert round(result["accuracy"] * len(y)) == correct and correct > 0.12 * len(y)
    assert result["loss"] != at_trained["loss"]
    assert main(["eval", str(out), "--steps", "0"]) == 2
    assert "--steps must be >= 1" in capsys.readouterr().err
