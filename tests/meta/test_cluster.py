"""Phase 2 of MDN: theta history, clustering into candidates, the written files and the CLI."""

import importlib.util
import json

import numpy as np
import pytest
import torch

from spikedyn.cli import main
from spikedyn.meta import cluster_theta, load_presets, load_theta_history, run_cluster
from spikedyn.neurons import make_neuron

# blob means at the authors' TIDigits candidates (spec mdn.md section 2.3): (a, b) T1/T3/T2 and (c, d)
AB_MEANS = np.array([(-0.009, 0.246), (0.005, 0.158), (0.007, 0.205)])
CD_MEANS = np.array([(-0.058, 0.065), (0.064, 0.091)])
AB_SIZES, CD_SIZES = (150, 90, 60), (180, 120)
STD = 0.004


def blobs(seed: int = 0):
    """theta rows [300, 4] with known cluster labels: (a, b) from 3 blobs, (c, d) from 2."""
    rng = np.random.default_rng(seed)
    ab_label = np.repeat(np.arange(3), AB_SIZES)
    cd_label = np.repeat(np.arange(2), CD_SIZES)
    rng.shuffle(ab_label)
    rng.shuffle(cd_label)
    rows = np.concatenate(
        [AB_MEANS[ab_label] + rng.normal(0, STD, (300, 2)), CD_MEANS[cd_label] + rng.normal(0, STD, (300, 2))], axis=1
    )
    return rows, ab_label, cd_label


def as_layers(rows: np.ndarray) -> dict[str, torch.Tensor]:
    """First 240 points as a per-batch-slot layer [4, S=2, N=120], the last 60 as a layer [4, 60]."""
    t = torch.tensor(rows.T)
    return {"neuron1": t[:, :240].reshape(4, 2, 120), "neuron2": t[:, 240:]}


@pytest.fixture(scope="module")
def three_by_two():
    rows, ab_label, cd_label = blobs()
    return rows, ab_label, cd_label, cluster_theta(as_layers(rows), quantile=0.3)


def test_finds_the_blobs_and_their_product(three_by_two):
    rows, ab_label, cd_label, result = three_by_two
    assert result.layers == {"neuron1": 240, "neuron2": 60}
    assert (result.ab.m, result.cd.m) == (3, 2)
    assert result.ab.method == result.cd.method == "mean-shift" and result.ab.m_mean_shift == 3
    # sorted by size, largest first: the clusters are exactly the blobs
    assert result.ab.sizes == list(AB_SIZES) and result.cd.sizes == list(CD_SIZES)
    assert (result.ab.labels == ab_label).all() and (result.cd.labels == cd_label).all()
    for k in range(3):
        assert result.ab.centres[k] == pytest.approx(rows[ab_label == k, :2].mean(0), abs=1e-12)
    assert result.ab.centres == pytest.approx(AB_MEANS, abs=0.002)  # 4 sigma of a 60-point mean
    assert result.cd.centres == pytest.approx(CD_MEANS, abs=0.002)

    assert [c.name for c in result.candidates] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    for c in result.candidates:
        i, j = c.ab_cluster - 1, c.cd_cluster - 1
        assert c.theta == pytest.approx((*AB_MEANS[i], *CD_MEANS[j]), abs=0.002)
        assert (c.ab_size, c.cd_size) == (AB_SIZES[i], CD_SIZES[j])
        assert c.joint_size == int(np.sum((ab_label == i) & (cd_label == j)))
    assert [(c.ab_cluster, c.cd_cluster) for c in result.candidates[:3]] == [(1, 1), (1, 2), (2, 1)]
    by_cell = {(c.ab_cluster, c.cd_cluster): c for c in result.candidates}
    assert by_cell[(1, 1)].nearest_paper == "2nd-SDS" and by_cell[(2, 1)].nearest_paper == "2nd-WDS"
    assert by_cell[(1, 1)].distance < 0.003
    assert list(result.to_presets()) == ["C1", "C2", "C3", "C4", "C5", "C6"]


