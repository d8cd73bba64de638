"""``spikedyn`` command line, one module per command group.

``spikedyn train`` with no arguments trains MDN's three-layer network of 2nd-FS meta neurons
on the embedded 8x8 digits set (no files needed).  Each group module (``train``, ``data``,
``plot``, ...) has a ``register(subparsers)`` function and is a thin layer over library
functions that the Python API offers too.
"""

from __future__ import annotations

import argparse
import sys

from . import analyze, data, export, info, meta, plot, reproduce, runs, sweep, train
from .options import parse_data_options

#: what ``spikedyn --help`` says first (plain text: the module docstring is for the API reference)
DESCRIPTION = """\
Spiking neural networks with rich neuron dynamics and biologically plausible learning.

quick start:
  spikedyn train                                   train the demo (embedded digits, no files needed)
  spikedyn train --dataset mnist --data-root DATA  any data set of `spikedyn data list`
  spikedyn COMMAND --help                          the options of one command
  spikedyn info                                    versions, devices and neuron kernels of this installation
"""

#: the command groups, in the order ``spikedyn --help`` lists them.
COMMAND_GROUPS = [train, data, plot, runs, meta, reproduce, sweep, analyze, export, info]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spikedyn", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"spikedyn: error: {exc}", file=sys.stderr)
        return 2


__all__ = ["main", "build_parser", "parse_data_options", "COMMAND_GROUPS"]
