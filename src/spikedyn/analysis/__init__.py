"""Analyses of trained networks and of result tables (MDN's capability, BRP's silent neurons, NRR's
noise robustness, accuracy against presentation length, linear probes of every layer, tables of runs)."""

from .capability import Capability, capability, standardise
from .latency import DEFAULT_STEPS, LatencyCurve, latency_curve_run, latency_sweep
from .probe import DEFAULT_PENALTIES, LayerProbe, fit_probe, layer_counts, probe_run
from .robustness import DEFAULT_LEVELS, NoiseCurve, NoisyInput, noise_curve_run, noise_sweep, robust_ratio, robust_ratios
from .run_table import RunRow, read_run, render_table, run_table
from .silent import (
    DEFAULT_FRACTIONS,
    PAPER_SILENT_AT_40,
    SilentPoint,
    SilentSweep,
    TapLayer,
    alpha_for_fraction,
    rank_code,
    silent_fraction,
    silent_fractions,
    silent_sweep,
    silent_sweep_run,
    tap_layers,
)

__all__ = [
    "DEFAULT_STEPS",
    "LatencyCurve",
    "latency_curve_run",
    "latency_sweep",
    "DEFAULT_PENALTIES",
    "LayerProbe",
    "fit_probe",
    "layer_counts",
    "probe_run",
    "RunRow",
    "read_run",
    "render_table",
    "run_table",
    "DEFAULT_LEVELS",
    "NoiseCurve",
    "NoisyInput",
    "noise_curve_run",
    "noise_sweep",
    "robust_ratio",
    "robust_ratios",
    "Capability",
    "capability",
    "standardise",
    "DEFAULT_FRACTIONS",
    "PAPER_SILENT_AT_40",
    "SilentPoint",
    "SilentSweep",
    "TapLayer",
    "alpha_for_fraction",
    "rank_code",
    "silent_fraction",
    "silent_fractions",
    "silent_sweep",
    "silent_sweep_run",
    "tap_layers",
]
