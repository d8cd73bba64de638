"""``spikedyn data list``, ``spikedyn data info`` and ``spikedyn data cache``."""

from __future__ import annotations

import argparse
import json

from .options import add_data_option, parse_data_options


def _data(args: argparse.Namespace) -> int:
    from ..data import dataset_names, format_summary, load_dataset

    if args.data_command == "list":
        print("\n".join(dataset_names()))
        return 0
    if args.data_command == "cache":
        from ..data.cache import CACHE_ENV, cache_summary, clear_cache

        if args.clear:
            print(f"deleted {clear_cache()} cached feature file(s)")
        folder, count, size = cache_summary()
        if folder is None:
            print(f"feature cache off ({CACHE_ENV}=off)")
        else:
            print(f"feature cache: {folder} ({count} file(s), {size / 2**20:.1f} MiB; safe to delete, set {CACHE_ENV} "
                  f"to move it or {CACHE_ENV}=off to turn it off)")
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
    cache = data_sub.add_parser("cache", help="where computed audio features are cached, and how much (--clear empties it)")
    cache.add_argument("--clear", action="store_true", help="delete every cached feature file")
    data.set_defaults(func=_data)
