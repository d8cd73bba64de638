"""MDN's meta neurons: from learned dynamics to a finite set of named presets.

* :mod:`.cluster` — phase 2: read a phase-1 run's ``theta_history.pt``, cluster the learned
  theta into candidate meta neurons (:func:`run_cluster`, ``spikedyn meta cluster``);
* :mod:`.presets` — the JSON presets file those candidates are saved in; a preset is usable
  as the neuron kind ``"PATH:NAME"`` wherever a kind is accepted;
* :mod:`.dynamics` / :mod:`.attractors` — phase 3: candidates under the reference sine,
  non-sensitive flag, grouping by spike-train distance, nullclines and fixed points
  (``spikedyn meta dynamics``);
* :mod:`.pipeline` — phases 1-3 from a source task with a report (``spikedyn meta pipeline``).
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
from .attractors import fixed_points, phase_plane
from .dynamics import DynamicsTrace, FilterReport, assess_sensitivity, filter_candidates, simulate, sine_drive
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
    "fixed_points",
    "phase_plane",
    "DynamicsTrace",
    "FilterReport",
    "assess_sensitivity",
    "filter_candidates",
    "simulate",
    "sine_drive",
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
