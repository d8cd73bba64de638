"""MDN phase 2, last step: filter candidate meta neurons by their membrane dynamics.

The paper (section 4.4, Fig. 4) drives every candidate theta with the same sine, discards the
candidate whose U keeps decreasing while V reaches the threshold regardless of the input (M3),
and keeps one candidate per group of alike dynamics.  This module makes both decisions
automatic and reproducible:

1. :func:`sine_drive` -- the reference drive (spec mdn.md section 4.2 step 6): a sine of mean 0
   and standard deviation 0.723 (amplitude ``0.723 * sqrt(2) = 1.0225``), period 20 steps,
   used as the pre-sigmoid activation ``z_t`` so that ``I_t = sigmoid(z_t)``.
2. :func:`simulate` -- runs each theta through the library's reference step and keeps V, U, S
   and I per step (float64).
3. :func:`assess_sensitivity` -- the non-sensitivity criterion (below).
4. :func:`van_rossum_distances` + :func:`group_candidates` -- grouping of alike dynamics.
5. :func:`filter_candidates` -- both combined, with a JSON-able :meth:`FilterReport.summary`.

**Non-sensitive** (the paper's M3).  Over the drive, split the window into whole periods.

* (a) *U keeps decreasing*: the per-period mean of U never rises by more than ``0.01`` from
  one period to the next, and falls by at least ``u_drop = 0.1`` from the first period to the
  last.  U enters V's update as a negative input current (``eps = U - I + 1/4``), so a drop of
  0.1 acts like raising the input by 0.1, a fifth of the default drive's current swing (0.47).
* (b) *fires regardless of input*: after the first period (transient), the neuron spikes in at
  least ``rate_low = 80 %`` of the steps whose drive lies in its lowest quarter.

A candidate is non-sensitive when (a) and (b) hold.  Calibration on the paper's presets with the
default drive and with its mean shifted to -1, -0.5, 0.5, 1 (same verdicts at every mean):
2nd-M3 drifts by -0.54 to -0.70 and fires in 100 % of the lowest-drive steps; 2nd-FS drifts by
-0.01 to -0.02 (and fires in 0 % of those steps for means <= 0, 36 % / 60 % at 0.5 / 1);
2nd-RS, 2nd-SDS and 2nd-WDS drift upwards and fire in at most 9 % of them.  A candidate that
never spikes is reported as *silent* and dropped too (it transmits nothing).

**Distance** between two candidates: the van Rossum distance of their spike trains with
``tau = 5`` steps (a quarter of the drive period), normalised to [0, 1]::

    f_t = sum_{k <= t} S_k exp(-(t - k) / tau)          (same for g)
    d   = sqrt( sum_t (f_t - g_t)^2 / (sum_t f_t^2 + sum_t g_t^2) )

A spike train is all a neuron passes downstream, so two candidates whose trains match under the
same drive are interchangeable for the network; the filtered trains compare both the rates and
the phase at which spikes fall (spikes a quarter period apart overlap by ``e^-1``, half a period
apart by ``e^-2``).  ``d = 0`` for identical trains, ``d = 1`` for trains with no overlap, and
``d = 0`` for two silent neurons.

**Groups**: average-linkage hierarchical clustering of the distances cut at ``threshold = 0.5``
(groups further apart than 0.5 on average stay apart).  Calibration with the default drive: a
theta within 0.005 of 2nd-FS in every component gives d = 0.00 to 2nd-FS; the paper's six
TIDigits candidates (spec section 2.3) merge into two groups at heights <= 0.43, which join
only at 0.78; the closest pair of the four kept presets is 2nd-FS / 2nd-RS at 0.57
(2nd-SDS / 2nd-WDS: 0.72).  0.5 is the midpoint of 0.43 and 0.57.  The distances depend on
the drive: at mean -1 both FS and RS fire sparsely and their distance falls to 0.32.  The
representative of a group is its (weighted) medoid: the member minimising ``sum_j w_j d_ij``
over the group.

Under the default 200-step drive 2nd-SDS (theta_a < 0, so U has no attractor and grows
without bound) falls silent after its first periods, and once U exceeds ``I + 3/4`` V's
attractor loses stability in the unit-step map (:mod:`.attractors`): from about step 175 it
fires every other step whatever the input.  The flag does not catch this (its U rises).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from ..neurons.second_order import SecondOrder

#: amplitude of a sine with standard deviation 0.723 (spec mdn.md section 4.2, step 6).
SINE_AMPLITUDE = 1.0225
#: drive period in steps ([A] in the spec: the paper gives none).
SINE_PERIOD = 20
#: defaults of the non-sensitivity criterion and of the grouping (module docstring).
U_DROP = 0.1
U_RISE_TOL = 0.01
RATE_LOW_MIN = 0.8
VR_TAU = 5.0
GROUP_THRESHOLD = 0.5

Theta = tuple[float, float, float, float]


def sine_drive(
    steps: int = 200,
    period: float = float(SINE_PERIOD),
    amplitude: float = SINE_AMPLITUDE,
    mean: float = 0.0,
) -> Tensor:
    """Reference drive ``z_t = mean + amplitude * sin(2 pi t / period)``, t = 0..steps-1 (float64)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not period > 0:
        raise ValueError(f"period must be > 0 steps, got {period}")
    t = torch.arange(steps, dtype=torch.float64)
    return mean + amplitude * torch.sin(2.0 * math.pi * t / period)


