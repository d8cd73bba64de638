import argparse
import json
from pathlib import Path

import pytest
from reproduce_helpers import TINY, TINY_OPTIONS, fake_cell, mnist_config, tiny_table

from spikedyn.cli import reproduce as cli_reproduce
from spikedyn.reproduce import TABLES, build_plan, cell_dir, get_table, neuron_folder, register_table, run_plan, seed_list
from spikedyn.reproduce import runner
from spikedyn.reproduce.plan import select_neurons, select_rows


@pytest.fixture
def tiny():
    table = register_table(tiny_table(), replace=True)
    yield table
    TABLES.pop(TINY, None)


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="spikedyn")
    sub = parser.add_subparsers(dest="command")
    cli_reproduce.register(sub)
    args = parser.parse_args(["reproduce", *argv])
    return args.func(args)


def tiny_plan(tmp_path, **kw):
    options = dict(out_root=tmp_path / "runs", seeds=1, epochs=1, lr_step=50, data_root=str(tmp_path / "nodata"))
    options.update(kw)
    return build_plan(get_table(TINY), **options)


def test_layout_is_the_one_of_the_running_mnist_runs():
    assert seed_list(3) == [3154, 3155, 3156]
    assert cell_dir("runs/reproduce", "mdn-table3", "mnist", "2nd-fs", 3154) == Path(
        "runs/reproduce/mdn-table3/mnist/2nd-fs/seed3154"
    )
    assert neuron_folder("LIF") == "lif"
    assert neuron_folder("presets/mnist.json:FS") == "mnist-FS"
    assert neuron_folder("a b/odd name.json:x/y") == "odd_name-x_y"


def test_finished_mnist_cells_are_recognised_without_loading_data(tmp_path):
    out = tmp_path / "runs" / "reproduce"
    for neuron in ("2nd-fs", "2nd-rs", "2nd-sds", "2nd-wds", "lif"):
        for seed in seed_list(3):
            fake_cell(cell_dir(out, "mdn-table3", "mnist", neuron, seed), [0.9] * 20, mnist_config(neuron, seed))
    # the data root is empty: the row is usable only because every asked-for cell is finished
    plan = build_plan(get_table("mdn-table3"), out_root=out, seeds=3, epochs=20, lr_step=15, tasks=["mnist"],
                      data_root=str(tmp_path / "empty"))
    (row,) = plan.rows
    assert row.status == "ok" and row.dataset == "mnist" and len(row.cells) == 15
    assert {plan.state(c).status for c in row.cells} == {"finished"}
    summary = run_plan(plan, progress=False, echo=lambda s: None)
    assert len(summary.already_finished) == 15 and not summary.finished
    # another schedule is a conflict, never touched
    plan50 = build_plan(get_table("mdn-table3"), out_root=out, seeds=1, epochs=20, lr_step=50, tasks=["mnist"],
                        data_root=str(tmp_path / "empty"), load_data=False)
    state = plan50.state(plan50.rows[0].cells[0])
    assert state.status == "conflict" and "lr_step=15" in state.error


def test_a_damaged_metrics_file_makes_the_cell_a_conflict_not_a_gap(tmp_path):
    """Catches a runner that skips a broken epoch record and reports or resumes over it."""
    out = tmp_path / "runs" / "reproduce"
    run = fake_cell(cell_dir(out, "mdn-table3", "mnist", "lif", 3154), [0.9] * 20, mnist_config("lif", 3154))
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[3] = lines[3][:10]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    plan = build_plan(get_table("mdn-table3"), out_root=out, seeds=1, epochs=20, lr_step=15, tasks=["mnist"],
                      neurons=["lif"], data_root=str(tmp_path / "empty"), load_data=False)
    state = plan.state(plan.rows[0].cells[0])
    assert state.status == "conflict" and "line 4, is not a JSON record" in state.error
    assert "delete the folder" in state.error


def test_rows_without_data_keep_the_loader_message(tiny, tmp_path):
    plan = tiny_plan(tmp_path)
    digits, mnist = plan.rows
    assert digits.status == "ok" and [c.neuron for c in digits.cells] == ["2nd-fs", "lif"]
    assert mnist.status == "no data" and not mnist.cells
    assert "Put it here" in mnist.missing[0]["error"]


def test_run_trains_then_never_reruns_finished_cells(tiny, tmp_path):
    plan = tiny_plan(tmp_path, tasks=["digits"])
    lines = []
    summary = run_plan(plan, progress=False, echo=lines.append)
    assert len(summary.finished) == 2 and not summary.failed
    assert any("final" in line and "%" in line for line in lines)
    run_dir = plan.cells[0].run_dir
    assert run_dir == tmp_path / "runs" / TINY / "digits" / "2nd-fs" / "seed3154"
    assert json.loads((run_dir / "config.json").read_text())["hidden"] == TINY_OPTIONS["hidden"]
    stamp = (run_dir / "metrics.jsonl").stat().st_mtime_ns
    again = run_plan(tiny_plan(tmp_path, tasks=["digits"]), progress=False, echo=lines.append)
    assert len(again.already_finished) == 2 and not again.finished
    assert (run_dir / "metrics.jsonl").stat().st_mtime_ns == stamp


def test_an_unfinished_cell_resumes(tiny, tmp_path):
    run_plan(tiny_plan(tmp_path, tasks=["digits"], neurons=["lif"]), progress=False, echo=lambda s: None)
    run_dir = tmp_path / "runs" / TINY / "digits" / "lif" / "seed3154"
    first = (run_dir / "metrics.jsonl").read_text().splitlines()
    plan = tiny_plan(tmp_path, tasks=["digits"], neurons=["lif"], epochs=2)
    assert plan.state(plan.cells[0]).status == "partial"
    lines = []
    summary = run_plan(plan, progress=False, echo=lines.append)
    assert len(summary.finished) == 1 and any(line.startswith("resuming") for line in lines)
    records = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert records[0] == first[0] and [json.loads(r)["epoch"] for r in records] == [1, 2]


