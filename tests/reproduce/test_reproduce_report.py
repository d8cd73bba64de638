import json
import math

import pytest
from reproduce_helpers import TINY, fake_cell, mnist_config, tiny_table

from spikedyn.reproduce import TABLES, build_plan, cell_dir, evaluate_check, get_table, register_table, seed_list, write_report
from spikedyn.reproduce.plan import probe_data
from spikedyn.reproduce.tables import CheckSpec

# made-up final accuracies (fractions) of three seeds per neuron; the last epoch is the final one
MNIST_FINALS = {
    "2nd-fs": [0.981, 0.983, 0.982],
    "2nd-rs": [0.979, 0.978, 0.980],
    "2nd-sds": [0.951, 0.949, 0.950],
    "2nd-wds": [0.955, 0.957, 0.953],
    "lif": [0.984, 0.985, 0.983],
}


@pytest.fixture
def mnist_runs(tmp_path):
    out = tmp_path / "runs"
    for neuron, finals in MNIST_FINALS.items():
        for seed, final in zip(seed_list(3), finals):
            fake_cell(cell_dir(out, "mdn-table3", "mnist", neuron, seed), [0.99] + [0.5] * 18 + [final], mnist_config(neuron, seed))
    # one seed still going: 4 of 20 epochs
    fake_cell(cell_dir(out, "mdn-table3", "mnist", "lif", 3157), [0.9] * 4, mnist_config("lif", 3157))
    return out


