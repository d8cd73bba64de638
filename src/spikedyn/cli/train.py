"""``spikedyn train`` and ``spikedyn eval``.

Run directories and ``--resume`` (the same text closes ``spikedyn train --help``):

* Without ``--out`` a run goes to ``runs/<dataset>[-<model>]-<neuron>[-<rule>]-seed<seed>``.  When
  that directory already holds a checkpoint (the same command was run before) the new run goes
  to the first of ``...-2``, ``...-3``, ... without one, and the command says which.
* ``--out DIR`` naming a directory that holds a checkpoint is refused unless ``--resume`` is given.
* ``--resume`` continues the run in ``--out`` (or in the default directory of the flags given)
  and refuses a directory without a checkpoint.  Every setting comes from the run's
  ``config.json``; a flag given on the command line must agree with it, except ``--epochs`` (to
  extend the run), ``--device``, ``--eval-batch-size``, ``--data-root``, ``--log``,
  ``--checkpoint-minutes``, and the per-invocation ``--quiet``, ``--reference`` and ``--allocator``.

Which flags were given is known because the train parser's arguments default to
``argparse.SUPPRESS``: a flag not typed is absent from the parsed namespace, and
:class:`~spikedyn.train.TrainConfig` supplies its default.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, fields
from pathlib import Path

from ..neurons import NEURON_KINDS, check_neuron_kind
from ..surrogate import SURROGATE_SPEC_HELP, check_surrogate_assignment
from .options import add_data_option, parse_data_options


def _surrogate_assignment(text: str) -> str:
    """``--surrogate``'s type: one ``SPEC`` or ``LAYER=SPEC``, checked (argparse reports a bad one's message)."""
    try:
        return check_surrogate_assignment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    from ..learning import RULE_HELP, RULES
    from ..learning.reward import LOCAL_LOSSES
    from ..train import TrainConfig

    d = TrainConfig()  # the defaults; the parser's own are argparse.SUPPRESS (see the module docstring)
    p.add_argument("--dataset", help=f"data set name (see `spikedyn data list`; default {d.dataset})")
    p.add_argument("--data-root", help="folder holding the data sets (default $SPIKEDYN_DATA or ./data)")
    add_data_option(p)
    from ..models import model_names

    p.add_argument(
        "--model", choices=model_names(),
        help="network family: mdn (MDN's three-layer net), brp (BRP's spiking conv nets; needs "
        "--model-option topology=mnist|cifar10|fsdd-1d|fsdd-2d|... or a topology string) or plif (PLIF's "
        "conv nets with voting: --model-option preset=mnist|fmnist|cifar10|nmnist|cifar10dvs|dvsgesture; "
        f"static images with --data-option flatten=false --encoder direct) or nrr (NRR-SNN: recurrent "
        "adaptive-threshold layer(s) with a linear read-out at every step, trained per step; options hidden=500, "
        "layers=1, deep=true, sparseness=0.5, recurrent=false, adaptive=false, input_noise=P, spiking=false "
        "(the non-spiking tanh RNN baseline of the same sizes), ...; "
        "frame-labelled data such as "
        f"timit-phones) (default {d.model})",
    )
    p.add_argument(
        "--model-option", action="append", metavar="KEY=VALUE",
        help="model builder option, repeatable (e.g. topology=CONV_32_5_1_2_FC_1000_FC_10; preset=cifar10, pool=avg, tau=16)",
    )
    p.add_argument(
        "--neuron", type=check_neuron_kind,
        help=f"neuron kind: {', '.join(NEURON_KINDS)}, or PRESETS.json:NAME (a meta neuron found by "
        "`spikedyn meta cluster`/`pipeline`) (default: the model's, mdn: 2nd-fs, brp: lif-identity, plif: plif)",
    )
    p.add_argument("--hidden", type=int, help="hidden layer size, >= 1 (data-set default: 500)")
    p.add_argument("--steps", "-T", type=int, help="time steps T, >= 1 (data-set default)")
    p.add_argument("--epochs", type=int, help="epochs, >= 1 (data-set default); with --resume: the new total, to extend a run")
    p.add_argument("--batch-size", type=int, help="batch size, >= 1 (data-set default)")
    p.add_argument("--lr", type=float, help="Adam learning rate of weights, eta_W, > 0 (data-set default)")
    p.add_argument("--lr-dynamics", type=float, help="learning rate of neuron dynamics, eta_D, >= 0 (0: fixed dynamics)")
    p.add_argument("--schedule", choices=["step", "cosine"], help=f"learning-rate schedule (default {d.schedule})")
    p.add_argument("--cosine-period", type=int, help=f"T_max of the cosine schedule, in epochs (default {d.cosine_period})")
    p.add_argument("--lr-step", type=int, help=f"decay the learning rates every N epochs (default {d.lr_step})")
    p.add_argument("--lr-gamma", type=float, help=f"learning-rate decay factor (default {d.lr_gamma})")
    p.add_argument("--weight-decay", type=float,
                   help="decoupled weight decay of the weights, AdamW: p -= lr * wd * p every step (default 0: plain Adam)")
    p.add_argument(
        "--loss", choices=["rate-mse", "step-mse"],
        help="read-out loss (default: the model's read-out's: rate-mse; nrr: step-mse, per-step targets)",
    )
    p.add_argument(
        "--rule", choices=list(RULES),
        help="learning rule: " + "; ".join(f"{name}: {text}" for name, text in RULE_HELP.items())
        + f" (default {d.rule})",
    )
    p.add_argument(
        "--local-loss", choices=list(LOCAL_LOSSES),
        help="reward rules (brp, err, sign): a hidden layer's loss: inject (the authors' code: the projected "
        "signal G_l as its spikes' gradient) or difference (the paper's Eq. 8-9: 1/2 ||S_l(t) - G_l||^2, the "
        f"spikes pulled toward G_l) (default {d.local_loss})",
    )
    p.add_argument(
        "--surrogate", type=_surrogate_assignment, nargs="+", metavar="[LAYER=]SPEC",
        help="surrogate gradients (backward dS/dV; spikes unchanged): SPEC for every spiking layer, LAYER=SPEC for "
        "the layers of that module name (MDN net: neuron1 hidden, neuron2 output); SPEC is "
        + SURROGATE_SPEC_HELP + ", e.g. --surrogate neuron1=rect:0.1 (default: each neuron kind's own)",
    )
    p.add_argument(
        "--encoder", choices=["rate", "direct"],
        help="input encoder (static data: data-set default; sequence data: stored values unless 'rate', "
        "which draws Bernoulli spikes from them every step)",
    )
    p.add_argument(
        "--input-view", choices=["native", "static"],
        help="static: flatten each sequence sample into one static vector fed every step (MDN Table 4 'non-sequential')",
    )
    p.add_argument(
        "--theta-per-batch-slot", action="store_true",
        help="MDN phase 1 as the authors' code: one learnable theta per batch slot and neuron (--neuron mdn)",
    )
    p.add_argument(
        "--validation", type=float, metavar="FRACTION",
        help="hold out this fraction of each class's training samples (the last ones) and score them every epoch "
        "(val_accuracy in metrics.jsonl); the test score at the best validation epoch is PLIF's accuracy-B "
        f"(0.15); 0 = none (default {d.validation:g})",
    )
    from ..data.augment import AUGMENTATIONS

    p.add_argument(
        "--augment", choices=list(AUGMENTATIONS), metavar="NAME",
        help="image augmentation + normalisation per batch, before the encoder (images [C, H, W]: "
        "--data-option flatten=false; training batches augmented, every split normalised; needs "
        'pip install "spikedyn[augment]"): '
        + "; ".join(f"{name}: {pipe.description}" for name, pipe in AUGMENTATIONS.items())
        + " (default: none)",
    )
    from ..precision import PRECISIONS

    p.add_argument(
        "--precision", choices=PRECISIONS,
        help="fp32: float32 throughout; bf16: convolutions and matrix products in bfloat16 under autocast "
        "(float32 accumulation, parameters and neurons in float32), about 4x faster products on CPUs with AMX "
        f"and GPUs with bfloat16 tensor cores (default {d.precision})",
    )
    p.add_argument("--alpha", type=float, help=f"Bernoulli rate scale alpha, > 0 (default {d.alpha})")
    p.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    p.add_argument(
        "--out",
        help="run directory (default runs/<dataset>-<neuron>-seed<seed>; runs/<dataset>-<neuron>-<rule>-seed<seed> "
        "for rules other than bptt; a default directory that already holds a run gets a -2, -3, ... suffix, "
        "see below)",
    )
    p.add_argument(
        "--resume", action="store_true",
        help="continue the run in --out (or the default directory) from its checkpoint, with the settings of its "
        "config.json; an error when there is no checkpoint",
    )
    p.add_argument("--reference", action="store_true", help="use the per-step autograd reference path (slow)")
    p.add_argument("--device", help=f"cpu, cuda, cuda:1, mps or auto (default {d.device})")
    p.add_argument("--eval-batch-size", type=int, help=f"evaluation batch size, >= 1 (default {d.eval_batch_size})")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument(
        "--checkpoint-minutes", type=float, metavar="MIN",
        help="also checkpoint every MIN minutes inside an epoch, so that an interrupted long epoch resumes at "
        f"its last batch boundary exactly as if never stopped; 0: at the end of each epoch only (default "
        f"{d.checkpoint_minutes:g}; single-process runs)",
    )
    from ..tensorboard_log import LOG_FORMATS

    p.add_argument(
        "--log", nargs="+", choices=LOG_FORMATS, metavar="FORMAT",
        help="what to log per epoch: jsonl (metrics.jsonl, always written) and/or tensorboard (also event files "
        "under RUN/tensorboard/: losses, accuracies, learning rates, hidden firing rates and learned-dynamics "
        "histograms; needs pip install \"spikedyn[tensorboard]\"; view with tensorboard --logdir RUN/tensorboard) "
        f"(default {' '.join(d.log)})",
    )
    p.add_argument(
        "--allocator", choices=["keep", "default"],
        help="keep: glibc keeps freed memory, faster CPU training (default); default: leave malloc as it is",
    )


#: settings a resumed run may change; every other flag must agree with the run's config.json.
RESUME_MAY_CHANGE = ("epochs", "device", "eval_batch_size", "data_root", "progress", "fast", "log", "precision",
                     "checkpoint_minutes")
#: the command-line flag of a config field, where it is not ``--`` + the name with dashes.
_FLAGS = {"data_options": "--data-option", "model_options": "--model-option", "fast": "--reference", "progress": "--quiet"}


def _flag(key: str) -> str:
    return _FLAGS.get(key, "--" + key.replace("_", "-"))


def given_config_values(args: argparse.Namespace) -> dict:
    """The :class:`~spikedyn.train.TrainConfig` fields typed on the command line (nothing else)."""
    from ..train import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    values = {}
    for key, value in vars(args).items():
        if key == "data_option":
            values["data_options"] = parse_data_options(value)
        elif key == "model_option":
            values["model_options"] = parse_data_options(value)
        elif key in names:
            values[key] = value
    return values


def saved_run_config(run_dir: Path) -> dict:
    """The settings of the run in ``run_dir`` (its ``config.json``, else its checkpoint's) for ``--resume``."""
    from ..runfiles import read_checkpoint
    from ..train import TrainConfig

    checkpoint = run_dir / "checkpoint.pt"
    if not checkpoint.exists():
        raise FileNotFoundError(
            f"no checkpoint in {run_dir} to resume; drop --resume to start a new run there, "
            f"or pass the --out directory of the run to continue"
        )
    try:
        saved = json.loads((run_dir / "config.json").read_text())
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError):  # missing or damaged: the checkpoint holds the same settings
        saved = read_checkpoint(checkpoint)["config"]
    return asdict(TrainConfig.from_dict(saved))


