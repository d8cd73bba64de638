"""NRR tables: Table 2 (ablations) and Fig. 4 (loop sparseness, swept as a model option): the cells'
training settings, the paper's numbers, and reports from fake run folders."""

import json
from dataclasses import fields
from pathlib import Path

import pytest
from reproduce_helpers import fake_cell

from spikedyn.models import build_model
from spikedyn.reproduce import RowSpec, TableSpec, build_plan, cell_dir, get_table, validate_table, write_report
from spikedyn.train import TrainConfig

SPEC_TARGETS = Path(__file__).resolve().parents[3] / "shared" / "spec" / "paper-targets.json"
TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}
FSDD_39 = {"frames": 39, "split": "official"}
#: column -> (rule, recurrent, adaptive, deep)
TABLE2_COLUMNS = {
    "feed-forward, BP": ("bptt", False, False, False),
    "+ adaptive threshold, BP": ("bptt", False, True, False),
    "+ sparse loop, BP": ("bptt", True, False, False),
    "NRR-SNN (RP)": ("brp", True, True, False),
    "BP-RSNN": ("bptt", True, True, False),
    "NRR-SNN w/o plasticity (RP)": ("brp", True, False, False),
    "deep NRR-SNN (RP)": ("brp", True, True, True),
}
#: our column -> the spec's paper-targets row
TARGET_ROWS = {
    "feed-forward, BP": "pure feed-forward SNN, pseudo-BP",
    "+ adaptive threshold, BP": "feed-forward + adaptive threshold, pseudo-BP",
    "+ sparse loop, BP": "feed-forward + sparse loop, pseudo-BP",
    "NRR-SNN (RP)": "shallow NRR-SNN (RP)",
    "BP-RSNN": "BP-RSNN with plasticity",
    "NRR-SNN w/o plasticity (RP)": "NRR-SNN without plasticity",
    "deep NRR-SNN (RP)": "deep NRR-SNN (5 layers)",
}


def cell_config(table: str, label: str, dataset: str, data_options: dict, epochs: int) -> dict:
    """The config.json a cell's trainer writes (the keys the runner compares)."""
    spec = get_table(table)
    return {"dataset": dataset, "data_options": data_options, "neuron": "nrr", "seed": spec.first_seed,
            "epochs": epochs, "lr_step": spec.lr_step, **spec.row_options(spec.row(label))}


def test_nrr_tables_are_registered_and_valid():
    table2, fig4 = get_table("nrr-table2"), get_table("nrr-fig4")
    for table in (table2, fig4):
        validate_table(table)
        assert table.neurons == ("nrr",) and table.score == "best" and table.lr_step == 20
        for row in table.rows:
            options = table.row_options(row)
            assert set(options) <= TRAIN_FIELDS
            assert options["model"] == "nrr" and options["hidden"] == 500 and options["batch_size"] == 50
            assert options["lr_gamma"] == 0.8
            expected = (39, 1e-4) if row.task.startswith("TIDigits") else (780, 1e-3)
            assert (options["steps"], options["lr"]) == expected, row.label
            if row.dataset == "tidigits":
                assert row.data_options == {"frames": 39} and row.stand_ins[0].dataset == "fsdd"
                assert row.stand_ins[0].data_options == FSDD_39
            else:
                assert row.dataset == "timit-phones" and not row.stand_ins
    assert table2.tasks() == ["TIDigits", "TIMIT"] and table2.columns == tuple(TABLE2_COLUMNS)
    assert [r.column for r in table2.rows if r.task == "TIMIT"] == list(TABLE2_COLUMNS)[:-1]  # no deep TIMIT net
    assert fig4.sweep == "model_options.sparseness"
    assert fig4.tasks() == ["TIDigits, NRR-SNN (RP)", "TIDigits, non-spiking RNN", "TIMIT, NRR-SNN (RP)",
                            "TIMIT, non-spiking RNN"]


def test_table2_rows_set_the_ablations_and_build():
    table = get_table("nrr-table2")
    for row in table.rows:
        rule, recurrent, adaptive, deep = TABLE2_COLUMNS[row.column]
        options = table.row_options(row)
        model = options["model_options"]
        assert options["rule"] == rule and model["recurrent"] is recurrent and model["adaptive"] is adaptive
        assert model.get("deep", False) is deep and model.get("sparseness", 0.5) == 0.5
        assert options["input_view"] == ("static" if deep else "native")
        TrainConfig(dataset=row.dataset, data_options=row.data_options, **options).resolved()
        net = build_model("nrr", (39 * 39,) if deep else (39,), 10, **{**model, "hidden": 8, "conv_channels": 2})
        assert (net.rfc[0].fc_r is not None) is recurrent and net.rfc[0].params.gamma == (1.0 if adaptive else 0.0)
        assert (net.conv is not None) is deep


