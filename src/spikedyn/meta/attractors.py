"""Phase-plane analysis of the MDN 2nd-order neuron at a constant input current.

With the input current ``I = sigmoid(z)`` held constant and no spike, one step of the neuron
(spec mdn.md section 2.1) is::

    dV = V^2 - V - U + I,        dU = theta_a (theta_b V - U)
    V <- V + dV  (= V^2 - U + I), U <- U + dU

Nullclines in the (V, U) plane:

* V-nullcline (dV = 0):  ``U = V^2 - V + I``, a parabola with its minimum ``I - 1/4`` at V = 1/2;
* U-nullcline (dU = 0):  ``U = theta_b V`` (for theta_a != 0; theta_a = 0 freezes U).

For a frozen U the membrane alone has the two fixed points of the paper::

    V* = 1/2 -+ sqrt(eps),   eps = U - I + 1/4

(``-`` attracting, ``+`` repelling) when eps >= 0, and none when eps < 0: V then grows without
bound, i.e. the neuron spikes.  With the unit step the minus branch is an attractor of the
*discrete* map only while ``eps < 1`` (its multiplier is ``2 V*``); for larger eps it is
unstable and V oscillates with growing amplitude until it crosses the threshold, which is how
a neuron whose U keeps growing (theta_a < 0) ends up firing every other step.

Fixed points of the full system lie where the nullclines cross::

    V^2 - (1 + theta_b) V + I = 0  =>  V = ((1 + theta_b) -+ sqrt((1 + theta_b)^2 - 4 I)) / 2,
    U = theta_b V

so they exist only for ``I <= (1 + theta_b)^2 / 4``.  Above that input the neuron fires
tonically.  A fixed point with V above the threshold (0.5) is never reached without spiking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

V_TH = 0.5


@dataclass(frozen=True)
class FixedPoint:
    """A crossing of the two nullclines at constant input.

    ``eig_map`` are the eigenvalues of the Jacobian of the unit-step map the library simulates,
    ``[[2V, -1], [theta_a theta_b, 1 - theta_a]]``; ``eig_ode`` those of the continuous system,
    ``[[2V - 1, -1], [theta_a theta_b, -theta_a]]``.  ``stable_map``: all ``|eig_map| < 1``;
    ``stable_ode``: all ``Re(eig_ode) < 0``.  ``below_threshold``: ``V < 0.5`` (reachable
    without a spike).
    """

    v: float
    u: float
    eig_map: tuple[complex, complex]
    eig_ode: tuple[complex, complex]

    @property
    def stable_map(self) -> bool:
        return all(abs(e) < 1.0 for e in self.eig_map)

    @property
    def stable_ode(self) -> bool:
        return all(e.real < 0.0 for e in self.eig_ode)

    @property
    def below_threshold(self) -> bool:
        return self.v < V_TH

    @property
    def attractor(self) -> bool:
        """Stable for the simulated map and below the threshold: the neuron can rest here."""
        return self.stable_map and self.below_threshold

    def summary(self) -> dict[str, object]:
        return {
            "v": self.v,
            "u": self.u,
            "stable_map": self.stable_map,
            "stable_ode": self.stable_ode,
            "below_threshold": self.below_threshold,
            "attractor": self.attractor,
        }


@dataclass(frozen=True, eq=False)
class PhasePlane:
    """Nullclines sampled on ``v`` and the fixed points of one neuron at input current ``current``."""

    theta: tuple[float, float, float, float]
    current: float
    v: np.ndarray
    u_v_nullcline: np.ndarray  # U = V^2 - V + I
    u_u_nullcline: np.ndarray  # U = theta_b V
    fixed_points: tuple[FixedPoint, ...]

    @property
    def tonic(self) -> bool:
        """True when no fixed point exists (``I > (1 + theta_b)^2 / 4``): the neuron keeps firing."""
        return not self.fixed_points


def v_nullcline(v: np.ndarray | float, current: float) -> np.ndarray:
    """U on the V-nullcline: ``U = V^2 - V + I``."""
    v = np.asarray(v, dtype=float)
    return v * v - v + current


def u_nullcline(v: np.ndarray | float, theta_b: float) -> np.ndarray:
    """U on the U-nullcline: ``U = theta_b V``."""
    return theta_b * np.asarray(v, dtype=float)


def v_fixed_points(u: float, current: float) -> tuple[float, float] | None:
    """Fixed points of V for a frozen U: ``(1/2 - sqrt(eps), 1/2 + sqrt(eps))``, eps = U - I + 1/4.

    Returns ``None`` when eps < 0 (no real fixed point: V runs away to a spike).
    """
    eps = u - current + 0.25
    if eps < 0.0:
        return None
    root = math.sqrt(eps)
    return 0.5 - root, 0.5 + root


def fixed_points(theta: Sequence[float], current: float) -> tuple[FixedPoint, ...]:
    """Crossings of the two nullclines, lowest V first (empty above ``I = (1 + theta_b)^2 / 4``)."""
    a, b, _, _ = _theta(theta)
    if a == 0.0:
        raise ValueError(
            "theta_a = 0 freezes U: there is no U-nullcline and the whole V-nullcline is stationary; "
            "use v_fixed_points(u, current) for a given U"
        )
    disc = (1.0 + b) ** 2 - 4.0 * current
    if disc < 0.0:
        return ()
    root = math.sqrt(disc)
    roots = sorted({((1.0 + b) - root) / 2.0, ((1.0 + b) + root) / 2.0})
    points = []
    for v in roots:
        j_map = np.array([[2.0 * v, -1.0], [a * b, 1.0 - a]])
        j_ode = np.array([[2.0 * v - 1.0, -1.0], [a * b, -a]])
        points.append(
            FixedPoint(
                v=v,
                u=b * v,
                eig_map=tuple(complex(e) for e in np.linalg.eigvals(j_map)),  # type: ignore[arg-type]
                eig_ode=tuple(complex(e) for e in np.linalg.eigvals(j_ode)),  # type: ignore[arg-type]
            )
        )
    return tuple(points)


def phase_plane(
    theta: Sequence[float],
    current: float,
    v: np.ndarray | None = None,
) -> PhasePlane:
    """Nullclines on the grid ``v`` (default 201 points over [-1, 1.5]) and fixed points at input ``current``."""
    th = _theta(theta)
    if not math.isfinite(current):
        raise ValueError(f"input current must be finite, got {current}")
    grid = np.linspace(-1.0, 1.5, 201) if v is None else np.asarray(v, dtype=float)
    return PhasePlane(
        theta=th,
        current=float(current),
        v=grid,
        u_v_nullcline=v_nullcline(grid, current),
        u_u_nullcline=u_nullcline(grid, th[1]),
        fixed_points=fixed_points(th, current) if th[0] != 0.0 else (),
    )


def _theta(theta: Sequence[float]) -> tuple[float, float, float, float]:
    values = tuple(float(x) for x in theta)
    if len(values) != 4 or not all(math.isfinite(x) for x in values):
        raise ValueError(f"theta must be 4 finite numbers (theta_a, theta_b, theta_c, theta_d), got {theta!r}")
    return values  # type: ignore[return-value]
