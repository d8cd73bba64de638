"""Plots (need matplotlib: ``pip install "spikedyn[plots]"``)."""

from .clusters import plot_theta_clusters
from .curves import plot_training_curves
from .traces import plot_neuron_traces

__all__ = ["plot_training_curves", "plot_neuron_traces", "plot_theta_clusters"]
