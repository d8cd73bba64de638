"""Surrogate (pseudo) gradients for the Heaviside spike function.

Forward, every surrogate is the Heaviside step ``S = H(x)`` of the distance to threshold
``x = V - V_th``; backward, ``dS/dx`` is replaced by the derivative of a smooth (or
piecewise-linear) *primitive* ``P(x)`` whose derivative is the surrogate.  Each class exposes

* ``grad(x)``      the surrogate derivative ``P'(x)`` (used by the hand-written BPTT kernels),
* ``primitive(x)`` the function whose derivative it is (used by the gradient tests),
* ``spike(x, inclusive)`` the Heaviside forward with the surrogate backward (autograd).

``inclusive`` selects ``x >= 0`` (PLIF, ``Theta(0) = 1``) or ``x > 0`` (MDN/BRP/NRR fire on
strict ``V > V_th``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn


def heaviside(x: Tensor, inclusive: bool = False) -> Tensor:
    """``H(x)`` as a float tensor of x's dtype: ``1[x >= 0]`` if inclusive else ``1[x > 0]``."""
    return (x >= 0).to(x.dtype) if inclusive else (x > 0).to(x.dtype)


class Surrogate:
    """Base class: a surrogate derivative with its primitive."""

    def grad(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def primitive(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad_(self, x: Tensor) -> Tensor:
        """``grad(x)`` written into ``x``'s own storage (saves a large temporary in BPTT kernels)."""
        return x.copy_(self.grad(x))

    def grad_mul_(self, x: Tensor, g: Tensor, scale: float = 1.0) -> Tensor:
        """``scale * grad(x) * g`` written into ``x``'s own storage (the chain rule's first product in
        BPTT kernels; ``scale`` folds a constant factor of the next product into this one)."""
        out = self.grad_(x).mul_(g)
        return out if scale == 1.0 else out.mul_(scale)

    def spike(self, x: Tensor, inclusive: bool = False) -> Tensor:
        """Heaviside forward, ``grad(x)`` backward."""
        return _SpikeFunction.apply(x, self, inclusive)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


class RectWindow(Surrogate):
    """Rectangular window: ``dS/dV = height`` if ``|V - V_th| < half_width`` else 0.

    The CASIA codes (MDN, BRP, NRR) use ``V_th = 0.5``, ``half_width = 0.5``, ``height = 1``
    (not normalised by ``1/(2 w)``).  Primitive: ``P(x) = height * clamp(x + w, 0, 2w)``.
    """

    def __init__(self, half_width: float = 0.5, height: float = 1.0) -> None:
        if half_width <= 0:
            raise ValueError(f"RectWindow half_width must be > 0, got {half_width}")
        self.half_width = float(half_width)
        self.height = float(height)

    def grad(self, x: Tensor) -> Tensor:
        return (x.abs() < self.half_width).to(x.dtype) * self.height

    def grad_(self, x: Tensor) -> Tensor:
        torch.lt(x.abs_(), self.half_width, out=x)
        return x if self.height == 1.0 else x.mul_(self.height)

    def primitive(self, x: Tensor) -> Tensor:
        w = self.half_width
        return self.height * (x + w).clamp(0.0, 2 * w)


class ATan(Surrogate):
    """Arc-tangent surrogate (PLIF, alpha = 2).

    ``P(x) = arctan(pi*alpha*x/2)/pi + 1/2``;  ``P'(x) = alpha / (2 (1 + (pi*alpha*x/2)^2))``.
    """

    def __init__(self, alpha: float = 2.0) -> None:
        self.alpha = float(alpha)

    def grad(self, x: Tensor) -> Tensor:
        return self.alpha / (2.0 * (1.0 + (math.pi / 2.0 * self.alpha * x) ** 2))

    def _denominator_(self, x: Tensor, scale: float = 1.0) -> Tensor:
        """``(2/alpha) (1 + (pi alpha x / 2)^2) / scale`` in place, in one pass (one addcmul)."""
        c = math.pi / 2.0 * self.alpha
        d = 2.0 / self.alpha / scale
        return torch.addcmul(torch.tensor(d, dtype=x.dtype, device=x.device), x, x, value=d * c * c, out=x)

    def grad_(self, x: Tensor) -> Tensor:
        return self._denominator_(x).reciprocal_()

    def grad_mul_(self, x: Tensor, g: Tensor, scale: float = 1.0) -> Tensor:
        return torch.div(g, self._denominator_(x, scale), out=x)

    def primitive(self, x: Tensor) -> Tensor:
        return torch.atan(math.pi / 2.0 * self.alpha * x) / math.pi + 0.5


class Sigmoid(Surrogate):
    """Logistic surrogate: ``P(x) = sigmoid(alpha x)``;  ``P'(x) = alpha s (1 - s)``."""

    def __init__(self, alpha: float = 4.0) -> None:
        self.alpha = float(alpha)

    def grad(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1.0 - s)

    def primitive(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.alpha * x)


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, surrogate: Surrogate, inclusive: bool) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x, inclusive)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None, None


SURROGATES = {"rect": RectWindow, "atan": ATan, "sigmoid": Sigmoid}


def make_surrogate(name: str, **kwargs: float) -> Surrogate:
    """Build a surrogate by name (``rect``, ``atan``, ``sigmoid``)."""
    try:
        return SURROGATES[name.lower()](**kwargs)
    except KeyError:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {sorted(SURROGATES)}") from None


#: the parameters a surrogate spec string gives, in order, per name (``rect:HALF_WIDTH[:HEIGHT]`` ...)
SURROGATE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "rect": ("half_width", "height"),
    "atan": ("alpha",),
    "sigmoid": ("alpha",),
}