def resume_values(run_dir: Path, given: dict) -> dict:
    """The saved run's settings with the flags ``given``; a conflicting run-defining flag is an error."""
    saved = saved_run_config(run_dir)
    conflicts = [
        f"{_flag(key)} {value!r} (the run has {key}={saved[key]!r})"
        for key, value in given.items()
        if key not in RESUME_MAY_CHANGE and key != "out" and value != saved.get(key)
    ]
    if conflicts:
        raise ValueError(
            f"cannot resume {run_dir} with other settings than it was trained with: {'; '.join(conflicts)}. "
            f"Drop those flags (--resume reads every setting from {run_dir / 'config.json'}; only --epochs, "
            f"--device, --eval-batch-size, --data-root, --log, --quiet, --checkpoint-minutes, --reference and "
            f"--allocator may change), "
            f"or start a new run with another --out."
        )
    return {**saved, **given, "out": str(run_dir)}


def fresh_run_dir(base: Path) -> Path:
    """``base`` if it holds no checkpoint, else the first of ``base-2``, ``base-3``, ... without one."""
    out, n = base, 2
    while (out / "checkpoint.pt").exists():
        out, n = base.with_name(f"{base.name}-{n}"), n + 1
    return out


def train_config(args: argparse.Namespace):
    """The run's :class:`~spikedyn.train.TrainConfig` (resolved) from the parsed ``train`` flags.

    Applies the run-directory and ``--resume`` rules of the module docstring.
    """
    from ..train import TrainConfig

    given = given_config_values(args)
    this_call = {"fast": not getattr(args, "reference", False), "progress": not getattr(args, "quiet", False)}
    resume = getattr(args, "resume", False)
    if resume or "out" not in given:
        default_out = Path(TrainConfig(**{**given, **this_call}).resolved().out)
    if resume:
        values = resume_values(Path(given.get("out", default_out)), given)
    else:
        values = dict(given)
        if "out" not in given:
            out = fresh_run_dir(default_out)
            if out != default_out:
                print(
                    f"{default_out} already holds a run (checkpoint.pt), so this run goes to {out}. "
                    f"To continue that run instead, add --resume; to choose the directory, pass --out.",
                    flush=True,
                )
            values["out"] = str(out)
    return TrainConfig(**{**values, **this_call}).resolved()