def test_paper_numbers_match_the_spec_targets():
    if not SPEC_TARGETS.exists():
        pytest.skip("the spec's paper-targets.json is not beside the repository")
    spec = json.loads(SPEC_TARGETS.read_text())["nrr-table2"]
    table = get_table("nrr-table2")
    for row in table.rows:
        expected = spec["rows"][TARGET_ROWS[row.column]][spec["columns"].index(row.task)]
        if expected is None:
            assert row.paper == {}, row.label
        else:
            assert row.paper == {row.column: (pytest.approx(expected), None)}, row.label
    assert spec["rows"]["BP-RSNN without plasticity"][0] == 58.19  # named in the notes (the '+ sparse loop' net)
    assert any("58.19" in note for note in table.notes)


def test_table2_plan_cells_and_report(tmp_path):
    out = tmp_path / "runs"
    table = get_table("nrr-table2")
    finals = {"feed-forward, BP": 0.30, "+ adaptive threshold, BP": 0.55, "+ sparse loop, BP": 0.50,
              "NRR-SNN (RP)": 0.60, "BP-RSNN": 0.58, "NRR-SNN w/o plasticity (RP)": 0.52, "deep NRR-SNN (RP)": 0.90}
    for row in (r for r in table.rows if r.task == "TIDigits"):
        config = cell_config("nrr-table2", row.label, "fsdd", FSDD_39, 3)
        # the best epoch (2nd) counts: the paper's figures are maximal test accuracies
        fake_cell(cell_dir(out, "nrr-table2", row.folder("fsdd"), "nrr", table.first_seed),
                  [0.1, finals[row.column] + 0.01, finals[row.column]], config)
    plan = build_plan(table, out_root=out, seeds=1, epochs=3, tasks=["TIDigits"], data_root=str(tmp_path / "empty"))
    assert [r.status for r in plan.rows] == ["ok"] * 7  # every cell finished: no data needed
    assert {plan.state(c).status for c in plan.cells} == {"finished"}
    for cell in plan.cells:
        rule, recurrent, adaptive, deep = TABLE2_COLUMNS[table.row(cell.row).column]
        config = plan.config_for(cell)
        assert (config["dataset"], config["data_options"], config["model"]) == ("fsdd", FSDD_39, "nrr")
        assert config["rule"] == rule and config["lr_step"] == 20 and config["neuron"] == "nrr"
        assert config["model_options"]["recurrent"] is recurrent and config["model_options"]["adaptive"] is adaptive
        assert cell.run_dir.parent.parent.name.startswith("fsdd-")
    assert len({c.run_dir for c in plan.cells}) == 7
    doc = json.loads(write_report(plan, tmp_path / "report")["json"].read_text())
    rows = {r["label"]: r for r in doc["rows"]}
    assert rows["TIDigits, NRR-SNN (RP)"]["ours"]["nrr"]["score_mean"] == pytest.approx(61.0)
    checks = {c["text"]: c for c in doc["checks"]}
    assert checks["the adaptive threshold helps the feed-forward SNN"]["per_row"] == {
        "TIDigits": "holds", "TIMIT": "not measurable"}
    assert checks["the adaptive threshold helps the feed-forward SNN"]["paper_result"] == "holds"
    assert checks["on TIMIT, NRR-SNN scores above every pseudo-BP variant"]["paper_result"] == "holds"
    md = (tmp_path / "report" / "nrr-table2.md").read_text()
    assert "| TIDigits [fsdd] | paper | 36.25 | 66.05 | 60.86 | 63.03 | 59.57 | 56.96 | 98.34 |" in md
    assert "|  | ours | 31.00 (1) | 56.00 (1) | 51.00 (1) | 61.00 (1) | 59.00 (1) | 53.00 (1) | 91.00 (1) |" in md
    assert "best test score over the epochs" in md and "Free Spoken Digit Dataset" in md


