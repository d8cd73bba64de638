"""Models by name: how a trainer builds a network for a data set, and rebuilds it from a checkpoint.

A model is registered with a *builder* ``build(inputs_shape, classes, **options) -> nn.Module``,
where ``inputs_shape`` is the data set's per-step sample shape (``SpikeDataset.feature_shape``)
and ``classes`` its class count, and with the model class, whose ``config`` attribute holds its
constructor arguments (``model_class(**model.config)`` rebuilds it).

Built in:

* ``mdn``: :class:`~spikedyn.models.mdn.MDNNet` on the flattened input; options ``hidden``
  (500), ``neuron`` (``2nd-fs``), ``fast``, ``neuron_options``, ``dropout`` (0: none).
* ``brp``: :class:`~spikedyn.models.brp.BRPNet`; options ``topology`` (a Table II preset name
  such as ``mnist`` or a string such as ``CONV_32_5_1_2_FC_1000_FC_10``, required), ``neuron``
  (``lif-identity``), ``fast``, ``neuron_options``, ``input_shape``.
* ``plif``: :class:`~spikedyn.models.plif.PLIFNet`; options ``preset`` (a
  :data:`~spikedyn.models.plif.PLIF_PRESETS` name: ``mnist``, ``fmnist``, ``cifar10``, ``nmnist``,
  ``cifar10dvs``, ``dvsgesture``) or explicit ``channels``, ``n_conv``, ``n_down``, ``fc``,
  ``dropout``, ``static``; ``pool`` (``max``/``avg``), ``neuron`` (``plif``), ``neuron_options``,
  ``tau``, ``fast``, ``input_shape``, ``voting`` (10).
* ``nrr``: :class:`~spikedyn.models.nrr.NRRNet`, RFC layers of NRR cells with a linear read-out at
  every step (``readout_kind = "step"``); options ``hidden`` (500), ``layers`` (1), ``deep``
  (conv front end), ``sparseness`` (0.5), ``gamma``, ``alpha``, ``beta``, ``decay``, ``v_th``,
  ``recurrent``, ``adaptive``, ``input_scale``, ``conv_channels``, ``conv_kernel``,
  ``conv_neuron``, ``mask_seed``, ``input_shape``, ``input_noise``, ``fast``; ``spiking=False``
  (the non-spiking baseline of the same sizes, ``activation`` ``tanh`` or ``relu``).

A trainer builds and restores a model with::

    model = build_model(name, dataset.feature_shape, dataset.num_classes, **options)
    checkpoint = {"model_name": name, "model_config": model.config, "model": model.state_dict(), ...}
    model = rebuild_model(checkpoint["model_name"], checkpoint["model_config"], fast=config.fast)
    model.load_state_dict(checkpoint["model"])

(``fast`` selects the neuron kernels, not the network, so it is not part of ``config``.)
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

from torch import nn

from .mdn import MDNNet

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


class UnknownModelError(KeyError, ValueError):
    """No model of that name is registered (the message lists the registered names)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and the class that ``config`` rebuilds."""

    name: str
    build: Callable[..., nn.Module]
    model_class: type[nn.Module]

    def default(self, option: str):
        """The builder's default value of ``option`` (``KeyError`` if it has none)."""
        param = inspect.signature(self.build).parameters.get(option)
        if param is None or param.default is inspect.Parameter.empty:
            raise KeyError(f"model {self.name!r} has no default for {option!r}")
        return param.default

    def options(self) -> list[str]:
        """The keyword options the builder accepts (besides ``inputs_shape`` and ``classes``)."""
        params = list(inspect.signature(self.build).parameters.values())[2:]
        return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


#: every registered model, by name
MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, model_class: type[nn.Module]) -> Callable[[Builder], Builder]:
    """Decorator: register ``build(inputs_shape, classes, **options)`` as model ``name``.

    ``model_class(**model.config)`` must rebuild a model the builder made.  Registering a name
    twice is an error.
    """

    def wrap(build: Builder) -> Builder:
        if name in MODELS:
            raise ValueError(f"a model named {name!r} is already registered")
        MODELS[name] = ModelEntry(name, build, model_class)
        return build

    return wrap


def model_names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(MODELS)


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; :class:`UnknownModelError` names the registered models."""
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; choose one of {', '.join(model_names())}") from None


def build_model(name: str, inputs_shape: int | Sequence[int], classes: int, **options) -> nn.Module:
    """Model ``name`` for data of per-step shape ``inputs_shape`` and ``classes`` classes.

    An option the builder does not take raises ``ValueError`` listing those it does.
    """
    entry = model_entry(name)
    unknown = sorted(set(options) - set(entry.options()))
    if unknown:
        raise ValueError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; it takes {', '.join(entry.options())}"
        )
    shape = (inputs_shape,) if isinstance(inputs_shape, int) else tuple(int(s) for s in inputs_shape)
    return entry.build(shape, classes, **options)


def rebuild_model(name: str, config: dict, **overrides) -> nn.Module:
    """Model ``name`` from its saved ``config`` (``model.config``); ``overrides`` such as ``fast=False`` win."""
    return model_entry(name).model_class(**{**config, **overrides})


@register_model("mdn", MDNNet)
def build_mdn(
    inputs_shape: Sequence[int], classes: int, hidden: int = 500, neuron: str = "2nd-fs", fast: bool = True,
    neuron_options: dict | None = None, dropout: float = 0.0,
) -> MDNNet:
    """MDN's three-layer net on the flattened input (``prod(inputs_shape)`` inputs per step)."""
    return MDNNet(
        math.prod(inputs_shape), hidden, classes, neuron=neuron, fast=fast, neuron_options=neuron_options,
        dropout=float(dropout),
    )