@dataclass(frozen=True, eq=False)
class DynamicsTrace:
    """One neuron's run over a drive; every tensor is ``[T]`` float64, index t-1 holds step t.

    ``z`` is the drive (pre-activation), ``current`` ``I_t = sigmoid(z_t)``, ``v``/``u`` the state
    after step t and ``s`` the spike emitted at step t.  ``u0`` is the initial U.
    """

    name: str
    theta: Theta
    z: Tensor
    current: Tensor
    v: Tensor
    u: Tensor
    s: Tensor
    u0: float = 0.08
    v_th: float = 0.5

    @property
    def steps(self) -> int:
        return int(self.z.shape[0])

    @property
    def spike_count(self) -> int:
        return int(self.s.sum().item())

    @property
    def finite(self) -> bool:
        return bool(torch.isfinite(self.v).all() and torch.isfinite(self.u).all())

    def u_entering(self) -> Tensor:
        """``U'_t``, the U used by V's update at step t (previous U plus ``theta_d`` after a spike)."""
        d = self.theta[3]
        u_prev = torch.cat([self.u.new_tensor([self.u0]), self.u[:-1]])
        s_prev = torch.cat([self.s.new_zeros(1), self.s[:-1]])
        return u_prev + d * s_prev

    def epsilon(self) -> Tensor:
        """``eps_t = U'_t - I_t + 1/4``: V has a real fixed point at step t iff eps_t >= 0."""
        return self.u_entering() - self.current + 0.25

    def attractor(self) -> Tensor:
        """V's attractor ``1/2 - sqrt(eps_t)`` at each step (NaN where eps_t < 0: none, V runs away)."""
        eps = self.epsilon()
        return torch.where(eps >= 0, 0.5 - torch.sqrt(eps.clamp(min=0.0)), torch.full_like(eps, float("nan")))


def check_thetas(thetas: Mapping[str, Sequence[float]]) -> dict[str, Theta]:
    """Validate named thetas (4 finite numbers each) and return them as float tuples."""
    if not thetas:
        raise ValueError("no candidates: pass at least one name -> (theta_a, theta_b, theta_c, theta_d)")
    out: dict[str, Theta] = {}
    for name, theta in thetas.items():
        try:
            values = tuple(float(x) for x in theta)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"candidate {name!r}: theta must be 4 numbers, got {theta!r}") from exc
        if len(values) != 4 or not all(math.isfinite(x) for x in values):
            raise ValueError(f"candidate {name!r}: theta must be 4 finite numbers (a, b, c, d), got {theta!r}")
        out[str(name)] = values  # type: ignore[assignment]
    return out


