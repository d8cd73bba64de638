"""``spikedyn export``: write a trained run's network in an exchange format (``--format nir``)."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Write the network of a trained run (its checkpoint.pt) as a NIR graph (the Neuromorphic
Intermediate Representation, read by snnTorch, Norse, Lava, Sinabs, ... and by
spikedyn.nir.import_).  Supported: the mdn, brp and plif networks of decay-LIF (lif-identity),
PLIF (plif) and LIF (lif-tau) neurons, in evaluation mode (dropout off, batch norm folded
into the convolution).  Refused with a message: the lif kind (sigmoid input), MDN's
2nd-order neurons and the nrr model.  Needs the optional 'nir' package
(pip install 'spikedyn[nir]').

The neurons are mapped to NIR's continuous LIF/IF nodes for the time step --dt with forward
Euler (decay-LIF: tau = dt/(1 - lambda), r = 1/(1 - lambda); PLIF/LIF: tau = tau_p dt, r = 1;
see the spikedyn.nir docstring).  snnTorch's NIR importer assumes dt = 1e-4.

examples:
  spikedyn export runs/mnist-brp-lif-identity-seed3154 --format nir
  spikedyn export RUN --format nir --out model.nir --dt 1e-4
"""


def _export(args: argparse.Namespace) -> int:
    from ..nir import export, require_nir
    from ..train import load_checkpoint

    nir = require_nir()  # a clear error before loading anything when the package is missing
    model, _, ckpt = load_checkpoint(args.run)
    model.eval()
    graph = export(model, dt=args.dt)
    run = Path(args.run)
    out = Path(args.out) if args.out else (run.parent if run.suffix == ".pt" else run) / "model.nir"
    out.parent.mkdir(parents=True, exist_ok=True)
    nir.write(out, graph)
    kinds: dict[str, int] = {}
    for node in graph.nodes.values():
        kinds[type(node).__name__] = kinds.get(type(node).__name__, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in kinds.items())
    name = ckpt.get("model_name", "mdn")
    print(f"{name} network of {args.run} (epoch {ckpt.get('epoch', '?')}): {len(graph.nodes)} NIR nodes ({summary}), dt = {args.dt:g}")
    print(f"wrote {out}")
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser(
        "export", help="write a trained run's network as a NIR graph",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("run", help="run directory or its checkpoint.pt")
    export.add_argument("--format", choices=["nir"], default="nir", help="exchange format (default %(default)s)")
    export.add_argument("--out", default=None, help="file to write (default RUN/model.nir)")
    export.add_argument("--dt", type=_positive, default=1.0,
                        help="time step the continuous NIR neurons are stated for (default %(default)s; snnTorch: 1e-4)")
    export.set_defaults(func=_export)
