"""matplotlib import with a clear message when it is missing (headless backend)."""

from __future__ import annotations


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('plots need matplotlib: pip install "spikedyn[plots]"') from exc
    return plt


def save_figure(fig, out, dpi: int = 120):
    """Lay out ``fig``, write it to ``out`` (parent folders made), close it; the ``Path`` written."""
    from pathlib import Path

    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
