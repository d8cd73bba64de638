"""Option parsing shared by the command groups."""

from __future__ import annotations

import argparse


def _option_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_data_options(items: list[str] | None) -> dict:
    """``["split=speaker", "frames=39"]`` -> ``{"split": "speaker", "frames": 39}``."""
    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--data-option expects KEY=VALUE, got {item!r}")
        options[key.replace("-", "_")] = _option_value(value)
    return options


def add_data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-option", action="append", metavar="KEY=VALUE",
        help="loader option, repeatable (e.g. split=speaker, frames=39, time_axis=bands; see `spikedyn data info`)",
    )