def _train(args: argparse.Namespace) -> int:
    from ..distributed import broadcast_object, init_from_env, launched_by_torchrun
    from ..devices import pick_device
    from ..train import TrainConfig, Trainer

    if getattr(args, "allocator", "keep") == "keep":
        from ..perf import keep_freed_memory

        keep_freed_memory()
    resume = getattr(args, "resume", False)
    if launched_by_torchrun():  # data parallel: rank 0 picks the run directory, the others follow it
        ctx = init_from_env(pick_device(getattr(args, "device", TrainConfig().device)))
        try:
            config = broadcast_object(train_config(args) if ctx.is_main else None, ctx)
            return _fit(Trainer(config), resume, ctx.is_main, ctx.world_size)
        finally:
            import gc

            import torch.distributed as dist

            # free the trainer (its DistributedDataParallel reducer holds the process group and gloo work
            # objects) while the interpreter is fully alive: left to interpreter shutdown, gloo's threads can
            # abort the process ("terminate called without an active exception")
            gc.collect()
            if dist.is_initialized():
                dist.destroy_process_group()
    return _fit(Trainer(train_config(args)), resume, True, 1)


def _fit(trainer, resume: bool, main: bool, processes: int) -> int:
    """Train (or resume) ``trainer``'s run, printing the header and the result on rank 0 only."""
    cfg = trainer.config
    mc = trainer.model.config
    shape = getattr(trainer.model, "topology", None) or "-".join(str(mc[k]) for k in ("inputs", "hidden", "classes"))
    parallel = f" x {processes} processes (torchrun, batch shared)" if processes > 1 else ""
    if trainer.device.type == "cuda":  # which neuron implementation the GPU run takes
        from .info import kernel_line

        parallel = f" [{kernel_line('cuda')}]" + parallel
    if main:
        print(
            f"training {cfg.model} network {shape} of {cfg.neuron} neurons "
            f"on {cfg.dataset} ({len(trainer.dataset.train)} train / {len(trainer.dataset.test)} test), "
            f"T={cfg.steps}, batch {cfg.batch_size}, {cfg.epochs} epochs, rule {cfg.rule}, "
            f"device {trainer.device}{parallel}; run dir {cfg.out}",
            flush=True,
        )
    from ..train import TrainingStopped

    try:
        history = trainer.fit(resume=resume)
    except TrainingStopped as stop:
        if main:
            print(
                f"\nstopped (SIGTERM) inside epoch {stop.epoch + 1} after {stop.batch} batch(es); the checkpoint "
                f"holds that moment. Continue with: spikedyn train --out {cfg.out} --resume",
                file=sys.stderr,
            )
        return 143
    except KeyboardInterrupt:
        done = trainer.epoch
        if main:
            print(
                f"\ninterrupted during epoch {done + 1}; the checkpoint holds {done} finished epoch(s). "
                f"Continue with: spikedyn train --out {cfg.out} --resume",
                file=sys.stderr,
            )
        return 130
    if history and main:
        best = max(h["test_accuracy"] for h in history)
        print(f"final test accuracy {100 * history[-1]['test_accuracy']:.2f}%  (best {100 * best:.2f}%)")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from ..analysis.runs import load_run
    from ..batching import Batcher
    from ..devices import pick_device
    from ..train import evaluate

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1 (the time steps each test sample is presented for), got {args.steps}")
    loaded = load_run(args.checkpoint, args.data_root, str(pick_device(args.device)))
    config = loaded.config
    trained_steps = config.steps
    if args.steps is not None:
        config.steps = args.steps
    # the trainer scored the checkpoint of epoch k with the randomness of epoch index k - 1
    result = evaluate(loaded.model, Batcher(loaded.dataset, config, loaded.device), config, args.split,
                      epoch=max(loaded.epoch - 1, 0))
    result.update({"checkpoint": args.checkpoint, "epoch": loaded.epoch, "split": args.split, "dataset": config.dataset,
                   "steps": config.steps, "trained_steps": trained_steps})
    print(json.dumps(result, indent=2))
    return 0