def test_fig4_sweeps_the_sparseness_model_option(tmp_path):
    out = tmp_path / "runs"
    table = get_table("nrr-fig4")
    rows = [r for r in table.rows if r.task.startswith("TIDigits")]
    assert len(rows) == 10
    for row in rows:
        model = table.row_options(row)["model_options"]
        assert table.sweep_value(row) == model["sparseness"] and row.column == f"sparseness {model['sparseness']:g}"
        assert model.get("spiking", True) is row.task.endswith("NRR-SNN (RP)")
        assert table.row_options(row)["rule"] == ("brp" if model.get("spiking", True) else "bptt")
        net = build_model("nrr", (39,), 10, **{**model, "hidden": 8})
        assert net.rfc[0].sparseness == model["sparseness"] and net.spiking is model.get("spiking", True)
        drop = 0.4 * model["sparseness"] if not net.spiking else 0.0  # the RNN loses with sparse loops
        fake_cell(cell_dir(out, "nrr-fig4", row.folder("fsdd"), "nrr", table.first_seed), [0.2, 0.7 - drop],
                  cell_config("nrr-fig4", row.label, "fsdd", FSDD_39, 2))
    assert {r.folder("fsdd") for r in rows} >= {"fsdd-nrr-s0", "fsdd-nrr-s50", "fsdd-rnn-s90"}
    plan = build_plan(table, out_root=out, seeds=1, epochs=2, tasks=["TIDigits"], data_root=str(tmp_path / "empty"))
    assert {plan.state(c).status for c in plan.cells} == {"finished"}
    sparseness = {plan.config_for(c)["model_options"]["sparseness"] for c in plan.cells}
    assert sparseness == {0.0, 0.25, 0.5, 0.75, 0.9}
    paths = write_report(plan, tmp_path / "report")
    doc = json.loads(paths["json"].read_text())
    sweep = doc["sweep"]
    assert sweep["option"] == "model_options.sparseness"
    rnn = sweep["tasks"]["TIDigits, non-spiking RNN"]
    assert [p["x"] for p in rnn["points"]] == [0.0, 0.25, 0.5, 0.75, 0.9]
    assert rnn["points"][0]["mean"] == pytest.approx(70.0) and rnn["spread"] == pytest.approx(36.0)
    assert sweep["tasks"]["TIDigits, NRR-SNN (RP)"]["spread"] == pytest.approx(0.0)
    checks = {c["text"].split(":")[0]: c for c in doc["checks"]}
    assert checks["sparse connections hurt the non-spiking RNN"]["per_row"]["TIDigits, non-spiking RNN"] == "holds"
    md = paths["markdown"].read_text()
    assert "## Score against model_options.sparseness" in md and "| TIDigits, non-spiking RNN | 0.5 |" in md
    assert (tmp_path / "report" / "nrr-fig4-sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_a_swept_dict_option_must_be_set_in_every_row():
    ok = RowSpec("a, X", "digits", task="a", column="X", variant="x",
                 train_options={"model": "nrr", "model_options": {"sparseness": 0.5}})
    table = TableSpec("t", "t", "s", ("nrr",), (ok,), columns=("X",), sweep="model_options.sparseness")
    validate_table(table)
    assert table.sweep_value(ok) == 0.5
    for options in ({"model": "nrr"}, {"model_options": {"hidden": 3}}, {"model_options": 4}):
        bad = RowSpec("a, X", "digits", task="a", column="X", train_options=options)
        with pytest.raises(ValueError, match="swept option 'model_options.sparseness' is not set"):
            validate_table(TableSpec("t", "t", "s", ("nrr",), (bad,), columns=("X",), sweep="model_options.sparseness"))


def test_set_one_entry_of_a_dict_option_keeps_the_rows_others(tmp_path):
    """--set model_options.input_scale=39 scales every FSDD row's input and keeps each row's own loop settings."""
    out = tmp_path / "runs"
    table = get_table("nrr-table2")
    for row in (r for r in table.rows if r.task == "TIDigits"):  # cells on disk: the plan needs no data files
        fake_cell(cell_dir(out, "nrr-table2", row.folder("fsdd"), "nrr", table.first_seed), [0.5],
                  cell_config("nrr-table2", row.label, "fsdd", FSDD_39, 1))
    plan = build_plan(table, out_root=out, seeds=1, epochs=1, lr_step=20, tasks=["TIDigits"], load_data=False,
                      data_root=str(tmp_path / "empty"), overrides={"model_options.input_scale": 39})
    configs = {cell.run_dir.parent.parent.name: plan.config_for(cell) for cell in plan.cells}
    assert len(configs) == 7
    for folder, config in configs.items():
        assert config["model_options"]["input_scale"] == 39, folder
    assert configs["fsdd-ff"]["model_options"]["recurrent"] is False
    assert configs["fsdd-nrr"]["model_options"] == {"recurrent": True, "sparseness": 0.5, "adaptive": True,
                                                   "input_scale": 39}
    assert plan.expected(plan.cells[0])["model_options"]["input_scale"] == 39
    with pytest.raises(ValueError, match="only the entries of data_options and model_options"):
        build_plan(table, out_root=out, seeds=1, epochs=1, overrides={"lr.x": 1}, load_data=False)