def test_a_failing_cell_does_not_stop_the_others(tiny, tmp_path, monkeypatch):
    real = runner.run_cell_job

    def flaky(config, resume):
        if config["neuron"] == "lif":
            return {"status": "failed", "error": "RuntimeError: boom", "traceback": "..."}
        return real(config, resume)

    monkeypatch.setattr(runner, "run_cell_job", flaky)
    plan = tiny_plan(tmp_path, tasks=["digits"])
    summary = run_plan(plan, progress=False, echo=lambda s: None)
    assert [c.neuron for c in summary.finished] == ["2nd-fs"]
    assert [(c.neuron, e) for c, e in summary.failed] == [("lif", "RuntimeError: boom")]
    failed_dir = tmp_path / "runs" / TINY / "digits" / "lif" / "seed3154"
    assert json.loads((failed_dir / "error.json").read_text())["error"] == "RuntimeError: boom"
    assert plan.state(plan.cells[1]).status == "failed"
    monkeypatch.setattr(runner, "run_cell_job", real)  # the next run retries it and clears the error
    assert len(run_plan(plan, progress=False, echo=lambda s: None).finished) == 1
    assert not (failed_dir / "error.json").exists()


def test_devices_are_given_round_robin(tiny, tmp_path, monkeypatch):
    seen = []

    def fake(config, resume):
        seen.append(config["device"])
        return {"status": "finished", "final": 0.5, "best": 0.5, "epochs": 1, "seconds": 0.0}

    monkeypatch.setattr(runner, "run_cell_job", fake)
    plan = tiny_plan(tmp_path, tasks=["digits"], seeds=2)
    run_plan(plan, device="cpu,cuda:1", progress=False, echo=lambda s: None)
    assert seen == ["cpu", "cuda:1", "cpu", "cuda:1"]


def test_interrupt_stops_and_says_how_to_continue(tiny, tmp_path, monkeypatch, capsys):
    def interrupted(config, resume):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_cell_job", interrupted)
    rc = cli([TINY, "--tasks", "digits", "--seeds", "1", "--epochs", "1", "--out", str(tmp_path / "runs"), "--quiet",
              "--data-root", str(tmp_path / "nodata"), "--allocator", "default"])
    err = capsys.readouterr().err
    assert rc == 130 and "same command" in err
    assert (tmp_path / "runs" / f"{TINY}.md").exists()  # the report is written after an interruption too


def test_two_jobs_run_in_parallel_processes(tiny, tmp_path):
    plan = tiny_plan(tmp_path, tasks=["digits"])
    summary = run_plan(plan, jobs=2, device="cpu", progress=False, echo=lambda s: None)
    assert len(summary.finished) == 2, summary.failed
    for cell in plan.cells:
        assert len((cell.run_dir / "metrics.jsonl").read_text().splitlines()) == 1
        assert not (cell.run_dir / ".running").exists()


def test_dry_run_prints_the_plan_and_trains_nothing(tiny, tmp_path, capsys):
    rc = cli([TINY, "--seeds", "2", "--epochs", "1", "--out", str(tmp_path / "runs"), "--dry-run", "--quiet",
              "--data-root", str(tmp_path / "nodata")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "NO DATA" in out and "Put it here" in out
    assert out.count("new 0/1") == 4 and "seed3155" in out
    assert not (tmp_path / "runs").exists()


def test_list_and_unknown_table(capsys):
    assert cli(["list"]) == 0
    out = capsys.readouterr().out
    assert "mdn-table3" in out and "mdn-table4" in out
    with pytest.raises(ValueError, match="mdn-table3"):
        cli(["no-such-table"])


def test_task_and_neuron_selection():
    table3 = get_table("mdn-table3")
    assert [r.label for r in select_rows(table3, ["FSDD", "timit-gender"])] == ["TIDigits", "TIMIT-gender"]
    assert [r.label for r in select_rows(table3, ["f-mnist"])] == ["F-MNIST"]
    with pytest.raises(ValueError, match="no task"):
        select_rows(table3, ["imagenet"])
    assert select_neurons(table3, ["LIF"]) == ["lif"]
    assert select_neurons(table3, ["+mdn"]) == [*table3.neurons, "mdn"]
    with pytest.raises(ValueError, match="unknown neuron kind"):
        select_neurons(table3, ["izhikevich"])


def test_overrides_are_checked(tiny, tmp_path):
    with pytest.raises(ValueError, match="unknown training option"):
        tiny_plan(tmp_path, overrides={"hiden": 3})
    with pytest.raises(ValueError, match="runner sets"):
        tiny_plan(tmp_path, overrides={"seed": 3})


def test_dry_run_shows_the_options_with_the_overrides(tiny, tmp_path, capsys):
    """``--set KEY=VALUE``: the plan's "trains with" line is what the cells train with, not the row's defaults."""
    from spikedyn.reproduce.plan import describe_plan

    plan = tiny_plan(tmp_path, overrides={"hidden": 7, "lr": 0.125})
    text = "\n".join(describe_plan(plan))
    trains = [line for line in text.splitlines() if "trains with" in line]
    assert trains and all("lr=0.125" in line and "hidden=7" in line for line in trains)
    assert all(plan.config_for(cell)["lr"] == 0.125 for cell in plan.cells)
