"""MDN's meta neurons: from learned dynamics to a finite set of named presets.

* :mod:`.cluster` — phase 2: read a phase-1 run's ``theta_history.pt``, cluster the learned
  theta into candidate meta neurons (:func:`run_cluster`, ``spikedyn meta cluster``);
* :mod:`.presets` — the JSON presets file those candidates are saved in; a preset is usable
  as the neuron kind ``"PATH:NAME"`` wherever a kind is accepted.
"""

from ..neurons import check_neuron_kind
from .cluster import (
    Candidate,
    CloudClusters,
    ClusterResult,
    ThetaHistory,
    cluster_theta,
    load_theta_history,
    run_cluster,
    theta_points,
)
from .presets import (
    PRESETS_FORMAT,
    THETA_KEYS,
    load_preset_info,
    load_presets,
    nearest_paper_preset,
    paper_presets,
    preset_neuron,
    preset_theta,
    save_presets,
)

__all__ = [
    "Candidate",
    "CloudClusters",
    "ClusterResult",
    "ThetaHistory",
    "cluster_theta",
    "load_theta_history",
    "run_cluster",
    "theta_points",
    "PRESETS_FORMAT",
    "THETA_KEYS",
    "load_preset_info",
    "load_presets",
    "nearest_paper_preset",
    "paper_presets",
    "preset_neuron",
    "preset_theta",
    "save_presets",
    "check_neuron_kind",
]
