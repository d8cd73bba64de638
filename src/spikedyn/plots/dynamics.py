"""Membrane dynamics of candidate meta neurons, laid out like MDN's Fig. 4.

One row per neuron, four panels:

1. V over time with the threshold (0.5), the spikes, and V's attractor ``1/2 - sqrt(eps_t)``
   (``eps_t = U'_t - I_t + 1/4``; where none exists a mark above the threshold stands for it,
   as in the paper);
2. the drive: pre-activation z_t and input current I_t = sigmoid(z_t);
3. U over time;
4. the (V, U) phase portrait: trajectory coloured by time, V-nullcline ``U = V^2 - V + I`` at
   the mean input (solid) and at the lowest / highest input (dashed), U-nullcline
   ``U = theta_b V``, and the fixed points (filled: attractor, open: unstable or above threshold).

Neurons flagged non-sensitive (:func:`spikedyn.meta.dynamics.assess_sensitivity`) say so in
their row title.  Values beyond a panel's range are drawn on its edge as triangles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..meta.attractors import phase_plane
from ..meta.dynamics import SINE_PERIOD, DynamicsTrace, Sensitivity, assess_sensitivity
from ._mpl import pyplot

V_LIMITS = (-1.5, 2.0)  # widest V range drawn before values are pinned to the edge
U_PAD = 0.1


def plot_dynamics(
    traces: Mapping[str, DynamicsTrace],
    path: str | Path,
    title: str | None = None,
    sensitivity: Mapping[str, Sensitivity] | None = None,
    period: int = SINE_PERIOD,
) -> Path:
    """Draw every trace of :func:`spikedyn.meta.dynamics.simulate` as one row; returns ``path``.

    ``sensitivity`` gives each neuron's verdict; by default it is computed with
    :func:`assess_sensitivity` (drive period ``period``) whenever the drive varies and covers two
    periods.
    """
    if not traces:
        raise ValueError("no traces to plot")
    plt = pyplot()
    n = len(traces)
    fig, axes = plt.subplots(
        n, 4, figsize=(18, 2.9 * n + 1.3), squeeze=False, gridspec_kw={"width_ratios": [3.6, 1.7, 2.2, 2.4]}
    )
    for row, (name, trace) in zip(axes, traces.items()):
        verdict = _verdict(trace, sensitivity, name, period)
        _plot_v(row[0], trace)
        _plot_drive(row[1], trace)
        _plot_u(row[2], trace)
        _plot_phase(row[3], trace)
        a, b, c, d = trace.theta
        head = f"{name}   theta=({a:g}, {b:g}, {c:g}, {d:g})   {trace.spike_count} spikes / {trace.steps} steps"
        if verdict is not None and verdict.non_sensitive:
            row[0].set_title(head + "   NON-SENSITIVE", loc="left", fontsize=10, color="crimson", fontweight="bold")
        else:
            row[0].set_title(head, loc="left", fontsize=10)
    for ax in axes[-1, :3]:
        ax.set_xlabel("time step")
    axes[-1, 3].set_xlabel("V")
    height = fig.get_figheight()
    for ax, ncol in zip(axes[-1], (3, 1, 1, 1)):  # one legend per column, below the last row
        legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), fontsize=8, ncol=ncol, frameon=False)
        legend.set_in_layout(False)
    top = 1.0
    if title:
        top = 1.0 - 0.45 / height  # keep the first row's title clear of the figure title
        fig.suptitle(title, fontsize=13, y=1.0 - 0.08 / height, va="top")
    fig.tight_layout(rect=(0.0, 1.1 / height, 1.0, top), w_pad=0.8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _verdict(
    trace: DynamicsTrace, given: Mapping[str, Sensitivity] | None, name: str, period: int
) -> Sensitivity | None:
    if given is not None:
        return given.get(name)
    z = trace.z[period:]
    if trace.steps < 2 * period or z.numel() == 0 or float(z.max() - z.min()) <= 0 or not trace.finite:
        return None
    return assess_sensitivity(trace, period=period)


def _pinned(ax, t: np.ndarray, y: np.ndarray, lo: float, hi: float, color: str) -> None:
    """Mark values outside [lo, hi] with triangles on the edge."""
    over, under = y > hi, y < lo
    if over.any():
        ax.plot(t[over], np.full(over.sum(), hi), "^", color=color, ms=4, clip_on=False)
    if under.any():
        ax.plot(t[under], np.full(under.sum(), lo), "v", color=color, ms=4, clip_on=False)


def _v_range(v: np.ndarray) -> tuple[float, float]:
    finite = v[np.isfinite(v)]
    lo = max(min(float(finite.min()) if finite.size else 0.0, -0.5) - 0.1, V_LIMITS[0])
    hi = min(max(float(finite.max()) if finite.size else 1.0, 1.0) + 0.1, V_LIMITS[1])
    return lo, hi


def _plot_v(ax, trace: DynamicsTrace) -> None:
    t = np.arange(1, trace.steps + 1)
    v = trace.v.numpy()
    lo, hi = _v_range(v)
    ax.plot(t, np.clip(v, lo, hi), color="tab:red", lw=1.2, label="V")
    _pinned(ax, t, v, lo, hi, "tab:red")
    ax.axhline(trace.v_th, color="k", ls="--", lw=0.9, label="threshold 0.5")
    att = trace.attractor().numpy()
    ax.plot(t, np.clip(att, lo, hi), color="goldenrod", lw=1.4, label="V attractor 1/2-sqrt(eps)")
    missing = np.isnan(att)
    if missing.any():
        level = min(hi - 0.05, trace.v_th + 0.35)
        ax.plot(t[missing], np.full(missing.sum(), level), "_", color="goldenrod", ms=5, mew=2)
    ax.plot([], [], "_", color="goldenrod", ms=8, mew=2, label="no attractor (eps < 0)")
    spikes = t[trace.s.numpy() > 0]
    ax.plot(spikes, np.full(spikes.size, lo + 0.04 * (hi - lo)), "|", color="k", ms=7, mew=1.2, label="spike")
    ax.set_ylim(lo, hi)
    ax.set_xlim(0, trace.steps + 1)
    ax.set_ylabel("V")


def _plot_drive(ax, trace: DynamicsTrace) -> None:
    t = np.arange(1, trace.steps + 1)
    ax.plot(t, trace.z.numpy(), color="tab:blue", lw=1.2, label="drive z")
    ax.plot(t, trace.current.numpy(), color="tab:cyan", lw=1.2, label="I = sigmoid(z)")
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlim(0, trace.steps + 1)
    ax.set_ylabel("input")


def _plot_u(ax, trace: DynamicsTrace) -> None:
    t = np.arange(1, trace.steps + 1)
    u = trace.u.numpy()
    ax.plot(t, u, color="tab:green", lw=1.2, label="U")
    ax.axhline(trace.u0, color="tab:green", ls=":", lw=0.9, label=f"U0 = {trace.u0:g}")
    ax.set_xlim(0, trace.steps + 1)
    ax.set_ylabel("U")


def _plot_phase(ax, trace: DynamicsTrace) -> None:
    v, u = trace.v.numpy(), trace.u.numpy()
    lo, hi = _v_range(v)
    shown = (v >= lo) & (v <= hi) & np.isfinite(u)
    grid = np.linspace(lo, hi, 300)
    i_now = trace.current.numpy()
    i_mean, i_min, i_max = float(i_now.mean()), float(i_now.min()), float(i_now.max())
    plane = phase_plane(trace.theta, i_mean, grid)
    ax.plot(v[shown], u[shown], color="0.75", lw=0.5, zorder=1)
    sc = ax.scatter(v[shown], u[shown], c=np.arange(trace.steps)[shown], cmap="viridis", s=6, zorder=2)
    ax.plot(grid, plane.u_v_nullcline, color="tab:red", lw=1.4, label=f"dV=0 (U = V^2 - V + I) at mean I = {i_mean:.2f}")
    if i_max > i_min:
        for i_edge in (i_min, i_max):
            ax.plot(grid, phase_plane(trace.theta, i_edge, grid).u_v_nullcline, color="tab:red", ls="--", lw=0.8)
        ax.plot([], [], color="tab:red", ls="--", lw=0.8, label=f"dV=0 at lowest / highest I ({i_min:.2f}, {i_max:.2f})")
    ax.plot(grid, plane.u_u_nullcline, color="tab:green", lw=1.4, label="dU=0 (U = theta_b V)")
    ax.axvline(trace.v_th, color="k", ls="--", lw=0.8)
    points = []
    for i_edge in (i_mean, i_min, i_max):
        points.extend(phase_plane(trace.theta, i_edge, grid).fixed_points)
    for fp in points:
        face = "gold" if fp.attractor else "white"
        ax.plot(fp.v, fp.u, "o", ms=7, mfc=face, mec="k", zorder=3)
    ax.plot([], [], "o", mfc="gold", mec="k", label="fixed point: attractor")
    ax.plot([], [], "o", mfc="white", mec="k", label="fixed point: unstable or V > 0.5")
    # keep the trajectory, the visible fixed points and the vertex of the mean-input V-nullcline in view
    u_vals = np.concatenate([u[shown], [fp.u for fp in points if lo <= fp.v <= hi], [i_mean - 0.25]])
    u_lo, u_hi = float(u_vals.min()), float(u_vals.max())
    pad = max(U_PAD, 0.1 * (u_hi - u_lo))
    ax.set_ylim(u_lo - pad, u_hi + pad)
    ax.set_xlim(lo, hi)
    ax.set_ylabel("U")
    ax.figure.colorbar(sc, ax=ax, pad=0.01, fraction=0.05).set_label("time step", fontsize=7)
