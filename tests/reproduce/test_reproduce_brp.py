"""BRP tables (Table III, Fig. 5, Fig. 7): rows that vary model, rule and steps; their folders,
plans, a tiny run of two rules, and the curve / sweep reports from fake run folders."""

import json
from dataclasses import fields
from pathlib import Path

import pytest
from reproduce_helpers import fake_cell

from spikedyn.models.brp import BRP_PRESETS
from spikedyn.reproduce import (
    TABLES, CheckSpec, RowSpec, TableSpec, build_plan, cell_dir, describe_plan, get_table, register_table, run_plan,
    validate_table, write_report,
)
from spikedyn.reproduce.report import first_epoch_at, mean_curve
from spikedyn.train import TrainConfig

SPEC_TARGETS = Path(__file__).resolve().parents[3] / "shared" / "spec" / "paper-targets.json"
TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


def brp_config(dataset: str, seed: int, rule: str, epochs: int, steps: int = 20, data_options: dict | None = None,
               topology: str = "mnist") -> dict:
    """The config.json a BRP cell's trainer writes (the keys the runner compares)."""
    return {
        "dataset": dataset, "data_options": data_options or {}, "model": "brp", "model_options": {"topology": topology},
        "neuron": "lif-identity", "seed": seed, "epochs": epochs, "steps": steps, "batch_size": 50, "lr": 1e-4,
        "lr_dynamics": 1e-4, "schedule": "step", "lr_step": 50, "lr_gamma": 1.0, "rule": rule, "loss": "rate-mse",
    }


# ---------------------------------------------------------------------------------------------
# the tables as data
# ---------------------------------------------------------------------------------------------

def test_brp_tables_are_registered_with_the_papers_settings():
    t3, f5, f7 = get_table("brp-table3"), get_table("brp-fig5"), get_table("brp-fig7")
    assert t3.columns == ("BRP", "pseudo-BP") and t3.neurons == ("lif-identity",)
    assert t3.tasks() == ["MNIST", "CIFAR-10", "TIDigits 1D", "TIDigits 1D, bands", "TIDigits 2D", "DvsGesture"]
    assert f5.columns == ("TP_BRP", "TP_err", "TP_sign") and f5.curves
    assert f7.sweep == "steps" and f7.columns == ("T=10", "T=20", "T=30", "T=60", "T=90")
    for table in (t3, f5, f7):
        assert table.first_seed == 42 and table.epochs == 100
        for row in table.rows:
            options = table.row_options(row)
            assert set(options) <= TRAIN_FIELDS
            assert options["model"] == "brp" and options["model_options"]["topology"] in BRP_PRESETS
            assert (options["lr"], options["batch_size"], options["lr_gamma"]) == (1e-4, 50, 1.0)
            preset = BRP_PRESETS[options["model_options"]["topology"]]
            assert options.get("alpha", 1.0) == preset.alpha
            if table is not f7:
                assert options["steps"] == preset.steps
    rules = {r.column: t3.row_options(r)["rule"] for r in t3.rows}
    assert rules == {"BRP": "brp", "pseudo-BP": "bptt"}
    assert {r.column: f5.row_options(r)["rule"] for r in f5.rows} == {"TP_BRP": "brp", "TP_err": "err", "TP_sign": "sign"}
    assert t3.row("CIFAR-10, BRP").data_options == {"normalize": True}
    spoken = t3.row("TIDigits 1D, bands, BRP")
    assert spoken.data_options == {"time_axis": "bands"} and spoken.stand_ins[0].data_options["time_axis"] == "bands"
    assert t3.row_options(t3.row("TIDigits 2D, BRP"))["input_view"] == "static"
    assert [t3.row_options(r)["steps"] for r in f7.rows if r.task == "DvsGesture"] == [30, 60, 90]


def test_brp_paper_numbers_match_the_spec_targets():
    if not SPEC_TARGETS.exists():
        pytest.skip("the spec's paper-targets.json is not beside the repository")
    targets = json.loads(SPEC_TARGETS.read_text())
    for name, rename in (("brp-table3", {"TIDigits 1D, bands": "TIDigits 1D"}), ("brp-fig5", {})):
        spec = targets[name]
        table = get_table(name)
        for row in table.rows:
            expected = spec["rows"][rename.get(row.task, row.task)][spec["columns"].index(row.column)]
            assert row.paper[row.column][0] == pytest.approx(expected), row.label


