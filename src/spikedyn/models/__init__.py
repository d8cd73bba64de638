"""The papers' networks, and the registry that builds them by name.

* :mod:`.mdn`: :class:`MDNNet`, MDN's three-layer fully connected SNN (model ``mdn``);
* :mod:`.brp`: :class:`BRPNet`, BRP's convolutional SNNs from topology strings and the Table II
  presets :data:`BRP_PRESETS` (model ``brp``);
* :mod:`.plif`: :class:`PLIFNet`, the PLIF networks (N_conv / N_down / N_fc conv nets with
  voting) and the per-data-set presets :data:`PLIF_PRESETS` (model ``plif``);
* :mod:`.nrr`: :class:`NRRNet`, NRR-SNN's recurrent adaptive-threshold nets (shallow RFC, deep
  conv + RFC) with a non-spiking read-out at every step, and :data:`NRR_SETTINGS` (model ``nrr``);
* :mod:`.registry`: :func:`build_model` / :func:`rebuild_model` by name, :func:`register_model`.
"""

from .mdn import MDNNet, NetOutput
from .registry import MODELS, ModelEntry, UnknownModelError, build_model, model_names, rebuild_model, register_model
from .brp import BRP_PRESETS, BRPNet, BRPPreset, TopologyError, format_topology, infer_input_shape, parse_topology
from .plif import PLIF_PRESETS, PLIFNet, PLIFPreset, plif_preset
from .nrr import NRR_SETTINGS, NRRNet, NRRSettings

__all__ = [
    "MDNNet",
    "NetOutput",
    "BRPNet",
    "BRPPreset",
    "BRP_PRESETS",
    "TopologyError",
    "parse_topology",
    "format_topology",
    "infer_input_shape",
    "PLIFNet",
    "PLIFPreset",
    "PLIF_PRESETS",
    "plif_preset",
    "NRRNet",
    "NRRSettings",
    "NRR_SETTINGS",
    "MODELS",
    "ModelEntry",
    "UnknownModelError",
    "register_model",
    "build_model",
    "rebuild_model",
    "model_names",
]
