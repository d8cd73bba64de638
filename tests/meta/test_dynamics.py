"""MDN phase 2 filter: simulation, non-sensitivity, grouping, attractors, plot."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from spikedyn.meta.attractors import fixed_points, phase_plane, v_fixed_points
from spikedyn.meta.dynamics import (
    assess_sensitivity,
    filter_candidates,
    group_candidates,
    simulate,
    sine_drive,
    van_rossum_distances,
)
from spikedyn.neurons.second_order import META_NEURON_PRESETS

FS, RS, M3, SDS, WDS = (META_NEURON_PRESETS[k] for k in ("2nd-FS", "2nd-RS", "2nd-M3", "2nd-SDS", "2nd-WDS"))
KEPT = ["2nd-FS", "2nd-RS", "2nd-SDS", "2nd-WDS"]

# spec mdn.md section 2.4: (V_t, U_t, S_t) for t = 1..5 at constant z = 0, rounded to 4 decimals
REFERENCE = {
    "2nd-FS": [(0.42, 0.0752, 0), (0.6012, 0.0762, 1), (0.4250, 0.0736, 0), (0.6070, 0.0748, 1), (0.4265, 0.0722, 0)],
    "2nd-RS": [(0.42, 0.0752, 0), (0.6012, 0.0762, 1), (0.3739, 0.1185, 0), (0.5213, 0.1163, 1), (0.3338, 0.1562, 0)],
    "2nd-SDS": [(0.42, 0.0807, 0), (0.5957, 0.0805, 1), (0.3578, 0.1470, 0), (0.4811, 0.1475, 0), (0.5840, 0.1477, 1)],
}
# spec section 2.4: spike counts over T = 20 at constant z
Z_LEVELS = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0)
COUNTS = {
    "2nd-FS": (0, 0, 0, 10, 20, 20),
    "2nd-RS": (0, 0, 0, 6, 12, 14),
    "2nd-SDS": (0, 0, 0, 3, 6, 8),
    "2nd-WDS": (0, 0, 0, 3, 7, 9),
}
# spec section 2.3: the six TIDigits candidates, (theta_a, theta_b) x (theta_c, theta_d); T1 = SDS, T3 = WDS
TIDIGITS = {
    f"T{k + 1}": (*ab, *cd)
    for k, (ab, cd) in enumerate(
        itertools.product([(-0.009, 0.246), (0.005, 0.158), (0.007, 0.205)], [(-0.058, 0.065), (0.064, 0.091)])
    )
}
NEAR_FS = (0.062, 0.215, -0.060, 0.005)  # each component within 0.005 of 2nd-FS


def test_sine_drive_matches_the_spec_drive():
    z = sine_drive()
    assert z.shape == (200,) and z.dtype == torch.float64
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-12)
    assert float(z.std(unbiased=False)) == pytest.approx(0.723, abs=5e-4)  # paper: std 0.723
    assert torch.allclose(z[20:], z[:-20])  # period 20 steps
    assert float(sine_drive(steps=40, mean=0.5).mean()) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="steps"):
        sine_drive(steps=0)


def test_traces_at_z0_match_spec_reference():
    traces = simulate({k: META_NEURON_PRESETS[k] for k in REFERENCE}, torch.zeros(5))
    for name, rows in REFERENCE.items():
        tr = traces[name]
        assert torch.all(tr.current == 0.5)
        for t, (v, u, s) in enumerate(rows):
            assert float(tr.v[t]) == pytest.approx(v, abs=5.1e-5), (name, t)
            assert float(tr.u[t]) == pytest.approx(u, abs=5.1e-5), (name, t)
            assert float(tr.s[t]) == s, (name, t)


def test_spike_counts_match_spec():
    thetas = {k: META_NEURON_PRESETS[k] for k in COUNTS}
    for col, z in enumerate(Z_LEVELS):
        traces = simulate(thetas, torch.full((20,), z))
        assert {k: tr.spike_count for k, tr in traces.items()} == {k: c[col] for k, c in COUNTS.items()}, z


def test_simulate_rejects_bad_input():
    with pytest.raises(ValueError, match="4 finite"):
        simulate({"x": (0.1, 0.2, 0.3)}, torch.zeros(3))
    with pytest.raises(ValueError, match="4 finite"):
        simulate({"x": (0.1, 0.2, 0.3, float("nan"))}, torch.zeros(3))
    with pytest.raises(ValueError, match="1-D"):
        simulate({"fs": FS}, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="no candidates"):
        simulate({}, torch.zeros(3))


@pytest.mark.parametrize("mean", [-0.5, 0.0, 0.5, 1.0])
def test_only_m3_is_non_sensitive(mean):
    traces = simulate(META_NEURON_PRESETS, sine_drive(mean=mean))
    verdict = {name: assess_sensitivity(tr) for name, tr in traces.items()}
    assert {n for n, v in verdict.items() if v.non_sensitive} == {"2nd-M3"}
    m3 = verdict["2nd-M3"]
    assert m3.u_drift < -0.5 and m3.rate_low >= 0.9 and all(np.diff(m3.u_period_means) <= 1e-9)
    assert m3.no_attractor_fraction > 0.95  # eps < 0: V has no fixed point whatever the input
    fs = verdict["2nd-FS"]
    assert -0.05 < fs.u_drift < 0 and fs.rate_low < 0.8  # FS's U barely moves and it follows the input


def test_sensitivity_needs_a_varying_drive_of_two_periods():
    with pytest.raises(ValueError, match="constant"):
        assess_sensitivity(simulate({"fs": FS}, torch.zeros(60))["fs"])
    with pytest.raises(ValueError, match="2 whole"):
        assess_sensitivity(simulate({"fs": FS}, sine_drive(steps=30))["fs"])


def test_van_rossum_distance_closed_form():
    # single spikes k steps apart: d^2 = 1 - exp(-k / tau) (long window), identical -> 0, silent pair -> 0
    tau = 5.0
    trains = []
    for k in (0, 1, 5, 20):
        s = torch.zeros(300)
        s[10 + k] = 1.0
        trains.append(s)
    d = van_rossum_distances(trains + [torch.zeros(300), torch.zeros(300)], tau=tau)
    for j, k in enumerate((1, 5, 20), start=1):
        assert d[0, j] == pytest.approx(math.sqrt(1 - math.exp(-k / tau)), rel=1e-9)
    assert d[4, 5] == 0.0 and d[0, 4] == pytest.approx(1.0)
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)


def test_filter_keeps_fs_rs_sds_wds_and_groups_near_fs_with_fs():
    report = filter_candidates({**META_NEURON_PRESETS, "near-FS": NEAR_FS})
    assert report.kept == KEPT
    assert report.dropped["2nd-M3"].startswith("non-sensitive")
    assert report.dropped["near-FS"].startswith("alike 2nd-FS")
    assert report.group_of("near-FS").members == ("2nd-FS", "near-FS")
    # calibration of the 0.5 threshold (module docstring)
    assert report.distance("2nd-FS", "near-FS") < 0.1
    assert report.distance("2nd-FS", "2nd-RS") > 0.5 and report.distance("2nd-SDS", "2nd-WDS") > 0.5
    summary = json.loads(json.dumps(report.summary()))
    assert summary["kept"] == KEPT
    assert summary["candidates"]["2nd-M3"]["diagnostics"]["non_sensitive"] is True
    assert summary["candidates"]["2nd-M3"]["group"] is None
    assert len(summary["distances"]["matrix"]) == 6


def test_tidigits_candidates_form_two_groups_like_the_paper():
    # the paper keeps 2 of its 6 temporal candidates (SDS = T1, WDS = T3)
    report = filter_candidates(TIDIGITS, weights={"T1": 3.0, "T3": 3.0})
    assert [g.members for g in report.groups] == [("T1", "T2"), ("T3", "T4", "T5", "T6")]
    assert report.kept == ["T1", "T3"]
    with pytest.raises(ValueError, match="unknown"):
        filter_candidates(TIDIGITS, weights={"T9": 1.0})


def test_group_representative_is_the_weighted_medoid():
    names = ["a", "b", "c", "far"]
    d = np.array([[0, 0.1, 0.3, 0.9], [0.1, 0, 0.2, 0.9], [0.3, 0.2, 0, 0.9], [0.9, 0.9, 0.9, 0]])
    groups = group_candidates(names, d, threshold=0.5)
    assert [(g.members, g.representative) for g in groups] == [(("a", "b", "c"), "b"), (("far",), "far")]
    assert groups[0].diameter == pytest.approx(0.3)
    heavy_c = group_candidates(names, d, threshold=0.5, weights={"c": 10.0})
    assert heavy_c[0].representative == "c"


def test_fixed_points_closed_form_and_simulation():
    current = 0.3
    b = FS[1]
    root = math.sqrt((1 + b) ** 2 - 4 * current)
    low, high = fixed_points(FS, current)
    assert low.v == pytest.approx((1 + b - root) / 2) and high.v == pytest.approx((1 + b + root) / 2)
    for fp in (low, high):
        assert fp.u == pytest.approx(b * fp.v)
        assert fp.v**2 - fp.v + current == pytest.approx(fp.u)  # on the V-nullcline
    assert low.attractor and low.stable_ode and not high.stable_map and not high.below_threshold
    # the simulated neuron at constant I = 0.3 settles on the closed-form attractor without spiking
    tr = simulate({"fs": FS}, torch.full((400,), math.log(current / (1 - current))))["fs"]
    assert tr.spike_count == 0
    assert float(tr.v[-1]) == pytest.approx(low.v, abs=1e-6) and float(tr.u[-1]) == pytest.approx(low.u, abs=1e-6)
    # above I = (1 + theta_b)^2 / 4 the nullclines do not cross: tonic firing
    assert phase_plane(FS, 0.5).tonic and not phase_plane(FS, 0.3).tonic
    # theta_a < 0 (SDS): U is repelled from theta_b V, so no fixed point attracts
    assert not any(fp.stable_map or fp.stable_ode for fp in fixed_points(SDS, current))
    with pytest.raises(ValueError, match="theta_a = 0"):
        fixed_points((0.0, 0.2, 0.0, 0.0), current)


def test_nullclines_and_v_fixed_points():
    plane = phase_plane(WDS, 0.4, v=np.array([-0.5, 0.0, 0.5, 1.0]))
    assert np.allclose(plane.u_v_nullcline, [1.15, 0.4, 0.15, 0.4])  # V^2 - V + I
    assert np.allclose(plane.u_u_nullcline, [-0.079, 0.0, 0.079, 0.158])  # theta_b V
    lo, hi = v_fixed_points(u=0.1, current=0.3)  # eps = 0.05
    assert (lo, hi) == (pytest.approx(0.5 - math.sqrt(0.05)), pytest.approx(0.5 + math.sqrt(0.05)))
    assert v_fixed_points(u=0.1, current=0.5) is None  # eps = -0.15
    # per-step attractor of a trace: at z = 0 step 1 has eps = 0.08 - 0.5 + 0.25 < 0; at z = -4 it exists
    assert torch.isnan(simulate({"fs": FS}, torch.zeros(2))["fs"].attractor()[0])
    eps = 0.08 - 1 / (1 + math.exp(4.0)) + 0.25
    assert float(simulate({"fs": FS}, torch.full((2,), -4.0))["fs"].attractor()[0]) == pytest.approx(0.5 - math.sqrt(eps))


def test_plot_dynamics_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    from spikedyn.plots.dynamics import plot_dynamics

    traces = simulate({"2nd-FS": FS, "2nd-M3": M3}, sine_drive(steps=60))
    out = plot_dynamics(traces, tmp_path / "dyn.png", title="test")
    assert out == tmp_path / "dyn.png" and out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no traces"):
        plot_dynamics({}, tmp_path / "none.png")