def simulate(thetas: Mapping[str, Sequence[float]], drive: Tensor) -> dict[str, DynamicsTrace]:
    """Run each named theta on ``drive`` (``[T]`` pre-activations z_t) with the reference step.

    Uses :class:`~spikedyn.neurons.SecondOrder` (frozen theta, per-step path, float64) from the
    initial state ``V_0 = 0, U_0 = 0.08, S_0 = 0``.
    """
    checked = check_thetas(thetas)
    z = torch.as_tensor(drive, dtype=torch.float64).detach().cpu()
    if z.dim() != 1 or z.shape[0] < 1:
        raise ValueError(f"drive must be a 1-D sequence [T] of pre-activations, got shape {tuple(z.shape)}")
    if not torch.isfinite(z).all():
        raise ValueError("drive contains non-finite values")
    traces: dict[str, DynamicsTrace] = {}
    for name, theta in checked.items():
        layer = SecondOrder(1, theta=theta, learnable=False, fast=False).double()
        with torch.no_grad():
            run = layer.run(z[:, None, None], record=True)
        traces[name] = DynamicsTrace(
            name=name,
            theta=theta,
            z=z,
            current=torch.sigmoid(z),
            v=run.traces["v"][:, 0, 0],
            u=run.traces["u"][:, 0, 0],
            s=run.spikes[:, 0, 0],
            u0=layer.u0,
            v_th=layer.v_th,
        )
    return traces


# -- non-sensitivity ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sensitivity:
    """The numbers the non-sensitivity decision used (see the module docstring)."""

    spike_count: int
    u_period_means: tuple[float, ...]
    u_drift: float  # last period's mean U - first period's
    u_max_rise: float  # largest rise of the per-period mean U between consecutive periods
    rate_low: float  # spike rate in the lowest-drive quarter of the steps after the first period
    rate_high: float  # ... and in the highest-drive quarter
    no_attractor_fraction: float  # share of steps with eps_t < 0 (V has no fixed point)
    u_drop: float
    u_rise_tol: float
    rate_low_min: float

    @property
    def u_decreasing(self) -> bool:
        return self.u_drift <= -self.u_drop and self.u_max_rise <= self.u_rise_tol

    @property
    def fires_regardless(self) -> bool:
        return self.rate_low >= self.rate_low_min

    @property
    def non_sensitive(self) -> bool:
        """The paper's M3 signature: U keeps decreasing and V reaches threshold whatever the input."""
        return self.u_decreasing and self.fires_regardless

    @property
    def silent(self) -> bool:
        return self.spike_count == 0

    def reason(self) -> str | None:
        """Why the candidate is dropped on its own dynamics, or None when it is kept."""
        if self.non_sensitive:
            return (
                f"non-sensitive: U keeps decreasing (drift {self.u_drift:+.3f} <= -{self.u_drop:g}, "
                f"largest per-period rise {self.u_max_rise:+.4f}) and it fires in "
                f"{100 * self.rate_low:.0f}% of the lowest-drive steps (>= {100 * self.rate_low_min:.0f}%)"
            )
        if self.silent:
            return "silent: no spike under the drive"
        return None

    def summary(self) -> dict[str, Any]:
        return {
            "spike_count": self.spike_count,
            "u_drift": self.u_drift,
            "u_max_rise": self.u_max_rise,
            "rate_low": self.rate_low,
            "rate_high": self.rate_high,
            "no_attractor_fraction": self.no_attractor_fraction,
            "u_decreasing": self.u_decreasing,
            "fires_regardless": self.fires_regardless,
            "non_sensitive": self.non_sensitive,
            "silent": self.silent,
        }


def assess_sensitivity(
    trace: DynamicsTrace,
    period: int = SINE_PERIOD,
    u_drop: float = U_DROP,
    u_rise_tol: float = U_RISE_TOL,
    rate_low_min: float = RATE_LOW_MIN,
) -> Sensitivity:
    """Diagnostics and verdict of the non-sensitivity criterion for one trace.

    Needs a varying drive of at least two whole periods of ``period`` steps.
    """
    period = int(period)
    if period < 1:
        raise ValueError(f"period must be a positive number of steps, got {period}")
    n_periods = trace.steps // period
    if n_periods < 2:
        raise ValueError(f"need at least 2 whole drive periods ({2 * period} steps), got {trace.steps} steps")
    z = trace.z[period:]
    if float(z.max() - z.min()) <= 0.0:
        raise ValueError("the drive is constant: sensitivity to the input cannot be judged")
    u_means = trace.u[: n_periods * period].reshape(n_periods, period).mean(dim=1)
    rises = u_means[1:] - u_means[:-1]
    s = trace.s[period:]
    low = z <= torch.quantile(z, 0.25)
    high = z >= torch.quantile(z, 0.75)
    return Sensitivity(
        spike_count=trace.spike_count,
        u_period_means=tuple(float(x) for x in u_means),
        u_drift=float(u_means[-1] - u_means[0]),
        u_max_rise=float(rises.max()),
        rate_low=float(s[low].mean()),
        rate_high=float(s[high].mean()),
        no_attractor_fraction=float((trace.epsilon() < 0).double().mean()),
        u_drop=u_drop,
        u_rise_tol=u_rise_tol,
        rate_low_min=rate_low_min,
    )


