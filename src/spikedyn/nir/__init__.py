"""Export to and import from NIR, the Neuromorphic Intermediate Representation.

:func:`export` turns a trained ``mdn``, ``brp`` or ``plif`` network of decay-LIF, PLIF or
fixed-tau LIF neurons into a ``nir.NIRGraph``; :func:`import_` turns a NIR graph (ours or
another tool's) back into a PyTorch module, :class:`NIRNet`, that runs ``[T, B, ...]``
sequences like the library's networks.  Save and load graphs with ``nir.write`` / ``nir.read``.
The ``nir`` package is an optional dependency (``pip install 'spikedyn[nir]'``).

**Time step.**  NIR describes neurons in continuous time; the library's neurons are discrete
maps, one step per input frame.  A graph states the step ``dt`` it was exported for (graph
metadata ``dt``), and the mapping assumes the forward-Euler step every NIR simulator of
discrete-time SNNs uses (snnTorch, Norse, ...)::

    NIR LIF:   tau dv/dt = (v_leak - v) + R I,   z = [v > v_threshold],   v <- v_reset where z
    Euler:     v_t = v_{t-1} + (dt / tau) (v_leak - v_{t-1} + R I_t)
                   = (1 - dt/tau) v_{t-1} + (dt/tau) v_leak + (dt/tau) R I_t
    NIR IF:    dv/dt = R I   ->   v_t = v_{t-1} + dt R I_t

(snnTorch's NIR importer assumes ``dt = 1e-4``: export with ``dt=1e-4`` for it.)

**Decay-LIF** (``lif-identity``, BRP / NRR feed-forward cell; decay ``lambda``, threshold
``V_th``)::

    V_t = lambda V_{t-1} (1 - S_{t-1}) + I_t,    S_t = [V_t > V_th]

maps to a NIR ``LIF`` node with::

    tau = dt / (1 - lambda),   R = 1 / (1 - lambda),   v_leak = 0,   v_threshold = V_th,   v_reset = 0

so that ``1 - dt/tau = lambda`` and ``(dt/tau) R = 1``; ``lambda = 1`` (no leak) maps to a NIR
``IF`` node with ``R = 1 / dt``.  *Reset flag*: the library keeps ``V_t`` above threshold for
the step it fires and applies the reset as the factor ``(1 - S_{t-1})`` at the start of the next
step, while NIR sets ``v = v_reset = 0`` at once; either way the next step starts from
``lambda * 0 + I_{t+1}``, so the spikes are identical (only the recorded membrane of a firing
step differs: the library's ``V_t`` against NIR's 0).

**PLIF and fixed-tau LIF** (``plif``, ``lif-tau``; ``k = sigmoid(a) = 1 / tau_p``)::

    H_t = V_{t-1} + k (X_t - (V_{t-1} - V_reset)),   S_t = [H_t >= V_th],   V_t = V_reset where S_t, else H_t

i.e. ``H_t = (1 - k) V_{t-1} + k V_reset + k X_t``, maps to a NIR ``LIF`` node with::

    tau = dt / k = tau_p dt,   R = 1,   v_leak = V_reset,   v_reset = V_reset,
    v_threshold = the largest number below V_th in the network's float type

The library fires on ``H >= V_th``, NIR on ``v > v_threshold``: with ``v_threshold`` one unit in
the last place below ``V_th`` (``0.99999994`` for ``V_th = 1`` in float32) the two conditions
are the same for every membrane value of that float type.  PLIF's ``tau_p`` is one learned
scalar per layer; it is written out per neuron, as NIR wants.  The initial membrane is
``V_reset`` (0) in both families, which :class:`NIRLIF` also uses.

**Synapses and the rest**, per step (the library runs them over the folded sequence):
``Linear`` -> ``Affine`` (``Linear`` without bias); ``Conv2d`` / ``Conv1d`` -> the same NIR node
(bias 0 where the layer has none); PLIF's batch norm (evaluation mode, running statistics) is
folded into the convolution, ``W' = W gamma / sqrt(var + eps)``, ``b' = (b - mean) gamma /
sqrt(var + eps) + beta`` (computed in float64, then rounded once to the weights' type);
``AvgPool2d`` -> ``AvgPool2d``; spike ``MaxPool2d`` -> ``SumPool2d`` then ``Threshold(0)``
(exact for 0/1 spikes: a window's maximum is 1 iff its sum is above 0); BRP's ``AvgPool1d(k)``
-> a ``Conv1d`` with stride ``k`` and weight ``1/k`` from each channel to itself (0 across channels); the flatten before the first FC
layer -> ``Flatten`` (dimensions counted without the batch axis); PLIF's voting -> ``Linear``
with weights ``1/G`` on each group of ``G`` output neurons.  Dropout and NRR's input noise are
training-only and left out: a graph describes the network in evaluation mode.  The graph's
output is what ``NetOutput.spikes`` holds (PLIF: the voted scores).

**Refused, with a message saying why**: the ``lif`` kind (MDN's 1st-order neuron applies a
sigmoid to its synaptic input, and NIR has no sigmoid node), MDN's 2nd-order neurons (``mdn``,
``2nd-*``: a quadratic membrane with a recovery variable, no NIR primitive), NRR-SNN's
two-channel adaptive-threshold recurrent cell (``nrr`` model), and batch norm without running
statistics.

**Metadata.**  Each neuron node carries the library's own parameters in its ``metadata``
(``spikedyn_neuron``: ``decay-lif``, ``plif`` or ``lif-tau``, with ``decay`` / ``a``, ``v_th``,
``v_reset``), as do the two compositions that are not bit-exact in another tool's arithmetic
(``spikedyn_layer``: ``avg_pool1d``, ``voting``).  :func:`import_` uses them, when they agree with
the NIR parameters and the ``dt`` used, to rebuild the library's own layers, so that export ->
``nir.write`` -> ``nir.read`` -> import gives bit-identical spikes.  Without metadata (another
tool's graph, or ``native=False``) LIF and IF nodes run as :class:`NIRLIF`, the Euler map above.
"""

from .errors import NIRExportError, NIRImportError, NIRUnavailableError, require_nir
from .export import export, neuron_node
from .importer import NIRLIF, NIRNet, import_

__all__ = [
    "export", "import_", "neuron_node", "require_nir", "NIRNet", "NIRLIF", "NIRExportError", "NIRImportError",
    "NIRUnavailableError",
]