def test_report_of_mdn_table3_from_run_folders(mnist_runs, tmp_path):
    plan = build_plan(get_table("mdn-table3"), out_root=mnist_runs, seeds=None, epochs=None, lr_step=None,
                      tasks=["mnist", "f-mnist"], data_root=str(tmp_path / "empty"), load_data=False)
    report_dir, results = tmp_path / "report", tmp_path / "results"
    paths = write_report(plan, report_dir, results)
    doc = json.loads(paths["json"].read_text())
    md = paths["markdown"].read_text()
    assert not list(mnist_runs.glob("*.md"))  # nothing written beside the runs

    mnist, fmnist = doc["rows"]
    fs = mnist["ours"]["2nd-fs"]
    finals = [100 * a for a in MNIST_FINALS["2nd-fs"]]
    mean = sum(finals) / 3
    assert fs["seeds_finished"] == 3 and fs["score_mean"] == pytest.approx(mean)
    assert fs["score_std"] == pytest.approx(math.sqrt(sum((f - mean) ** 2 for f in finals) / 2))  # sample std
    assert fs["best_mean"] == pytest.approx(99.0)  # every seed's best epoch is the first
    assert mnist["ours"]["lif"]["seeds_finished"] == 3 and mnist["ours"]["lif"]["cells"] == 4
    assert fs["schedules"][0]["epochs"] == 20 and fs["schedules"][0]["lr_step"] == 15
    assert mnist["paper"]["2nd-fs"] == [98.67, 0.05]

    # markdown: paper next to ours, the unfinished seed, the row without data and its hint
    assert "| MNIST | paper | 98.67 ± 0.05 |" in md
    assert f"{mean:.2f} ± {fs['score_std']:.2f} (3)" in md
    assert "4 of 20" in md and "seed3157" in md
    assert "F-MNIST: no data" in md and "Put it here" in md and fmnist["status"] == "no data"
    assert "sample standard deviation" in md

    checks = {c["text"]: c for c in doc["checks"]}
    spatial = checks["spatial types (FS, RS) beat temporal types (SDS, WDS) on MNIST, F-MNIST, NETtalk, CIFAR-10"]
    assert spatial["per_row"] == {"MNIST": "holds", "F-MNIST": "not measurable", "NETtalk": "not measurable",
                                  "CIFAR-10": "not measurable"}
    assert spatial["result"] == "holds where measurable" and spatial["paper_result"] == "holds"
    assert checks["FS >= RS on MNIST"]["result"] == "holds"
    assert checks["SDS >= WDS on TIDigits"]["result"] == "not measurable"

    cap = doc["capability"]
    assert cap["ours"]["tasks"] == {"spatial": ["MNIST"], "temporal": []}
    means = {n: sum(v) / 3 for n, v in MNIST_FINALS.items()}
    centre = sum(means.values()) / 5
    spread = math.sqrt(sum((m - centre) ** 2 for m in means.values()) / 5)
    assert cap["ours"]["spatial"]["2nd-sds"] == pytest.approx((means["2nd-sds"] - centre) / spread, abs=1e-6)
    assert cap["ours"]["temporal"]["lif"] is None
    assert cap["paper_same_tasks"]["tasks"]["spatial"] == ["MNIST"]
    assert "![capability](mdn-table3-capability.png)" in md
    for name in ("mdn-table3.md", "mdn-table3.json", "mdn-table3-capability.png"):
        assert (results / name).exists()
    assert (report_dir / "mdn-table3-capability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_after_a_tiny_run(tmp_path):
    from spikedyn.reproduce import run_plan

    register_table(tiny_table(), replace=True)
    try:
        plan = build_plan(get_table(TINY), out_root=tmp_path / "runs", seeds=1, epochs=1, lr_step=50,
                          data_root=str(tmp_path / "nodata"))
        run = run_plan(plan, progress=False, echo=lambda s: None)
        paths = write_report(plan, run=run)
    finally:
        TABLES.pop(TINY, None)
    assert paths["markdown"] == tmp_path / "runs" / f"{TINY}.md"
    doc = json.loads(paths["json"].read_text())
    digits = doc["rows"][0]
    record = json.loads((tmp_path / "runs" / TINY / "digits" / "lif" / "seed3154" / "metrics.jsonl").read_text())
    assert digits["ours"]["lif"]["score_mean"] == pytest.approx(100 * record["test_accuracy"], abs=1e-4)
    assert digits["data"]["train"] == 1437 and digits["data"]["test"] == 360
    md = paths["markdown"].read_text()
    assert "| Digits | paper | 90.00 ± 1.00 | 80.00 |" in md
    assert "1,437 / 360" in md and "MNIST: no data" in md
    assert doc["checks"][0]["result"] in ("holds", "does not hold")
    assert doc["run"]["finished_now"] == 2 and not doc["run"]["interrupted"]


def test_checks_hold_on_the_papers_own_numbers():
    table = get_table("mdn-table3")
    paper = {r.label: {n: v[0] for n, v in r.paper.items()} for r in table.rows}
    assert [evaluate_check(c, paper)["result"] for c in table.checks] == ["holds"] * len(table.checks)


def test_check_outcomes():
    check = CheckSpec("a beats b", ("x", "y"), ("a",), ("b",))
    assert evaluate_check(check, {"x": {"a": 2, "b": 1}, "y": {"a": 3, "b": 1}})["result"] == "holds"
    assert evaluate_check(check, {"x": {"a": 2, "b": 1}, "y": {"a": 1, "b": 3}})["result"] == "does not hold"
    assert evaluate_check(check, {"x": {"a": 2, "b": 2}})["per_row"]["x"] == "does not hold"  # strict
    assert evaluate_check(check, {"x": {"a": 2, "b": 1}})["result"] == "holds where measurable"
    assert evaluate_check(check, {})["result"] == "not measurable"
    loose = CheckSpec("a at least b", ("x",), ("a",), ("b",), strict=False)
    assert evaluate_check(loose, {"x": {"a": 2, "b": 2}})["result"] == "holds"


def test_a_run_trained_past_the_epochs_asked_is_scored_after_those_epochs(tmp_path):
    """Every cell of a table is compared after the same training: a run with 6 epochs reported for
    ``--epochs 4`` scores its 4th epoch (final) and its best of epochs 1-4, and says "4 of 6 ep"."""
    out = tmp_path / "runs"
    for neuron in ("2nd-fs", "lif"):
        fake_cell(cell_dir(out, "mdn-table3", "mnist", neuron, 3154), [0.5, 0.8, 0.9, 0.7, 0.95, 0.97],
                  mnist_config(neuron, 3154, epochs=6, lr_step=15))
    plan = build_plan(get_table("mdn-table3"), out_root=out, seeds=1, epochs=4, lr_step=15, tasks=["mnist"],
                      data_root=str(tmp_path / "empty"), load_data=False)
    paths = write_report(plan, tmp_path / "report")
    mnist = json.loads(paths["json"].read_text())["rows"][0]
    fs = mnist["ours"]["2nd-fs"]
    assert fs["seeds_finished"] == 1
    assert fs["score_mean"] == pytest.approx(70.0) and fs["best_mean"] == pytest.approx(90.0)
    assert fs["per_seed"]["3154"]["epochs"] == 4
    assert fs["schedules"][0]["epochs_scored"] == 4
    assert "4 of 6 ep" in paths["markdown"].read_text()

    # asked for the run's own length: the last epoch, and no "of"
    plan = build_plan(get_table("mdn-table3"), out_root=out, seeds=1, epochs=6, lr_step=15, tasks=["mnist"],
                      data_root=str(tmp_path / "empty"), load_data=False)
    paths = write_report(plan, tmp_path / "report6")
    fs = json.loads(paths["json"].read_text())["rows"][0]["ours"]["2nd-fs"]
    assert fs["score_mean"] == pytest.approx(97.0) and "epochs_scored" not in fs["schedules"][0]
    assert " of 6 ep" not in paths["markdown"].read_text()


def test_a_cell_run_with_other_settings_is_listed_as_such_not_as_failed(tmp_path):
    out = tmp_path / "runs"
    fake_cell(cell_dir(out, "mdn-table3", "mnist", "lif", 3154), [0.9, 0.95], mnist_config("lif", 3154, epochs=2, lr_step=1))
    plan = build_plan(get_table("mdn-table3"), out_root=out, seeds=1, epochs=2, lr_step=15, tasks=["mnist"],
                      data_root=str(tmp_path / "empty"), load_data=False)
    md = write_report(plan, tmp_path / "report")["markdown"].read_text()
    assert "## Cells run with other settings (not scored)" in md
    assert "lr_step=1 (asked: 15)" in md
    assert "## Failed cells" not in md


def test_an_unfinished_cell_states_its_time_left_from_its_last_epochs(tmp_path):
    """5 of 20 epochs done, the last three took 20, 30 and 25 min (pauses included): the pace is their
    median, 25 min, and the 15 epochs to go need about 15 x 25 min = 6.2 h; a finished cell states none."""
    out = tmp_path / "runs"
    fake_cell(cell_dir(out, "mdn-table3", "mnist", "lif", 3154), [0.9] * 5, mnist_config("lif", 3154),
              seconds=[3600, 3000, 1200, 1800, 1500])
    fake_cell(cell_dir(out, "mdn-table3", "mnist", "2nd-fs", 3154), [0.9] * 20, mnist_config("2nd-fs", 3154))
    plan = build_plan(get_table("mdn-table3"), out_root=out, seeds=1, epochs=20, lr_step=15, tasks=["mnist"],
                      data_root=str(tmp_path / "empty"), load_data=False)
    paths = write_report(plan, tmp_path / "report")
    cells = {c["neuron"]: c for c in json.loads(paths["json"].read_text())["cells"]}
    assert cells["lif"]["epoch_seconds"] == 1500 and cells["lif"]["left_s"] == 15 * 1500
    assert "left_s" not in cells["2nd-fs"] and "epoch_seconds" not in cells["2nd-fs"]
    md = paths["markdown"].read_text()
    assert "time left (estimate)" in md
    assert "about 6.2 h at 25 min an epoch" in md


def test_chance_band_is_two_binomial_standard_errors_above_uniform_guessing():
    from spikedyn.reproduce.report import chance_band

    # 2 classes, 40 test samples: 50 + 2 * 100 * sqrt(0.5 * 0.5 / 40) = 50 + 15.81
    band = chance_band({"classes": 2, "test": 40})
    assert band["level"] == 50.0 and band["bound"] == pytest.approx(65.8114, abs=1e-4)
    # a row scored by another metric, or whose data summary lacks the classes or the test size: no band
    assert chance_band({"classes": 10, "test": 300}, ["cosine"]) is None
    assert chance_band({"classes": 10, "test": 300, "metric": "frame-accuracy"}) is None
    assert chance_band({"test": 300}) is None and chance_band({"classes": 10}) is None and chance_band(None) is None


def test_a_seed_that_never_left_chance_is_named(tmp_path):
    """The tiny table's Digits row (10 classes, 360 test samples): chance is 10 % and its band reaches
    10 + 2 * 100 * sqrt(0.1 * 0.9 / 360) = 13.16 %. A LIF seed whose best epoch is 13.1 % stayed at chance,
    one at 14 % did not; the main table, the per-neuron table and a section of their own say so."""
    out = tmp_path / "runs"
    lif = {3154: [0.5, 0.9], 3155: [0.1, 0.131], 3156: [0.1, 0.14]}
    for seed, accs in lif.items():
        fake_cell(cell_dir(out, TINY, "digits", "lif", seed), accs, {"epochs": 2})
        fake_cell(cell_dir(out, TINY, "digits", "2nd-fs", seed), [0.8, 0.9], {"epochs": 2})
    # the runner's summary of the row's data (the report reads it instead of loading finished rows' data)
    (out / TINY / "digits" / "data.json").write_text(json.dumps(probe_data("digits", {}, None)[0]))
    register_table(tiny_table(), replace=True)
    try:
        plan = build_plan(get_table(TINY), out_root=out, seeds=3, epochs=2, lr_step=50, tasks=["digits"],
                          data_root=str(tmp_path / "nodata"))
        paths = write_report(plan, tmp_path / "report")
    finally:
        TABLES.pop(TINY, None)
    digits = json.loads(paths["json"].read_text())["rows"][0]
    assert digits["chance"]["level"] == 10.0 and digits["chance"]["bound"] == pytest.approx(13.1623, abs=1e-4)
    assert digits["ours"]["lif"]["at_chance"] == [3155] and digits["ours"]["2nd-fs"]["at_chance"] == []
    md = paths["markdown"].read_text()
    assert "| ours | 90.00 ± 0.00 (3) | 39.03 ± 44.14 (3, 1 at chance) |" in md
    assert "3 of 3, 1 at chance" in md
    assert "## Seeds that stayed at chance" in md
    assert "| Digits | lif | 3155 | 13.10 | 13.10 | 10.00 | 13.16 |" in md