def test_tables_with_columns_are_validated():
    ok = RowSpec("a, X", "digits", {"X": (1.0, None)}, task="a", column="X", variant="x")
    validate_table(TableSpec("t", "t", "s", ("lif",), (ok,), columns=("X",)))
    bad_rows = {
        "needs every row's task and column": RowSpec("a", "digits"),
        "keyed by the row's column": RowSpec("a, X", "digits", {"Y": (1.0, None)}, task="a", column="X"),
    }
    for message, row in bad_rows.items():
        with pytest.raises(ValueError, match=message):
            validate_table(TableSpec("t", "t", "s", ("lif",), (row,), columns=("X",)))
    with pytest.raises(ValueError, match="runner sets"):
        validate_table(TableSpec("t", "t", "s", ("lif",), (ok,), columns=("X",), train_options={"epochs": 3}))
    with pytest.raises(ValueError, match="not among the columns"):
        validate_table(TableSpec("t", "t", "s", ("lif",), (ok,), columns=("X",),
                                 checks=(CheckSpec("c", ("a",), ("lif",), ("X",)),)))
    with pytest.raises(ValueError, match="swept option"):
        validate_table(TableSpec("t", "t", "s", ("lif",), (ok,), columns=("X",), sweep="steps"))
    with pytest.raises(ValueError, match="need the table's columns"):
        validate_table(TableSpec("t", "t", "s", ("lif",), (ok,)))
    with pytest.raises(ValueError, match="two rows for task"):
        twin = RowSpec("a, X again", "digits", task="a", column="X", variant="y")
        validate_table(TableSpec("t", "t", "s", ("lif",), (ok, twin), columns=("X",)))


# ---------------------------------------------------------------------------------------------
# folders and plans
# ---------------------------------------------------------------------------------------------

def test_rule_variants_get_their_own_folders(tmp_path):
    out = tmp_path / "runs"
    for rule in ("brp", "bptt"):
        fake_cell(cell_dir(out, "brp-table3", f"mnist-{rule}", "lif-identity", 42), [0.9] * 3,
                  brp_config("mnist", 42, rule, 3))
    plan = build_plan(get_table("brp-table3"), out_root=out, seeds=1, epochs=3, tasks=["mnist"],
                      data_root=str(tmp_path / "empty"))
    assert [r.status for r in plan.rows] == ["ok", "ok"]  # finished: no data needed
    dirs = [c.run_dir for c in plan.cells]
    assert dirs == [out / "brp-table3" / "mnist-brp" / "lif-identity" / "seed42",
                    out / "brp-table3" / "mnist-bptt" / "lif-identity" / "seed42"]
    assert [plan.config_for(c)["rule"] for c in plan.cells] == ["brp", "bptt"]
    config = plan.config_for(plan.cells[0])
    assert config["model"] == "brp" and config["model_options"] == {"topology": "mnist"} and config["lr_gamma"] == 1.0
    assert {plan.state(c).status for c in plan.cells} == {"finished"}
    # a constant learning rate: another --lr-step changes nothing and is no conflict
    other = build_plan(get_table("brp-table3"), out_root=out, seeds=1, epochs=3, lr_step=7, tasks=["mnist"],
                       data_root=str(tmp_path / "empty"))
    assert {other.state(c).status for c in other.cells} == {"finished"}
    # the MDN layout is unchanged: data set folder, neuron folder, seed folder
    mdn = build_plan(get_table("mdn-table3"), out_root=out, seeds=1, tasks=["mnist"], data_root=str(tmp_path / "empty"),
                     load_data=False)
    assert mdn.epochs == 80 and mdn.lr_step == 50
    assert cell_dir(out, "mdn-table3", "mnist", "2nd-fs", 3154) == out / "mdn-table3" / "mnist" / "2nd-fs" / "seed3154"


def test_plan_lists_rows_without_data(tmp_path):
    plan = build_plan(get_table("brp-fig5"), out_root=tmp_path / "runs", seeds=2, tasks=["cifar10", "dvsgesture"],
                      data_root=str(tmp_path / "empty"))
    assert [r.row.label for r in plan.rows] == [f"{t}, {c}" for t in ("CIFAR-10", "DvsGesture")
                                                 for c in ("TP_BRP", "TP_err", "TP_sign")]
    assert {r.status for r in plan.rows} == {"no data"} and not plan.cells
    text = "\n".join(describe_plan(plan))
    assert "CIFAR-10, TP_sign: NO DATA (would train topology=cifar10" in text and "rule=sign" in text
    assert "Put it here" in text and "constant learning rate" in text and "seeds 42, 43" in text
    assert "cifar-10-batches-py" in text