_RUN_DIR_HELP = """\
run directories:
  Without --out a run goes to runs/<dataset>-<neuron>-seed<seed>; when that directory already
  holds a run (checkpoint.pt), the new run goes to the first free <dir>-2, <dir>-3, ... and the
  command says which.  An --out directory holding a checkpoint needs --resume.

resuming:
  --resume continues the run in --out (or in the default directory of the flags given) from its
  checkpoint; a directory without one is an error.  Every setting comes from the run's
  config.json.  Flags typed with --resume must agree with it, except --epochs (the new total,
  to extend the run), --device, --eval-batch-size, --data-root, --log, --checkpoint-minutes,
  --quiet, --reference and --allocator.  A long epoch is also checkpointed every
  --checkpoint-minutes (15 by default), and a run stopped inside an epoch resumes at the last
  such checkpoint exactly as if it had never stopped.

logging:
  metrics.jsonl (one JSON object per epoch) is always written.  --log tensorboard also writes
  TensorBoard event files under RUN/tensorboard/ (pip install "spikedyn[tensorboard]"; view
  with `tensorboard --logdir RUN/tensorboard`); a resumed run appends to them.
"""


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser(
        "train", help="train a network (no arguments: the embedded digits demo)",
        argument_default=argparse.SUPPRESS,  # a flag not typed is absent: see the module docstring
        epilog=_RUN_DIR_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_arguments(train)
    train.set_defaults(func=_train)
    ev = sub.add_parser("eval", help="evaluate a checkpoint")
    ev.add_argument("checkpoint", help="run directory or checkpoint.pt")
    ev.add_argument("--split", default="test", choices=["train", "test"])
    ev.add_argument("--data-root", default=None)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--steps", "-T", type=int, default=None,
                    help="present each sample for this many time steps instead of the run's T (accuracy against "
                         "latency; static data: the encoder draws that many steps; sequences: at most the steps stored)")
    ev.set_defaults(func=_eval)
