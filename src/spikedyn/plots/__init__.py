"""Plots (need matplotlib: ``pip install "spikedyn[plots]"``)."""

from .clusters import plot_theta_clusters
from .curves import plot_dynamics_history, plot_training_curves
from .dynamics import plot_dynamics
from .paper_compare import plot_curve_comparison, plot_sweep
from .silent import plot_silent_neurons
from .traces import plot_neuron_traces

__all__ = ["plot_training_curves", "plot_dynamics_history", "plot_neuron_traces", "plot_theta_clusters", "plot_dynamics", "plot_silent_neurons",
           "plot_curve_comparison", "plot_sweep"]