# ---------------------------------------------------------------------------------------------
# a tiny BRP table, trained
# ---------------------------------------------------------------------------------------------

TINY_BRP = "test-tiny-brp"


def tiny_brp_table() -> TableSpec:
    train = {"model": "brp", "model_options": {"topology": "CONV_4_3_1_1_FC_16_FC_10"}, "steps": 3, "batch_size": 100,
             "lr": 1e-3, "lr_gamma": 1.0}
    rows = tuple(
        RowSpec(f"Digits, {column}", "digits", {column: (paper, None)}, data_options={"flatten": False},
                train_options={"rule": rule}, variant=rule, task="Digits", column=column)
        for column, rule, paper in (("BRP", "brp", 80.0), ("BP", "bptt", 90.0))
    )
    return TableSpec(TINY_BRP, "Tiny BRP table", "made up for the tests (not a paper)", ("lif-identity",), rows,
                     columns=("BRP", "BP"), train_options=train, epochs=1, curves=True, first_seed=42,
                     checks=(CheckSpec("BP above BRP", ("Digits",), ("BP",), ("BRP",)),))


def test_tiny_brp_table_runs_two_rules(tmp_path):
    register_table(tiny_brp_table(), replace=True)
    try:
        plan = build_plan(get_table(TINY_BRP), out_root=tmp_path / "runs", seeds=1, data_root=str(tmp_path / "nodata"))
        summary = run_plan(plan, progress=False, echo=lambda s: None)
        paths = write_report(plan, run=summary)
    finally:
        TABLES.pop(TINY_BRP, None)
    assert len(summary.finished) == 2, summary.failed
    base = tmp_path / "runs" / TINY_BRP
    for rule in ("brp", "bptt"):
        config = json.loads((base / f"digits-{rule}" / "lif-identity" / "seed42" / "config.json").read_text())
        assert (config["rule"], config["model"], config["steps"], config["epochs"]) == (rule, "brp", 3, 1)
        assert config["data_options"] == {"flatten": False} and config["lr_gamma"] == 1.0
    doc = json.loads(paths["json"].read_text())
    assert doc["columns"] == ["BRP", "BP"] and [line["task"] for line in doc["grid"]] == ["Digits"]
    md = paths["markdown"].read_text()
    assert "| task |  | BRP | BP |" in md and "| Digits | paper | 80.00 | 90.00 |" in md
    assert "## Per row" in md and "constant lr" in md and "rule brp" in md
    assert doc["checks"][0]["result"] in ("holds", "does not hold") and doc["checks"][0]["paper_result"] == "holds"
    assert set(doc["curves"]["Digits"]) == {"BRP", "BP"}
    assert (base.parent / f"{TINY_BRP}-curves-digits.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------------------------
# reports from fake run folders: Fig. 5 curves, Fig. 7 sweep
# ---------------------------------------------------------------------------------------------

def _curve(final: float, rise: int, epochs: int = 20, wiggle: float = 0.0) -> list[float]:
    """A test curve (fractions) rising linearly to ``final`` over ``rise`` epochs, then flat."""
    return [min(final, 0.1 + (final - 0.1) * (e + 1) / rise) + wiggle * ((-1) ** e) for e in range(epochs)]


def test_fig5_report_plots_curves_and_measures_convergence(tmp_path):
    out = tmp_path / "runs"
    rises = {"brp": 3, "err": 4, "sign": 9}
    for rule, rise in rises.items():
        for seed, wiggle in ((42, 0.0), (43, 0.002)):
            history = _curve(0.98, rise, wiggle=wiggle)
            history[-1] = 0.98
            fake_cell(cell_dir(out, "brp-fig5", f"mnist-{rule}", "lif-identity", seed), history,
                      brp_config("mnist", seed, rule, 20))
    # one unfinished seed does not enter the mean curve
    fake_cell(cell_dir(out, "brp-fig5", "mnist-sign", "lif-identity", 44), [0.1] * 5, brp_config("mnist", 44, "sign", 20))
    plan = build_plan(get_table("brp-fig5"), out_root=out, seeds=None, epochs=None, lr_step=None, tasks=["mnist"],
                      data_root=str(tmp_path / "empty"), load_data=False)
    paths = write_report(plan, tmp_path / "report")
    doc = json.loads(paths["json"].read_text())
    curves = doc["curves"]["MNIST"]
    assert set(curves) == {"TP_BRP", "TP_err", "TP_sign"} and curves["TP_sign"]["seeds"] == 2
    assert curves["TP_sign"]["mean"][-1] == pytest.approx(98.0)
    reach = {c: v["reach"]["0.9"] for c, v in curves.items()}
    assert reach["TP_sign"] > reach["TP_err"] >= reach["TP_BRP"]
    (at90, at99) = doc["convergence"]["MNIST"]
    assert at90["slowest"] == ["TP_sign"] and not at90["tie"]
    checks = {c["text"].split(":")[0].split(",")[0]: c for c in doc["checks"]}
    assert checks["TP_sign converges slowest"]["per_row"]["MNIST"] == "holds"
    assert checks["TP_sign converges slowest"]["per_row"]["CIFAR-10"] == "not measurable"
    md = paths["markdown"].read_text()
    assert f"slowest to reach 90 % of its final score: **TP_sign** (TP_BRP {reach['TP_BRP']}" in md
    assert "| MNIST | paper | 98.89 | 98.85 | 98.99 |" in md
    assert "settled (late change < 1 point): all of TP_BRP, TP_err, TP_sign" in md
    assert "![MNIST](brp-fig5-curves-mnist.png)" in md and "CIFAR-10" not in doc["curves"]
    png = tmp_path / "report" / "brp-fig5-curves-mnist.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert doc["figures"]["curves"] == {"MNIST": "brp-fig5-curves-mnist.png"}


def test_fig7_report_sets_accuracy_against_t(tmp_path):
    out = tmp_path / "runs"
    finals = {10: 0.60, 20: 0.66, 30: 0.70}
    for steps, final in finals.items():
        for seed in (42, 43):
            fake_cell(cell_dir(out, "brp-fig7", f"fsdd-1d-t{steps}", "lif-identity", seed), [0.3, final + 0.001 * seed - 0.042],
                      brp_config("fsdd", seed, "brp", 2, steps, {"split": "official"}, "tidigits-1d"))
    plan = build_plan(get_table("brp-fig7"), out_root=out, seeds=None, epochs=None, lr_step=None,
                      tasks=["tidigits", "mnist"], data_root=str(tmp_path / "empty"), load_data=False)
    paths = write_report(plan, tmp_path / "report")
    doc = json.loads(paths["json"].read_text())
    sweep = doc["sweep"]["tasks"]
    points = sweep["TIDigits"]["points"]
    assert [p["x"] for p in points] == [10, 20, 30]
    assert [p["paper"] for p in points] == [[62.46, None], None, [71.14, None]]
    assert points[2]["mean"] == pytest.approx(70.05)
    assert sweep["MNIST"]["paper_range"] == [98.99, 0.01] and sweep["MNIST"]["spread"] is None
    checks = {c["text"]: c for c in doc["checks"]}
    assert checks["TIDigits improves with T (T = 30 above T = 10)"]["result"] == "holds"
    md = paths["markdown"].read_text()
    assert "| TIDigits [fsdd] | paper | 62.46 | — | 71.14 | — |  |" in md
    assert "|  | ours | 60.05 ± 0.07 (2) | 66.05 ± 0.07 (2) | 70.05 ± 0.07 (2) |  | 70.05 (T=30) |" in md
    assert "| TIDigits | 30 | 71.14 |" in md and "![score against steps](brp-fig7-sweep.png)" in md
    assert (tmp_path / "report" / "brp-fig7-sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_curve_helpers():
    curve = mean_curve([[10.0, 50.0, 90.0, 100.0], [10.0, 70.0, 90.0, 100.0, 100.0]])
    assert curve["epochs"] == [1, 2, 3, 4] and curve["mean"] == [10.0, 60.0, 90.0, 100.0] and curve["seeds"] == 2
    assert first_epoch_at(curve, 0.9) == 3 and first_epoch_at(curve, 0.5) == 2 and first_epoch_at(curve, 1.0) == 4
    assert mean_curve([]) is None


def test_cli_lists_the_brp_tables_with_their_columns(capsys):
    import argparse

    from spikedyn.cli import reproduce as cli_reproduce

    parser = argparse.ArgumentParser(prog="spikedyn")
    cli_reproduce.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["reproduce", "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "brp-fig5" in out and "columns: TP_BRP, TP_err, TP_sign; neurons: lif-identity" in out
    assert "our default: 100 epochs, first seed 42" in out and "our default: 80 epochs, first seed 3154" in out
