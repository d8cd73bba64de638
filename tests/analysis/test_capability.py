import math

import pytest

from spikedyn.analysis import capability, standardise
from spikedyn.reproduce import get_table

NEURONS = ("2nd-fs", "2nd-rs", "2nd-sds", "2nd-wds", "lif")


def paper_table3():
    table = get_table("mdn-table3")
    accuracies = {r.label: {n: v[0] for n, v in r.paper.items()} for r in table.rows}
    return accuracies, {r.label: r.kind for r in table.rows}


def test_capability_of_the_papers_table3_matches_the_spec():
    accuracies, kinds = paper_table3()
    cap = capability(accuracies, kinds, NEURONS)
    assert [cap.spatial[n] for n in NEURONS] == pytest.approx([0.97, 0.77, -1.47, -0.84, 0.58], abs=0.01)
    assert [cap.temporal[n] for n in NEURONS] == pytest.approx([-0.31, 0.02, 1.00, 0.93, -1.65], abs=0.01)
    assert cap.tasks == {"spatial": ["MNIST", "F-MNIST", "NETtalk", "CIFAR-10"], "temporal": ["TIDigits", "TIMIT-gender"]}
    assert "N-MNIST" in cap.skipped


def test_variance_normalisation_divides_by_the_variance():
    values = [98.67, 98.33, 94.87, 95.34, 98.69]
    mean = sum(values) / 5
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 5)
    by_std, by_var = standardise(values), standardise(values, "var")
    assert by_var == pytest.approx([z / std for z in by_std])
    cap = capability({"MNIST": dict(zip(NEURONS, values))}, {"MNIST": "spatial"}, NEURONS, normalize="var")
    assert cap.spatial["2nd-fs"] == pytest.approx((98.67 - mean) / std**2)
    with pytest.raises(ValueError, match="normalize"):
        standardise(values, "range")


def test_tasks_without_every_neuron_are_left_out():
    acc = {
        "A": {"x": 1.0, "y": 3.0},
        "B": {"x": 2.0, "y": None},
        "C": {"x": 5.0, "y": 5.0},
        "D": {"x": 0.0, "y": 1.0},
    }
    cap = capability(acc, {"A": "spatial", "B": "spatial", "C": "temporal", "D": None}, ["x", "y"])
    assert cap.tasks == {"spatial": ["A"], "temporal": []}
    assert cap.spatial == {"x": -1.0, "y": 1.0} and cap.temporal == {"x": None, "y": None}
    assert set(cap.skipped) == {"B", "C", "D"} and "y" in cap.skipped["B"]


def test_capability_chart(tmp_path):
    pytest.importorskip("matplotlib")
    from spikedyn.plots.capability import plot_capability

    accuracies, kinds = paper_table3()
    paper = capability(accuracies, kinds, NEURONS)
    ours = capability({"MNIST": accuracies["MNIST"]}, kinds, NEURONS)
    out = plot_capability({"paper": paper, "ours": ours}, tmp_path / "cap.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
