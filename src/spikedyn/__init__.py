"""spikedyn: spiking neural networks with rich neuron dynamics and biologically plausible learning."""

from . import neurons, surrogate
from .neurons import make_neuron

__version__ = "0.1.0"
__all__ = ["neurons", "surrogate", "make_neuron", "__version__"]
