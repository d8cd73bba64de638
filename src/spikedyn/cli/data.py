"""``spikedyn data list`` and ``spikedyn data info``."""

from __future__ import annotations

import argparse
import json

from .options import add_data_option, parse_data_options


def _data(args: argparse.Namespace) -> int:
    from ..data import dataset_names, format_summary, load_dataset

    if args.data_command == "list":
        print("\n".join(dataset_names()))
        return 0
    dataset = load_dataset(args.name, args.data_root, **parse_data_options(args.data_option))
    print(json.dumps(dataset.summary(), indent=2) if args.json else format_summary(dataset))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="inspect data sets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    info = data_sub.add_parser("info", help="counts, shapes, class balance and file location of a data set")
    info.add_argument("name")
    info.add_argument("--data-root", default=None)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    add_data_option(info)
    data_sub.add_parser("list", help="names of the available data sets")
    data.set_defaults(func=_data)