def test_summary_is_json(three_by_two):
    summary = json.loads(json.dumps(three_by_two[3].summary()))
    assert summary["points"] == 300 and summary["quantile"] == 0.3
    assert summary["clouds"]["ab"]["m"] == 3 and summary["clouds"]["cd"]["axes"] == ["theta_c", "theta_d"]
    assert len(summary["candidates"]) == 6 and set(summary["candidates"][0]) >= {"name", "theta_a", "nearest_paper"}


def test_override_reproduces_the_authors_tidigits_setting():
    rows, ab_label, cd_label = blobs(seed=1)  # at quantile 0.5 mean shift may merge two (a, b) blobs
    result = cluster_theta(torch.tensor(rows.T), n_ab=3)
    assert result.ab.method == "override" and result.ab.m == 3 and result.cd.m == 2
    assert (result.ab.labels == ab_label).all() and len(result.candidates) == 6


@pytest.mark.filterwarnings("ignore:Binning data failed")  # 4 points: sklearn seeds from the points instead
def test_bandwidth_matches_a_hand_computed_value():
    # unit square corners; quantile 0.5 -> 2 neighbours counting the point itself -> distance 1 each
    corners = torch.tensor([[0.0, 0, 1, 1], [0.0, 1, 0, 1], [0.0, 0, 0, 0], [0.0, 0, 0, 0]])
    corners[2:] = corners[:2] * 2
    result = cluster_theta(corners, n_ab=4, n_cd=4)
    assert result.ab.bandwidth == pytest.approx(1.0) and result.cd.bandwidth == pytest.approx(2.0)
    assert len(result.candidates) == 16


def test_degenerate_clouds_do_not_crash():
    same = torch.tensor([0.02, 0.2, 0.0, 0.08]).reshape(4, 1).repeat(1, 50)
    result = cluster_theta({"h": same})
    assert (result.ab.m, result.cd.m) == (1, 1) and result.ab.method == "degenerate"
    assert result.candidates[0].theta == pytest.approx((0.02, 0.2, 0.0, 0.08))
    assert any("all points are identical, mean shift skipped" in note for note in result.notes)
    # two exact values, 25 copies each: every point's neighbours at quantile 0.5 coincide -> bandwidth 0
    two = same.clone()
    two[2, 25:] = -0.065
    result = cluster_theta({"h": two})
    assert result.cd.bandwidth == 0.0 and result.cd.m == 2 and result.cd.sizes == [25, 25]
    assert sorted(result.cd.centres[:, 0].tolist()) == pytest.approx([-0.065, 0.0])
    assert "2 exact values" in result.notes[-1]


def test_cluster_errors():
    with pytest.raises(ValueError, match=r"layer 'h' must be \[4, \.\.\.\]"):
        cluster_theta({"h": torch.zeros(3, 10)})
    bad = torch.zeros(4, 10)
    bad[1, 3] = float("nan")
    with pytest.raises(ValueError, match="1 neuron\\(s\\) with non-finite values"):
        cluster_theta({"h": bad})
    with pytest.raises(ValueError, match="only 1 distinct point"):
        cluster_theta(torch.zeros(4, 10), n_ab=2)
    with pytest.raises(ValueError, match="quantile must be in"):
        cluster_theta(torch.zeros(4, 10), quantile=0.0)


def write_history(run, epochs=(0, 1, 3), seed=0, slots=True):
    """A theta_history.pt as phase 1 writes it: the blobs at the last epoch, the initial theta before."""
    rows, _, _ = blobs(seed)
    final = as_layers(rows)
    theta = {}
    for name, t in final.items():
        init = torch.tensor([0.02, 0.2, 0.0, 0.08], dtype=torch.float64).reshape(4, *[1] * (t.dim() - 1)).expand_as(t)
        steps = [init + (t - init) * e / epochs[-1] for e in epochs]
        theta[name] = torch.stack(steps).float()
    if not slots:
        theta["neuron1"] = theta["neuron1"][:, :, 0]
    run.mkdir(parents=True, exist_ok=True)
    torch.save({"epochs": list(epochs), "theta": theta, "neuron": "mdn", "dataset": "tidigits"}, run / "theta_history.pt")
    return rows


