"""The PLIF tables: accuracy-A is the best epoch, accuracy-B the epoch of the best validation score."""

import json

import pytest

from spikedyn.reproduce import build_plan, cell_dir, describe_plan, get_table, write_report
from spikedyn.train import TrainConfig


def _config(table: str, row: str, neuron: str, epochs: int) -> dict:
    """The config.json the runner writes for a cell (the runner's fields + the row's training options)."""
    spec = get_table(table)
    r = spec.row(row)
    return {"dataset": r.dataset, "data_options": dict(r.data_options), "neuron": neuron,
            "seed": spec.first_seed, "epochs": epochs, **spec.row_options(r)}


def _write_cell(run_dir, config: dict, test: list[float], val: list[float] | None = None) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    with open(run_dir / "metrics.jsonl", "w") as fh:
        for i, acc in enumerate(test):
            row = {"epoch": i + 1, "test_accuracy": acc, "seconds": 1.0}
            if val is not None:
                row["val_accuracy"] = val[i]
            fh.write(json.dumps(row) + "\n")
    (run_dir / "checkpoint.pt").write_bytes(b"not a real checkpoint")


def test_table2_scores_accuracy_a_and_b(tmp_path):
    out = tmp_path / "runs"
    config_a = _config("plif-table2", "MNIST, accuracy-A", "plif", 4)
    config_b = _config("plif-table2", "MNIST, accuracy-B", "plif", 4)
    assert config_b["validation"] == 0.15 and "validation" not in config_a
    assert config_a["model"] == "plif" and config_a["schedule"] == "cosine" and config_a["seed"] == 2020
    TrainConfig(**config_b).resolved()  # a valid run
    _write_cell(cell_dir(out, "plif-table2", "mnist", "plif", 2020), config_a, [0.90, 0.97, 0.95, 0.96])  # best 97
    _write_cell(cell_dir(out, "plif-table2", "mnist-accb", "plif", 2020), config_b, [0.91, 0.96, 0.98, 0.94],
                val=[0.90, 0.97, 0.96, 0.95])  # validation peaks at epoch 2
    plan = build_plan(get_table("plif-table2"), out_root=out, seeds=None, epochs=None, lr_step=None,
                      tasks=["MNIST"], data_root=str(tmp_path / "empty"), load_data=False)
    doc = json.loads(write_report(plan, tmp_path / "report")["json"].read_text())
    rows = {r["label"]: r for r in doc["rows"]}
    assert rows["MNIST, accuracy-A"]["score"] == "best"
    assert rows["MNIST, accuracy-A"]["ours"]["plif"]["score_mean"] == pytest.approx(97.0)
    assert rows["MNIST, accuracy-B"]["score"] == "selected"
    assert rows["MNIST, accuracy-B"]["ours"]["plif"]["score_mean"] == pytest.approx(96.0)  # not the best test (98)
    md = (tmp_path / "report" / "plif-table2.md").read_text()
    assert "accuracy-A: the test set selects the epoch" in md and "best validation score" in md


def test_table4_runs_plif_and_fixed_tau_lif_with_each_tau(tmp_path):
    out = tmp_path / "runs"
    for tau in (2, 16):
        for neuron in ("plif", "lif-tau"):
            config = _config("plif-table4", f"MNIST, tau {tau}", neuron, 2)
            assert config["model_options"] == {"preset": "mnist", "tau": float(tau)}
            TrainConfig(**config).resolved()
            _write_cell(cell_dir(out, "plif-table4", f"mnist-tau{tau}", neuron, 2020), config, [0.5, 0.6])
    plan = build_plan(get_table("plif-table4"), out_root=out, seeds=None, epochs=None, lr_step=3,
                      tasks=["MNIST"], data_root=str(tmp_path / "empty"), load_data=False)
    assert {(c.row, c.neuron) for c in plan.cells} == {(f"MNIST, tau {t}", n) for t in (2, 16) for n in ("plif", "lif-tau")}
    for cell in plan.cells:
        assert "lr_step" not in plan.expected(cell), "the cosine schedule does not use lr_step"
        assert plan.state(cell).status == "finished"
    # the schedule asked for is the cosine one: neither the report nor the dry run names an lr step
    asked = build_plan(get_table("plif-table4"), out_root=out, seeds=1, epochs=2, lr_step=3, tasks=["MNIST"],
                       data_root=str(tmp_path / "empty"), load_data=False)
    md = (write_report(asked, tmp_path / "report")["markdown"]).read_text()
    assert "Asked for: 1 seed(s), 2 epochs, cosine learning-rate schedule." in md and "lr step" not in md
    assert "our schedule: 2 epochs, cosine learning-rate schedule" in "\n".join(describe_plan(asked))
    table = get_table("plif-table4")
    assert table.row("MNIST, tau 16").paper == {"plif": (99.73, None), "lif-tau": (99.49, None)}  # spec plif.md 5


def test_table5_average_pooling_rows():
    table = get_table("plif-table5")
    avg = table.row("CIFAR-10, avg-pool")
    assert avg.train_options["model_options"] == {"preset": "cifar10", "pool": "avg"}
    assert avg.paper == {"avg-pool": (93.30, None)} and table.row("CIFAR-10, max-pool").paper == {"max-pool": (93.50, None)}
