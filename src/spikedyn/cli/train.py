"""``spikedyn train`` and ``spikedyn eval``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from ..neurons import NEURON_KINDS, check_neuron_kind
from .options import add_data_option, parse_data_options


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    from ..learning import RULE_HELP, RULES
    from ..train import TrainConfig

    d = TrainConfig()
    p.add_argument("--dataset", default=d.dataset, help="data set name (see `spikedyn data list`; default %(default)s)")
    p.add_argument("--data-root", default=None, help="folder holding the data sets (default $SPIKEDYN_DATA or ./data)")
    add_data_option(p)
    from ..models import model_names

    p.add_argument(
        "--model", default=d.model, choices=model_names(),
        help="network family: mdn (MDN's three-layer net), brp (BRP's spiking conv nets; needs "
        "--model-option topology=mnist|cifar10|fsdd-1d|fsdd-2d|... or a topology string) or plif (PLIF's "
        "conv nets with voting: --model-option preset=mnist|fmnist|cifar10|nmnist|cifar10dvs|dvsgesture; "
        "static images with --data-option flatten=false --encoder direct) (default %(default)s)",
    )
    p.add_argument(
        "--model-option", action="append", metavar="KEY=VALUE",
        help="model builder option, repeatable (e.g. topology=CONV_32_5_1_2_FC_1000_FC_10; preset=cifar10, pool=avg, tau=16)",
    )
    p.add_argument(
        "--neuron", default=d.neuron, type=check_neuron_kind,
        help=f"neuron kind: {', '.join(NEURON_KINDS)}, or PRESETS.json:NAME (a meta neuron found by "
        "`spikedyn meta cluster`/`pipeline`) (default: the model's, mdn: 2nd-fs, brp: lif-identity, plif: plif)",
    )
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
    p.add_argument(
        "--rule", default=d.rule, choices=list(RULES),
        help="learning rule: " + "; ".join(f"{name}: {text}" for name, text in RULE_HELP.items())
        + " (default %(default)s)",
    )
    p.add_argument(
        "--encoder", default=None, choices=["rate", "direct"],
        help="input encoder (static data: data-set default; sequence data: stored values unless 'rate', "
        "which draws Bernoulli spikes from them every step)",
    )
    p.add_argument(
        "--input-view", default=d.input_view, choices=["native", "static"],
        help="static: flatten each sequence sample into one static vector fed every step (MDN Table 4 'non-sequential')",
    )
    p.add_argument(
        "--theta-per-batch-slot", action="store_true",
        help="MDN phase 1 as the authors' code: one learnable theta per batch slot and neuron (--neuron mdn)",
    )
    p.add_argument("--alpha", type=float, default=d.alpha, help="Bernoulli rate scale alpha (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default %(default)s)")
    p.add_argument(
        "--out", default=None,
        help="run directory (default runs/<dataset>-<neuron>-seed<seed>; runs/<dataset>-<neuron>-<rule>-seed<seed> "
        "for rules other than bptt)",
    )
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
    from ..train import TrainConfig, Trainer

    if args.allocator == "keep":
        from ..perf import keep_freed_memory

        keep_freed_memory()
    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values["data_options"] = parse_data_options(args.data_option)
    values["model_options"] = parse_data_options(args.model_option)
    values["fast"] = not args.reference
    values["progress"] = not args.quiet
    trainer = Trainer(TrainConfig(**values))
    cfg = trainer.config
    mc = trainer.model.config
    shape = getattr(trainer.model, "topology", None) or "-".join(str(mc[k]) for k in ("inputs", "hidden", "classes"))
    print(
        f"training {cfg.model} network {shape} of {cfg.neuron} neurons "
        f"on {cfg.dataset} ({len(trainer.dataset.train)} train / {len(trainer.dataset.test)} test), "
        f"T={cfg.steps}, batch {cfg.batch_size}, {cfg.epochs} epochs, rule {cfg.rule}, device {trainer.device}; "
        f"run dir {cfg.out}",
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
    from ..train import Batcher, evaluate, load_checkpoint, pick_device, run_dataset

    device = pick_device(args.device)
    model, config, ckpt = load_checkpoint(args.checkpoint, device=str(device))
    config.progress = False
    dataset = run_dataset(config, args.data_root)
    # the trainer scored the checkpoint of epoch k with the randomness of epoch index k - 1
    epoch = int(ckpt["epoch"])
    result = evaluate(model, Batcher(dataset, config, device), config, args.split, epoch=max(epoch - 1, 0))
    result.update({"checkpoint": args.checkpoint, "epoch": epoch, "split": args.split, "dataset": config.dataset})
    print(json.dumps(result, indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train a network (no arguments: the embedded digits demo)")
    _add_train_arguments(train)
    train.set_defaults(func=_train)
    ev = sub.add_parser("eval", help="evaluate a checkpoint")
    ev.add_argument("checkpoint", help="run directory or checkpoint.pt")
    ev.add_argument("--split", default="test", choices=["train", "test"])
    ev.add_argument("--data-root", default=None)
    ev.add_argument("--device", default="auto")
    ev.set_defaults(func=_eval)