SURROGATE_SPEC_HELP = (
    "rect[:HALF_WIDTH[:HEIGHT]] (dS/dV = HEIGHT where |V - V_th| < HALF_WIDTH; the CASIA neurons' 0.5:1), "
    "atan[:ALPHA] (PLIF's, alpha 2) or sigmoid[:ALPHA] (alpha 4)"
)


def parse_surrogate(spec: str | Surrogate) -> Surrogate:
    """The surrogate a spec string names: ``NAME[:P1[:P2]]`` with the parameters of
    :data:`SURROGATE_PARAMETERS` in order, e.g. ``rect:0.25`` (half-width 0.25, height 1),
    ``rect:0.5:2``, ``atan:2``, ``sigmoid:4``; a parameter left out keeps its default.  A
    :class:`Surrogate` is returned as it is.  ``ValueError`` saying what is wrong otherwise.
    """
    if isinstance(spec, Surrogate):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a surrogate spec is a string such as 'rect:0.25', got {spec!r}; choose {SURROGATE_SPEC_HELP}")
    name, *values = spec.strip().split(":")
    key = name.strip().lower()
    if key not in SURROGATE_PARAMETERS:
        raise ValueError(f"unknown surrogate {name!r} in {spec!r}; choose {SURROGATE_SPEC_HELP}")
    names = SURROGATE_PARAMETERS[key]
    if len(values) > len(names):
        raise ValueError(
            f"surrogate {spec!r}: {key} takes at most {len(names)} parameter(s) ({', '.join(names)}), got {len(values)}"
        )
    kwargs: dict[str, float] = {}
    for field, text in zip(names, values):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"surrogate {spec!r}: {field} must be a number, got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"surrogate {spec!r}: {field} must be a finite number > 0, got {text!r}")
        kwargs[field] = value
    return make_surrogate(key, **kwargs)


def split_surrogate_assignment(text: str) -> tuple[str | None, str]:
    """``(layer, spec)`` of an assignment ``"SPEC"`` (layer None: every layer) or ``"LAYER=SPEC"``."""
    layer, sep, spec = text.partition("=")
    if not sep:
        return None, text.strip()
    if not layer.strip():
        raise ValueError(f"surrogate assignment {text!r} names no layer before '='; write LAYER=SPEC or SPEC")
    return layer.strip(), spec.strip()


def check_surrogate_assignment(text: str) -> str:
    """One assignment ``SPEC`` or ``LAYER=SPEC``, normalised (``LAYER=SPEC`` without spaces), if its spec is one
    :func:`parse_surrogate` accepts; ``ValueError`` saying what is wrong otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"an assignment is a string SPEC or LAYER=SPEC, got {text!r}")
    layer, spec = split_surrogate_assignment(text)
    parse_surrogate(spec)
    return spec if layer is None else f"{layer}={spec}"


def check_surrogate_assignments(assignments: Sequence[str] | str | None) -> list[str]:
    """The assignments of ``TrainConfig.surrogate`` / ``--surrogate``, checked: each one by
    :func:`check_surrogate_assignment`, at most one without a layer and no layer twice.  ``ValueError``
    naming the bad one otherwise."""
    if assignments is None:
        return []
    if isinstance(assignments, str):
        assignments = [assignments]
    out, seen = [], set()
    for text in assignments:
        try:
            checked = check_surrogate_assignment(text)
        except ValueError as exc:
            raise ValueError(f"surrogate (--surrogate): {exc}") from None
        layer = split_surrogate_assignment(checked)[0]
        if layer in seen:
            what = "every layer" if layer is None else f"layer {layer!r}"
            raise ValueError(f"surrogate (--surrogate): {what} is given twice in {list(assignments)}")
        seen.add(layer)
        out.append(checked)
    return out


def surrogate_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The modules of ``model`` that hold a surrogate gradient (attribute ``surrogate``), by module name."""
    return {name: m for name, m in model.named_modules() if isinstance(getattr(m, "surrogate", None), Surrogate)}


def set_surrogates(model: nn.Module, assignments: Sequence[str] | str | None) -> dict[str, Surrogate]:
    """Replace the surrogate gradients of ``model``'s spiking layers; returns the new ones by layer name.

    ``assignments`` (:func:`check_surrogate_assignments`): ``"SPEC"`` sets every layer that holds a
    surrogate; ``"LAYER=SPEC"`` the layers whose module name is ``LAYER`` or lies below it
    (``neuron1``, ``blocks.0``), and wins over ``"SPEC"`` there.  The forward pass is unchanged
    (spikes stay ``H(V - V_th)``); backward ``dS/dV`` becomes the new surrogate's.  ``ValueError``
    when the model has no such layer or a ``LAYER`` matches none (the message lists the names).
    """
    assignments = check_surrogate_assignments(assignments)
    if not assignments:
        return {}
    layers = surrogate_layers(model)
    if not layers:
        raise ValueError(
            f"surrogate (--surrogate): {type(model).__name__} has no spiking layer with a surrogate gradient to set"
        )
    pairs = [split_surrogate_assignment(text) for text in assignments]
    chosen: dict[str, Surrogate] = {}
    for layer, spec in sorted(pairs, key=lambda pair: pair[0] is not None):  # every-layer first: a named one wins
        names = [n for n in layers if layer is None or n == layer or n.startswith(layer + ".")]
        if not names:
            raise ValueError(
                f"surrogate (--surrogate): {type(model).__name__} has no spiking layer {layer!r}; its layers with a "
                f"surrogate gradient are {', '.join(layers)}"
            )
        surrogate = parse_surrogate(spec)
        chosen.update(dict.fromkeys(names, surrogate))
    for name, surrogate in chosen.items():
        layers[name].surrogate = surrogate
    return chosen
