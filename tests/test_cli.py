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
