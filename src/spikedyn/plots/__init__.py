"""Plots (need matplotlib: ``pip install "spikedyn[plots]"``)."""

from .clusters import plot_theta_clusters
from .curves import plot_training_curves
from .dynamics import plot_dynamics
from .traces import plot_neuron_traces

__all__ = ["plot_training_curves", "plot_neuron_traces", "plot_theta_clusters", "plot_dynamics"]