def test_theta_history_loader(tmp_path):
    write_history(tmp_path / "run")
    history = load_theta_history(tmp_path / "run")
    assert history.epochs == [0, 1, 3] and history.layers == ["neuron1", "neuron2"]
    assert (history.dataset, history.neuron) == ("tidigits", "mdn")
    assert history.theta["neuron1"].shape == (3, 4, 2, 120)
    last = history.at()
    assert last["neuron2"].shape == (4, 60) and torch.equal(last["neuron2"], history.at(3)["neuron2"])
    assert history.at(0)["neuron1"][:, 1, 7].tolist() == pytest.approx([0.02, 0.2, 0.0, 0.08])
    with pytest.raises(ValueError, match="no theta recorded for epoch 2 .*available epochs: 0, 1, 3"):
        history.at(2)
    assert load_theta_history(tmp_path / "run" / "theta_history.pt").epochs == [0, 1, 3]


def test_theta_history_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no theta_history.pt in .*spikedyn train --neuron mdn"):
        load_theta_history(tmp_path)
    torch.save({"epochs": [0, 1], "theta": {"neuron1": torch.zeros(2, 3, 5)}}, tmp_path / "theta_history.pt")
    with pytest.raises(ValueError, match=r"layer 'neuron1' must be \[E=2, 4, \.\.\.\], got \(2, 3, 5\)"):
        load_theta_history(tmp_path)
    torch.save([1, 2], tmp_path / "theta_history.pt")
    with pytest.raises(ValueError, match="expected a dict with keys 'epochs' and 'theta'"):
        load_theta_history(tmp_path)


def test_run_cluster_writes_usable_presets(tmp_path):
    write_history(tmp_path / "run", slots=False)
    summary = run_cluster(tmp_path / "run", epoch=3, quantile=0.3, plot=False)
    out = tmp_path / "run" / "meta" / "epoch3"
    assert summary["files"] == {"presets": str(out / "presets.json"), "summary": str(out / "clusters.json")}
    assert summary["layers"] == {"neuron1": 120, "neuron2": 60} and summary["epoch"] == 3
    assert json.loads((out / "clusters.json").read_text())["candidates"] == summary["candidates"]
    presets = load_presets(out / "presets.json")
    assert list(presets) == [c["name"] for c in summary["candidates"]]
    assert presets["C1"] == tuple(summary["candidates"][0][k] for k in ("theta_a", "theta_b", "theta_c", "theta_d"))
    source = json.loads((out / "presets.json").read_text())["source"]
    assert source["epoch"] == 3 and source["dataset"] == "tidigits"
    layer = make_neuron(f"{out / 'presets.json'}:C1", 5)
    assert layer.theta[:, 0].tolist() == torch.tensor(presets["C1"]).tolist()


def test_cli_meta_cluster_end_to_end(tmp_path, capsys):
    write_history(tmp_path / "run")
    out = tmp_path / "out"
    rc = main(["meta", "cluster", str(tmp_path / "run"), "--out", str(out), "--n-ab", "3", "--seed", "1"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "clustered 300 neurons (neuron1: 240, neuron2: 60)" in text and "at epoch 3" in text
    assert "M = 3 (set by hand" in text and "6 candidate meta neuron(s)" in text and "nearest 2nd-SDS" in text
    assert f"--neuron {out / 'presets.json'}:C1" in text
    assert len(load_presets(out / "presets.json")) == 6
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "clusters.png").read_bytes()[:4] == b"\x89PNG" and (out / "clusters.png").stat().st_size > 10_000
    else:
        assert "clusters.png not drawn: matplotlib is missing" in text
    assert main(["meta", "cluster", str(tmp_path / "run"), "--epoch", "2"]) == 2
    assert "available epochs: 0, 1, 3" in capsys.readouterr().err


def test_plot_theta_clusters(three_by_two, tmp_path):
    pytest.importorskip("matplotlib")
    from spikedyn.plots import plot_theta_clusters

    out = plot_theta_clusters(three_by_two[3], tmp_path / "sub" / "c.png", title="blobs")
    assert out == tmp_path / "sub" / "c.png" and out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 10_000
