"""MDN's spatial and temporal *capability* of neuron types (the paper's Eq. 7, Fig. 8).

For every task the neuron types' accuracies are standardised against each other,
``z = (acc - mean) / spread``, and a type's spatial (temporal) capability is the mean of its
``z`` over the spatial (temporal) tasks.  The paper's formula writes the variance as the spread
while its text says standard deviation; the default here is the population standard deviation
(``normalize="std"``), ``normalize="var"`` divides by the population variance as the formula
is written.  A task counts only when every neuron type has a value on it (z-scores over a
subset of types would not be comparable); the result lists the tasks used and why others were
left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

KINDS = ("spatial", "temporal")


@dataclass
class Capability:
    """Capability per neuron type, and the tasks it was computed from."""

    neurons: list[str]
    spatial: dict[str, float | None]
    temporal: dict[str, float | None]
    tasks: dict[str, list[str]]  # "spatial" / "temporal" -> tasks used
    skipped: dict[str, str] = field(default_factory=dict)  # task -> why it was not used
    z: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> neuron -> standardised accuracy
    normalize: str = "std"

    def as_dict(self) -> dict:
        return {
            "neurons": self.neurons, "spatial": self.spatial, "temporal": self.temporal, "tasks": self.tasks,
            "skipped": self.skipped, "z": self.z, "normalize": self.normalize,
        }

    def pair(self, neuron: str) -> tuple[float | None, float | None]:
        """``(spatial, temporal)`` of one neuron type."""
        return self.spatial[neuron], self.temporal[neuron]


def standardise(values: Sequence[float], normalize: str = "std") -> list[float] | None:
    """``(v - mean) / spread`` with the population std (``"std"``) or variance (``"var"``);
    None when all values are equal (no spread)."""
    if normalize not in ("std", "var"):
        raise ValueError(f"normalize must be 'std' or 'var', got {normalize!r}")
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / n
    spread = math.sqrt(var) if normalize == "std" else var
    if spread == 0:
        return None
    return [(v - mean) / spread for v in values]


def capability(
    accuracies: Mapping[str, Mapping[str, float | None]],
    kinds: Mapping[str, str | None],
    neurons: Sequence[str] | None = None,
    normalize: str = "std",
) -> Capability:
    """Spatial and temporal capability of ``neurons`` from per-task accuracies.

    ``accuracies``: task -> neuron -> accuracy (any unit; None = not measured).
    ``kinds``: task -> ``"spatial"``, ``"temporal"`` or None (a task of no group, e.g. N-MNIST).
    ``neurons``: the types compared (default: every neuron named in ``accuracies``, in order).
    A neuron's capability is None when no task of that group could be used.
    """
    if neurons is None:
        neurons = list(dict.fromkeys(n for row in accuracies.values() for n in row))
    neurons = list(neurons)
    if len(neurons) < 2:
        raise ValueError(f"capability compares neuron types against each other; got {neurons}")
    tasks: dict[str, list[str]] = {k: [] for k in KINDS}
    skipped: dict[str, str] = {}
    z_all: dict[str, dict[str, float]] = {}
    sums = {k: {n: 0.0 for n in neurons} for k in KINDS}
    for task, row in accuracies.items():
        kind = kinds.get(task)
        if kind is None:
            skipped[task] = "in neither the spatial nor the temporal group"
            continue
        if kind not in KINDS:
            raise ValueError(f"task {task!r}: kind must be 'spatial' or 'temporal', got {kind!r}")
        missing = [n for n in neurons if row.get(n) is None]
        if missing:
            skipped[task] = f"no value for {', '.join(missing)}"
            continue
        z = standardise([float(row[n]) for n in neurons], normalize)
        if z is None:
            skipped[task] = "all neuron types score the same"
            continue
        z_all[task] = dict(zip(neurons, z))
        tasks[kind].append(task)
        for n, value in zip(neurons, z):
            sums[kind][n] += value
    means = {k: {n: (sums[k][n] / len(tasks[k]) if tasks[k] else None) for n in neurons} for k in KINDS}
    return Capability(neurons, means["spatial"], means["temporal"], tasks, skipped, z_all, normalize)
