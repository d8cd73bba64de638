"""``spikedyn`` command line: ``train``, ``eval``, ``data info`` / ``data list``.

``spikedyn train`` with no arguments trains MDN's three-layer network of 2nd-FS meta neurons
on the embedded 8x8 digits set (no files needed).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from .neurons import NEURON_KINDS


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


def _add_data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-option", action="append", metavar="KEY=VALUE",
        help="loader option, repeatable (e.g. split=speaker, frames=39, time_axis=bands; see `spikedyn data info`)",
    )


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    from .train import TrainConfig

    d = TrainConfig()
    p.add_argument("--dataset", default=d.dataset, help="data set name (see `spikedyn data list`; default %(default)s)")
    p.add_argument("--data-root", default=None, help="folder holding the data sets (default $SPIKEDYN_DATA or ./data)")
    _add_data_option(p)
    p.add_argument("--neuron", default=d.neuron, choices=NEURON_KINDS, type=str.lower, help="neuron kind (default %(default)s)")
    p.add_argument("--hidden", type=int, default=None, help="hidden layer size (data-set default: 500)")
    p.add_argument("--steps", "-T", type=int, default=None, help="time steps T (data-set default)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (data-set default)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (data-set default)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate of weights, eta_W (data-set default)")
    p.add_argument("--lr-dynamics", type=float, default=None, help="learning rate of neuron dynamics, eta_D")
    p.add_argument("--schedule", default=d.schedule, choices=["step", "cosine"], help="learning-rate schedule (default %(default)s)")
    p.add_argument("--cosine-period", type=int, default=d.cosine_period, help="T_max of the cosine schedule, in epochs (default %(default)s)")
    p.add_argument("--lr-step", type=int, default=d.lr_step, help="decay the learning rates every N epochs (default %(default)s)")
    p.add_argument("--lr-gamma", type=float, default=d.lr_gamma, help="learning-rate decay factor (default %(default)s)")
    p.add_argument("--loss", default=d.loss, choices=["rate-mse", "step-mse"], help="read-out loss (default %(default)s)")
    p.add_argument("--encoder", default=None, choices=["rate", "direct"], help="input encoder for static data (data-set default)")
    p.add_argument("--alpha", type=float, default=d.alpha, help="Bernoulli rate scale alpha (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default %(default)s)")
    p.add_argument("--out", default=None, help="run directory (default runs/<dataset>-<neuron>-seed<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--reference", action="store_true", help="use the per-step autograd reference path (slow)")
    p.add_argument("--device", default=d.device, help="cpu, cuda, cuda:1 or auto (default %(default)s)")
    p.add_argument("--eval-batch-size", type=int, default=d.eval_batch_size)
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument(
        "--allocator", default="keep", choices=["keep", "default"],
        help="keep: glibc keeps freed memory, faster CPU training (default); default: leave malloc as it is",
    )


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, Trainer

    if args.allocator == "keep":
        from .perf import keep_freed_memory

        keep_freed_memory()
    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values["data_options"] = parse_data_options(args.data_option)
    values["fast"] = not args.reference
    values["progress"] = not args.quiet
    trainer = Trainer(TrainConfig(**values))
    cfg = trainer.config
    print(
        f"training {cfg.neuron} network {trainer.model.config['inputs']}-{cfg.hidden}-{trainer.dataset.num_classes} "
        f"on {cfg.dataset} ({len(trainer.dataset.train)} train / {len(trainer.dataset.test)} test), "
        f"T={cfg.steps}, batch {cfg.batch_size}, {cfg.epochs} epochs, device {trainer.device}; run dir {cfg.out}",
        flush=True,
    )
    try:
        history = trainer.fit(resume=args.resume)
    except KeyboardInterrupt:
        done = trainer.epoch
        print(
            f"\ninterrupted during epoch {done + 1}; the checkpoint holds {done} finished epoch(s). "
            f"Continue with the same command plus --resume (run directory {cfg.out}).",
            file=sys.stderr,
        )
        return 130
    if history:
        best = max(h["test_accuracy"] for h in history)
        print(f"final test accuracy {100 * history[-1]['test_accuracy']:.2f}%  (best {100 * best:.2f}%)")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .train import Batcher, evaluate, load_checkpoint, pick_device

    device = pick_device(args.device)
    model, config, ckpt = load_checkpoint(args.checkpoint, device=str(device))
    dataset = load_dataset(config.dataset, args.data_root or config.data_root, **config.data_options)
    result = evaluate(model, Batcher(dataset, config, device), config, args.split, epoch=int(ckpt["epoch"]))
    result.update({"checkpoint": args.checkpoint, "epoch": ckpt["epoch"], "split": args.split, "dataset": config.dataset})
    print(json.dumps(result, indent=2))
    return 0


def _data(args: argparse.Namespace) -> int:
    from .data import dataset_names, format_summary, load_dataset

    if args.data_command == "list":
        print("\n".join(dataset_names()))
        return 0
    dataset = load_dataset(args.name, args.data_root, **parse_data_options(args.data_option))
    print(json.dumps(dataset.summary(), indent=2) if args.json else format_summary(dataset))
    return 0


def _plot(args: argparse.Namespace) -> int:
    import math

    import torch

    from .plots import plot_neuron_traces, plot_training_curves

    if args.plot_command == "curves":
        print(plot_training_curves(args.run, args.out))
        return 0
    t = torch.arange(args.steps, dtype=torch.float32)
    drive = args.mean + args.amplitude * torch.sin(2 * math.pi * t / args.period)
    title = f"drive z_t = {args.mean} + {args.amplitude} sin(2 pi t / {args.period})"
    print(plot_neuron_traces(args.kinds, drive, args.out, title=title))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spikedyn", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="train a network (no arguments: the embedded digits demo)")
    _add_train_arguments(train)
    train.set_defaults(func=_train)
    ev = sub.add_parser("eval", help="evaluate a checkpoint")
    ev.add_argument("checkpoint", help="run directory or checkpoint.pt")
    ev.add_argument("--split", default="test", choices=["train", "test"])
    ev.add_argument("--data-root", default=None)
    ev.add_argument("--device", default="auto")
    ev.set_defaults(func=_eval)
    data = sub.add_parser("data", help="inspect data sets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    info = data_sub.add_parser("info", help="counts, shapes, class balance and file location of a data set")
    info.add_argument("name")
    info.add_argument("--data-root", default=None)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    _add_data_option(info)
    data_sub.add_parser("list", help="names of the available data sets")
    data.set_defaults(func=_data)
    plot = sub.add_parser("plot", help="plots: training curves of a run, membrane traces of neurons")
    plot_sub = plot.add_subparsers(dest="plot_command", required=True)
    curves = plot_sub.add_parser("curves", help="loss/accuracy per epoch of a run directory")
    curves.add_argument("run")
    curves.add_argument("--out", default=None, help="PNG path (default RUN/curves.png)")
    traces = plot_sub.add_parser("traces", help="V/U traces and spikes of neuron kinds under a sine drive")
    traces.add_argument("kinds", nargs="+", type=str.lower, choices=NEURON_KINDS)
    traces.add_argument("--steps", type=int, default=60)
    traces.add_argument("--mean", type=float, default=0.0, help="mean of the pre-activation drive")
    traces.add_argument("--amplitude", type=float, default=1.0225, help="sine amplitude (MDN: 1.0225, std 0.723)")
    traces.add_argument("--period", type=float, default=20.0)
    traces.add_argument("--out", default="traces.png")
    plot.set_defaults(func=_plot)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