# -- distances and groups -----------------------------------------------------------------


def filtered_train(spikes: Tensor, tau: float = VR_TAU) -> np.ndarray:
    """``f_t = sum_{k<=t} S_k exp(-(t-k)/tau)`` (the van Rossum kernel, causal exponential)."""
    if not tau > 0:
        raise ValueError(f"tau must be > 0 steps, got {tau}")
    s = np.asarray(torch.as_tensor(spikes, dtype=torch.float64).cpu(), dtype=float)
    decay = math.exp(-1.0 / tau)
    out = np.empty_like(s)
    acc = 0.0
    for t, x in enumerate(s):
        acc = acc * decay + x
        out[t] = acc
    return out


def van_rossum_distances(trains: Sequence[Tensor], tau: float = VR_TAU) -> np.ndarray:
    """Normalised van Rossum distances (module docstring) between equally long spike trains."""
    filtered = [filtered_train(s, tau) for s in trains]
    if len({f.shape for f in filtered}) > 1:
        raise ValueError("spike trains must all have the same length")
    n = len(filtered)
    energy = np.array([float(f @ f) for f in filtered])
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            den = energy[i] + energy[j]
            if den > 0:
                diff = filtered[i] - filtered[j]
                dist[i, j] = dist[j, i] = math.sqrt(float(diff @ diff) / den)
    return dist


@dataclass(frozen=True)
class Group:
    """Candidates with alike dynamics; ``representative`` is the weighted medoid."""

    members: tuple[str, ...]
    representative: str
    diameter: float  # largest pairwise distance inside the group


