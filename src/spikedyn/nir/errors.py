"""What can go wrong with NIR: the optional package missing, a network NIR cannot express, a graph
that cannot run; each error's message says which part and what to do."""

from __future__ import annotations

import math
from typing import Any


class NIRUnavailableError(ImportError, ValueError):
    """The optional ``nir`` package is not installed (the message says how to install it)."""


class NIRExportError(ValueError):
    """A network (or one of its layers) that NIR cannot express; the message says which and why."""


class NIRImportError(ValueError):
    """A NIR graph that :func:`import_` cannot run; the message says which node and why."""


def require_nir() -> Any:
    """The ``nir`` package; :class:`NIRUnavailableError` (an ``ImportError`` and a ``ValueError``) saying how
    to install it when it is missing."""
    try:
        import nir
    except ImportError as exc:
        raise NIRUnavailableError(
            "NIR export/import needs the optional 'nir' package: pip install 'spikedyn[nir]' (or pip install nir)"
        ) from exc
    return nir


def check_dt(dt: float) -> float:
    """``dt`` as a float; ``ValueError`` unless it is a positive finite number."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt (the time step the graph is exported for) must be a positive number, got {dt!r}")
    return float(dt)
