"""MDN phase 2: cluster learned 2nd-order dynamics into a finite set of meta neurons.

Spec mdn.md section 4.2.  The learned theta = (theta_a, theta_b, theta_c, theta_d) of every
neuron of every layer (hidden and output, and every batch slot when theta is kept per slot) is
one point.  Two 2-D clouds are clustered separately, ``(theta_a, theta_b)`` and
``(theta_c, theta_d)``:

1. bandwidth h = ``sklearn.cluster.estimate_bandwidth(X, quantile=q)``, the mean over points of
   the distance to their ``floor(q P)``-th nearest neighbour (the point itself counted);
2. ``MeanShift(bandwidth=h, bin_seeding=True)`` -> M = number of distinct modes;
3. ``KMeans(n_clusters=M)`` -> M centres (sorted by cluster size, largest first).

The candidate meta neurons are the Cartesian product of the (a, b) centres and the (c, d)
centres, named ``C1, C2, ...`` (``C1`` = largest (a, b) cluster x largest (c, d) cluster).
``theta_history.pt`` (written by ``spikedyn train --neuron mdn``) supplies the thetas.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from ..runfiles import write_text_atomic
from .presets import THETA_KEYS, Theta, nearest_paper_preset, paper_presets, save_presets

HISTORY_FILE = "theta_history.pt"
CLOUD_AXES = {"ab": ("theta_a", "theta_b"), "cd": ("theta_c", "theta_d")}


# -- theta history -------------------------------------------------------------------------


@dataclass
class ThetaHistory:
    """theta of each MDN layer after each epoch of a phase-1 run.

    ``theta[layer]`` is ``[E, 4, ...]`` where index ``e`` of the first axis is theta after epoch
    ``epochs[e]`` (0 = initial values) and the trailing axes are the layer's neurons (``[N]``,
    or ``[S, N]`` with one copy per batch slot).
    """

    epochs: list[int]
    theta: dict[str, Tensor]
    neuron: str | None = None
    dataset: str | None = None
    path: Path | None = None

    @property
    def layers(self) -> list[str]:
        return list(self.theta)

    def resolve_epoch(self, epoch: int | None = None) -> int:
        """``epoch`` if recorded (``None`` = the last recorded epoch), else a ``ValueError``."""
        if epoch is None:
            return self.epochs[-1]
        if epoch not in self.epochs:
            where = f" in {self.path}" if self.path else ""
            raise ValueError(f"no theta recorded for epoch {epoch}{where}; available epochs: {_ranges(self.epochs)}")
        return int(epoch)

    def at(self, epoch: int | None = None) -> dict[str, Tensor]:
        """theta of each layer after ``epoch`` (``None`` = the last): layer -> ``[4, ...]``."""
        index = self.epochs.index(self.resolve_epoch(epoch))
        return {name: t[index] for name, t in self.theta.items()}


def load_theta_history(run_dir: str | Path) -> ThetaHistory:
    """Read ``RUN/theta_history.pt`` (``run_dir`` may also be the file itself)."""
    run_dir = Path(run_dir)
    path = run_dir if run_dir.is_file() else run_dir / HISTORY_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no {HISTORY_FILE} in {run_dir}: it is written by `spikedyn train --neuron mdn` "
            "(phase 1, learnable theta); pass that run's directory"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt / foreign files
        raise ValueError(f"{path} is not a readable theta history ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or "epochs" not in data or "theta" not in data:
        raise ValueError(f"{path} is not a theta history: expected a dict with keys 'epochs' and 'theta'")
    epochs = [int(e) for e in data["epochs"]]
    if not epochs or len(set(epochs)) != len(epochs):
        raise ValueError(f"{path}: 'epochs' must be a non-empty list of distinct epoch numbers, got {epochs}")
    layers = data["theta"]
    if not isinstance(layers, dict) or not layers:
        raise ValueError(f"{path}: 'theta' must map layer names to tensors [E, 4, ...]")
    theta: dict[str, Tensor] = {}
    for name, t in layers.items():
        if not isinstance(t, Tensor) or t.dim() < 2 or t.shape[0] != len(epochs) or t.shape[1] != 4:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{path}: theta of layer {name!r} must be [E={len(epochs)}, 4, ...], got {shape}")
        theta[str(name)] = t.detach().to(torch.float64)
    return ThetaHistory(epochs, theta, neuron=data.get("neuron"), dataset=data.get("dataset"), path=path)


def _ranges(values: list[int]) -> str:
    return ", ".join(map(str, values)) if len(values) <= 12 else f"{', '.join(map(str, values[:5]))}, ..., {values[-1]}"


# -- clustering ------------------------------------------------------------------------------


@dataclass
class CloudClusters:
    """Clusters of one 2-D cloud, ``"ab"`` = (theta_a, theta_b) or ``"cd"`` = (theta_c, theta_d).

    ``labels[i]`` indexes ``centres`` (sorted by ``sizes``, largest first).  ``m_mean_shift`` is
    the mode count of mean shift (``None`` when it could not run), ``m`` the cluster count used
    (``method``: ``"mean-shift"``, ``"override"`` or ``"degenerate"``).
    """

    name: str
    points: np.ndarray
    labels: np.ndarray
    centres: np.ndarray
    sizes: list[int]
    bandwidth: float
    m_mean_shift: int | None
    method: str
    note: str = ""

    @property
    def axes(self) -> tuple[str, str]:
        return CLOUD_AXES[self.name]

    @property
    def m(self) -> int:
        return len(self.centres)

    def summary(self) -> dict[str, Any]:
        return {
            "axes": list(self.axes),
            "points": int(len(self.points)),
            "bandwidth": float(self.bandwidth),
            "m_mean_shift": self.m_mean_shift,
            "m": self.m,
            "method": self.method,
            "note": self.note,
            "centres": [[float(x) for x in c] for c in self.centres],
            "sizes": list(self.sizes),
        }


@dataclass
class Candidate:
    """One candidate meta neuron: (a, b) cluster ``ab_cluster`` x (c, d) cluster ``cd_cluster``.

    Cluster numbers are 1-based ranks by size (1 = largest), as drawn in the plot.

    ``ab_size`` / ``cd_size`` count the points of each cluster, ``joint_size`` the points in
    both; ``nearest_paper`` / ``distance`` come from :func:`nearest_paper_preset`.
    """

    name: str
    theta: Theta
    ab_cluster: int
    cd_cluster: int
    ab_size: int
    cd_size: int
    joint_size: int
    nearest_paper: str
    distance: float

    def info(self) -> dict[str, Any]:
        """The non-theta fields (the extra keys of its presets-file entry)."""
        return {
            "ab_cluster": self.ab_cluster,
            "cd_cluster": self.cd_cluster,
            "ab_size": self.ab_size,
            "cd_size": self.cd_size,
            "joint_size": self.joint_size,
            "nearest_paper": self.nearest_paper,
            "distance": self.distance,
        }


@dataclass
class ClusterResult:
    """Output of :func:`cluster_theta`: both clouds and the candidate meta neurons."""

    ab: CloudClusters
    cd: CloudClusters
    candidates: list[Candidate]
    layers: dict[str, int]
    quantile: float
    random_state: int | None
    notes: list[str] = field(default_factory=list)

    @property
    def clouds(self) -> tuple[CloudClusters, CloudClusters]:
        return self.ab, self.cd

    def to_presets(self) -> dict[str, Theta]:
        """Candidate name -> theta, ready for :func:`~spikedyn.meta.save_presets`."""
        return {c.name: c.theta for c in self.candidates}

    def summary(self) -> dict[str, Any]:
        """JSON-able summary: settings, per-cloud bandwidth / M / centres, candidates."""
        return {
            "points": int(sum(self.layers.values())),
            "layers": dict(self.layers),
            "quantile": self.quantile,
            "random_state": self.random_state,
            "clouds": {c.name: c.summary() for c in self.clouds},
            "candidates": [{"name": c.name, **dict(zip(THETA_KEYS, c.theta)), **c.info()} for c in self.candidates],
            "notes": list(self.notes),
        }


def theta_points(theta_layers: Mapping[str, Tensor] | Tensor) -> tuple[np.ndarray, dict[str, int]]:
    """All neurons as rows ``[P, 4]`` (float64) and the number of points of each layer.

    Each layer's theta is ``[4, ...]``; every trailing position (neuron, batch slot) is a point.
    """
    if isinstance(theta_layers, Tensor):
        theta_layers = {"theta": theta_layers}
    if not theta_layers:
        raise ValueError("no layers to cluster: pass layer name -> theta [4, ...]")
    rows, counts = [], {}
    for name, t in theta_layers.items():
        t = torch.as_tensor(t).detach()
        if t.dim() < 1 or t.shape[0] != 4:
            raise ValueError(f"theta of layer {name!r} must be [4, ...] (theta_a..theta_d first), got {tuple(t.shape)}")
        x = t.reshape(4, -1).T.to(torch.float64).cpu().numpy()
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).any(axis=1).sum())
            raise ValueError(f"theta of layer {name!r} has {bad} neuron(s) with non-finite values; the phase-1 run diverged")
        rows.append(x)
        counts[str(name)] = len(x)
    points = np.concatenate(rows)
    if len(points) == 0:
        raise ValueError("the layers hold no neurons to cluster")
    return points, counts


def cluster_theta(
    theta_layers: Mapping[str, Tensor] | Tensor,
    quantile: float = 0.5,
    random_state: int | None = 0,
    n_ab: int | None = None,
    n_cd: int | None = None,
    bandwidth_samples: int | None = 10_000,
) -> ClusterResult:
    """Cluster theta into meta-neuron candidates (spec mdn.md section 4.2; module docstring).

    ``theta_layers``: layer -> ``[4, ...]`` (or one such tensor).  ``quantile`` is passed to
    ``estimate_bandwidth``; ``n_ab`` / ``n_cd`` override the mean-shift cluster count of each
    cloud (the authors use M = 3 for TIDigits' (a, b)); ``random_state`` seeds KMeans
    (``n_init=10``).  The bandwidth estimate costs O(P^2), so it uses at most
    ``bandwidth_samples`` random points (drawn with ``random_state``; exact when P is not larger,
    e.g. the 510 neurons of a per-neuron MNIST run; ``None``: all points, as the authors' code,
    minutes for the 51,000 points of the per-batch-slot variant).

    A cloud whose bandwidth is 0 (at least a ``quantile`` share of neighbours coincide for
    every point, e.g. theta never moved from its initial value) cannot be mean-shifted; then
    M = number of distinct points (the limit of mean shift as the bandwidth shrinks to 0) and
    the result's ``notes`` say so.
    """
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    points, counts = theta_points(theta_layers)
    ab = _cluster_cloud("ab", points[:, :2], quantile, random_state, n_ab, bandwidth_samples)
    cd = _cluster_cloud("cd", points[:, 2:], quantile, random_state, n_cd, bandwidth_samples)
    references = paper_presets()
    candidates = []
    for i, ca in enumerate(ab.centres):
        for j, cc in enumerate(cd.centres):
            theta = (float(ca[0]), float(ca[1]), float(cc[0]), float(cc[1]))
            nearest, distance = nearest_paper_preset(theta, references)
            candidates.append(
                Candidate(
                    name=f"C{len(candidates) + 1}",
                    theta=theta,
                    ab_cluster=i + 1,
                    cd_cluster=j + 1,
                    ab_size=ab.sizes[i],
                    cd_size=cd.sizes[j],
                    joint_size=int(np.sum((ab.labels == i) & (cd.labels == j))),
                    nearest_paper=nearest,
                    distance=distance,
                )
            )
    notes = [f"({', '.join(CLOUD_AXES[c.name])}): {c.note}" for c in (ab, cd) if c.note]
    return ClusterResult(ab, cd, candidates, counts, float(quantile), random_state, notes)


#: clouds with fewer points run single-threaded: for small 2-D problems thread start-up costs far
#: more than the work (100x slower KMeans on a machine whose cores are busy).
_THREADED_FROM = 20_000


def _cluster_cloud(
    name: str,
    x: np.ndarray,
    quantile: float,
    random_state: int | None,
    n_clusters: int | None,
    bandwidth_samples: int | None,
) -> CloudClusters:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1 if len(x) < _THREADED_FROM else None):
        return _fit_cloud(name, x, quantile, random_state, n_clusters, bandwidth_samples)


def _fit_cloud(
    name: str,
    x: np.ndarray,
    quantile: float,
    random_state: int | None,
    n_clusters: int | None,
    bandwidth_samples: int | None,
) -> CloudClusters:
    from sklearn.cluster import KMeans, MeanShift, estimate_bandwidth

    distinct = len(np.unique(x, axis=0))
    bandwidth = float(
        estimate_bandwidth(x, quantile=quantile, n_samples=bandwidth_samples, random_state=random_state)
    )
    note = ""
    if bandwidth > 0.0 and math.isfinite(bandwidth):
        labels = MeanShift(bandwidth=bandwidth, bin_seeding=True).fit(x).labels_
        m_mean_shift: int | None = len(np.unique(labels))
        m, method = m_mean_shift, "mean-shift"
    else:
        m_mean_shift, m, method = None, distinct, "degenerate"
        note = (
            "all points are identical, mean shift skipped"
            if distinct == 1
            else f"bandwidth is 0 (points sit on {distinct} exact values), mean shift skipped"
        )
        if n_clusters is None:
            note += "; one cluster per distinct value"
    if n_clusters is not None:
        if n_clusters < 1:
            raise ValueError(f"the cluster count for ({', '.join(CLOUD_AXES[name])}) must be >= 1, got {n_clusters}")
        if n_clusters > distinct:
            raise ValueError(
                f"cannot make {n_clusters} clusters of ({', '.join(CLOUD_AXES[name])}): the cloud has only "
                f"{distinct} distinct point(s); lower the count"
            )
        m, method = n_clusters, "override"
    km = KMeans(n_clusters=m, random_state=random_state, n_init=10).fit(x)
    centres, labels = np.asarray(km.cluster_centers_, dtype=np.float64), np.asarray(km.labels_)
    sizes = np.bincount(labels, minlength=m)
    # deterministic order: size descending, then centre coordinates ascending
    order = sorted(range(m), key=lambda k: (-int(sizes[k]), *centres[k].tolist()))
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m)
    return CloudClusters(
        name=name,
        points=x,
        labels=rank[labels],
        centres=centres[order],
        sizes=[int(sizes[k]) for k in order],
        bandwidth=bandwidth,
        m_mean_shift=m_mean_shift,
        method=method,
        note=note,
    )


# -- whole phase-2 step ------------------------------------------------------------------------


def run_cluster(
    run_dir: str | Path,
    epoch: int | None = None,
    out_dir: str | Path | None = None,
    quantile: float = 0.5,
    random_state: int | None = 0,
    n_ab: int | None = None,
    n_cd: int | None = None,
    bandwidth_samples: int | None = 10_000,
    plot: bool = True,
) -> dict[str, Any]:
    """Cluster a phase-1 run's theta at ``epoch`` (``None`` = last) and write the results.

    Writes into ``out_dir`` (default ``RUN/meta/epoch<E>/``): ``presets.json`` (the candidates,
    usable as neuron kinds ``presets.json:C1`` ...), ``clusters.json`` (the summary) and
    ``clusters.png`` (when ``plot`` and matplotlib is installed).  Returns the summary plus
    ``run``, ``epoch``, ``dataset``, ``neuron`` and ``files`` (kind -> written path).
    """
    history = load_theta_history(run_dir)
    epoch = history.resolve_epoch(epoch)
    result = cluster_theta(
        history.at(epoch), quantile=quantile, random_state=random_state, n_ab=n_ab, n_cd=n_cd,
        bandwidth_samples=bandwidth_samples,
    )
    run_dir = Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent
    out = Path(out_dir) if out_dir is not None else run_dir / "meta" / f"epoch{epoch}"
    source = {
        "run": str(run_dir),
        "epoch": epoch,
        "dataset": history.dataset,
        "neuron": history.neuron,
        "layers": result.layers,
        "quantile": quantile,
        "random_state": random_state,
        "n_ab": n_ab,
        "n_cd": n_cd,
        "bandwidth_samples": bandwidth_samples,
        "method": "spikedyn meta cluster (mean shift -> M, KMeans centres, (a,b) x (c,d) product)",
    }
    files: dict[str, str] = {}
    presets_path = save_presets(
        out / "presets.json", result.to_presets(), source=source, extra={c.name: c.info() for c in result.candidates}
    )
    files["presets"] = str(presets_path)
    summary: dict[str, Any] = {
        "run": str(run_dir),
        "epoch": epoch,
        "dataset": history.dataset,
        "neuron": history.neuron,
        **result.summary(),
    }
    if plot:
        if importlib.util.find_spec("matplotlib") is None:
            summary["notes"].append('clusters.png not drawn: matplotlib is missing (pip install "spikedyn[plots]")')
        else:
            from ..plots.clusters import plot_theta_clusters

            where = history.dataset or run_dir.name
            title = f"theta of {where} at epoch {epoch} ({summary['points']} points)"
            files["plot"] = str(plot_theta_clusters(result, out / "clusters.png", title=title))
    files["summary"] = str(out / "clusters.json")
    summary["files"] = files
    write_text_atomic(out / "clusters.json", json.dumps(summary, indent=2) + "\n")
    return summary


__all__ = [
    "HISTORY_FILE",
    "ThetaHistory",
    "load_theta_history",
    "CloudClusters",
    "Candidate",
    "ClusterResult",
    "theta_points",
    "cluster_theta",
    "run_cluster",
]