def group_candidates(
    names: Sequence[str],
    distances: np.ndarray,
    threshold: float = GROUP_THRESHOLD,
    weights: Mapping[str, float] | None = None,
) -> list[Group]:
    """Average-linkage clusters of ``distances`` cut at ``threshold``, in order of first member.

    ``weights`` (e.g. the number of learned thetas behind each candidate; default 1) weigh the
    medoid: the representative minimises ``sum_j w_j d_ij`` over its group, ties going to the
    heavier, then the earlier candidate.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    names = list(names)
    dist = np.asarray(distances, dtype=float)
    if dist.shape != (len(names), len(names)):
        raise ValueError(f"distances must be {len(names)} x {len(names)}, got {dist.shape}")
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    w = _weights(names, weights)
    if len(names) == 0:
        return []
    if len(names) == 1:
        labels = np.array([1])
    else:
        tree = linkage(squareform(dist, checks=False), method="average")
        labels = fcluster(tree, t=threshold, criterion="distance")
    groups: list[Group] = []
    for label in dict.fromkeys(labels.tolist()):  # order of first appearance
        idx = [i for i, lab in enumerate(labels) if lab == label]
        sub = dist[np.ix_(idx, idx)]
        cost = sub @ w[idx]
        best = min(range(len(idx)), key=lambda k: (round(cost[k], 12), -w[idx[k]], k))
        groups.append(
            Group(
                members=tuple(names[i] for i in idx),
                representative=names[idx[best]],
                diameter=float(sub.max()),
            )
        )
    return groups


def _weights(names: Sequence[str], weights: Mapping[str, float] | None) -> np.ndarray:
    if weights is None:
        return np.ones(len(names))
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(f"weights given for unknown candidates {unknown}")
    w = np.array([float(weights.get(n, 1.0)) for n in names])
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and >= 0")
    return w


# -- the filter ---------------------------------------------------------------------------


@dataclass
class FilterReport:
    """Result of :func:`filter_candidates`; ``distances`` is over ``names`` (all candidates)."""

    names: list[str]
    traces: dict[str, DynamicsTrace]
    sensitivity: dict[str, Sensitivity]
    distances: np.ndarray
    groups: list[Group]
    kept: list[str]
    dropped: dict[str, str]
    settings: dict[str, Any] = field(default_factory=dict)

    def distance(self, a: str, b: str) -> float:
        return float(self.distances[self.names.index(a), self.names.index(b)])

    def group_of(self, name: str) -> Group | None:
        return next((g for g in self.groups if name in g.members), None)

    def summary(self) -> dict[str, Any]:
        """JSON-able account: per candidate theta, diagnostics, group and verdict with its reason."""
        candidates = {}
        for name in self.names:
            trace = self.traces[name]
            group = self.group_of(name)
            candidates[name] = {
                "theta": list(trace.theta),
                "spike_count": trace.spike_count,
                "diagnostics": self.sensitivity[name].summary() if name in self.sensitivity else None,
                "group": None if group is None else self.groups.index(group),
                "kept": name in self.kept,
                "reason": self.dropped.get(name, "kept: representative of its group"),
            }
        return {
            "settings": dict(self.settings),
            "candidates": candidates,
            "groups": [
                {"members": list(g.members), "representative": g.representative, "diameter": g.diameter}
                for g in self.groups
            ],
            "kept": list(self.kept),
            "dropped": dict(self.dropped),
            "distances": {
                "names": list(self.names),
                "matrix": [[None if math.isnan(x) else round(float(x), 6) for x in row] for row in self.distances],
            },
        }


def filter_candidates(
    thetas: Mapping[str, Sequence[float]],
    drive: Tensor | None = None,
    weights: Mapping[str, float] | None = None,
    period: int = SINE_PERIOD,
    threshold: float = GROUP_THRESHOLD,
    tau: float = VR_TAU,
) -> FilterReport:
    """Drop non-sensitive (M3-like), silent and diverging candidates, then keep one per group.

    ``drive`` defaults to :func:`sine_drive` (200 steps); ``period`` must be the drive's period in
    steps.  Candidates are grouped only among those that passed the sensitivity check;
    ``weights`` (default 1 each) weigh the choice of each group's representative.
    """
    names = list(check_thetas(thetas))
    _weights(names, weights)  # fail early on unknown names or bad values
    z = sine_drive() if drive is None else torch.as_tensor(drive, dtype=torch.float64)
    traces = simulate(thetas, z)
    dropped: dict[str, str] = {}
    sensitivity: dict[str, Sensitivity] = {}
    for name, trace in traces.items():
        if not trace.finite:
            dropped[name] = "diverged: non-finite membrane state"
            continue
        sensitivity[name] = assess_sensitivity(trace, period=period)
        reason = sensitivity[name].reason()
        if reason is not None:
            dropped[name] = reason
    finite = [n for n in names if traces[n].finite]
    pos = [names.index(n) for n in finite]
    dist = np.full((len(names), len(names)), np.nan)
    dist[np.ix_(pos, pos)] = van_rossum_distances([traces[n].s for n in finite], tau=tau)
    candidates = [n for n in names if n not in dropped]
    idx = [names.index(n) for n in candidates]
    groups = group_candidates(
        candidates,
        dist[np.ix_(idx, idx)],
        threshold=threshold,
        weights=None if weights is None else {k: v for k, v in weights.items() if k in candidates},
    )
    for g in groups:
        for member in g.members:
            if member != g.representative:
                d = float(dist[names.index(member), names.index(g.representative)])
                dropped[member] = (
                    f"alike {g.representative}: same group (average-linkage van Rossum distance "
                    f"< {threshold:g}; distance to {g.representative} {d:.2f})"
                )
    settings = {
        "steps": int(z.shape[0]),
        "period": period,
        "drive_mean": float(z.mean()),
        "drive_std": float(z.std(unbiased=False)),
        "tau": tau,
        "threshold": threshold,
        "linkage": "average",
        "criterion": {"u_drop": U_DROP, "u_rise_tol": U_RISE_TOL, "rate_low_min": RATE_LOW_MIN},
    }
    return FilterReport(
        names=names,
        traces=traces,
        sensitivity=sensitivity,
        distances=dist,
        groups=groups,
        kept=[g.representative for g in groups],
        dropped={n: dropped[n] for n in names if n in dropped},
        settings=settings,
    )
