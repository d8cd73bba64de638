"""The trainer: surrogate-gradient training of the MDN-style networks under a learning rule.

One epoch = shuffle, encode each batch into ``[T, B, ...]``, forward, the rule's loss against
the one-hot target, backward through time (the neurons' hand-written BPTT), Adam step.  The
learning rule (``rule``, :mod:`spikedyn.learning`) turns the forward pass into the loss: ``bptt``
is the read-out loss (rate/step MSE) alone, backpropagated through all layers; ``brp``, ``err``
and ``sign`` (reward propagation) detach every hidden layer's input and add each layer's projected
teaching signal.  ``train_loss`` and evaluation always report the read-out loss.  Weights
and learnable neuron dynamics are separate Adam parameter groups (``lr`` = eta_W,
``lr_dynamics`` = eta_D); the learning rate decays by ``lr_gamma`` every ``lr_step`` epochs
(the MDN authors' StepLR(50, 0.1)), or follows PLIF's cosine schedule (``schedule="cosine"``).  Prediction = argmax of the output firing rate.

The score of the read-out belongs to the data set (:mod:`spikedyn.metrics`): class accuracy,
or MDN's NETtalk cosine score; ``metrics.jsonl`` names it when it is not plain accuracy.
The model's read-out (:mod:`spikedyn.readout`, its ``readout_kind``) turns labels into targets
and picks the loss and the metric: a spiking output layer is scored by its rate against one
target per sample; NRR's non-spiking read-out at every step against per-step targets (the
class repeated, or each frame's label with padded frames masked out), scored by frame accuracy
with the per-sample accuracy beside it (``train_sample_accuracy``, ``test_sample_accuracy``).

MDN phase 1 (learning the dynamics): when the network has learnable theta (``--neuron mdn``),
the theta of every layer is appended after every epoch to ``theta_history.pt`` in the run
directory (epoch 0 = the initial values), so that clustering can pick any epoch later.
``theta_per_batch_slot`` gives theta the authors' ``[batch, N]`` shape (spec mdn.md 4.1).

Surrogate gradients: ``surrogate`` replaces the neuron kinds' own surrogate gradients, in every
spiking layer (``"rect:0.25"``) or in the layers of one name (``"neuron1=rect:0.25"``), see
:func:`spikedyn.surrogate.set_surrogates`; resume and ``load_checkpoint`` apply it again.

Reproducibility and resume: every epoch draws its shuffling and encoding randomness from a
generator seeded with ``(seed, epoch)``, so a run resumed from the checkpoint of epoch k
continues exactly as the uninterrupted run would (the draws of an ``augment`` pipeline too).
Image augmentation and normalisation (``augment``, :mod:`spikedyn.data.augment`) are applied per
batch before the encoder: training batches augmented and normalised, the other splits only
normalised.  The run directory holds ``config.json``,
``metrics.jsonl`` (one JSON object per epoch) and ``checkpoint.pt`` (written atomically after
every epoch); with ``log=["jsonl", "tensorboard"]`` also TensorBoard event files under
``tensorboard/`` (scalars, hidden firing rates and learned-dynamics histograms per epoch, see
:mod:`spikedyn.tensorboard_log`).

Bad settings are refused early, by :meth:`TrainConfig.resolved` (so the Python API and the
command line share the checks), with a message naming the setting, the bad value and the fix:
sizes and counts (``batch_size``, ``steps``, ``epochs``, ``hidden``, ``eval_batch_size``,
``lr_step``, ``cosine_period``) must be positive integers, ``lr``, ``alpha`` and ``lr_gamma``
positive finite numbers, ``lr_dynamics`` and ``weight_decay`` finite numbers >= 0 (0 keeps the dynamics
fixed, adds no decay), and
``device`` one of ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``.  ``epochs=0`` is an error too: a run
trains at least one epoch (``spikedyn eval`` scores a run without training).  Whether the device
is usable on this machine is checked when the trainer starts (:func:`~spikedyn.devices.pick_device`).  A
checkpoint that cannot be read raises :class:`~spikedyn.runfiles.CheckpointError` (a ``ValueError``) naming the
file, how far ``metrics.jsonl`` says the run got, and what to do.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .batching import Batcher, epoch_generator, prepare_dataset, run_dataset
from .data import SpikeDataset
from .data.augment import check_augment, require_kornia
from .devices import parse_device, pick_device
from .distributed import SINGLE, DistContext, init_from_env, rank_device
from .learning import check_rule, make_rule
from .losses import LOSSES
from .models import MDNNet
from .models.registry import build_model as build_registered_model
from .models.registry import model_entry, rebuild_model
from .neurons.base import label_neuron_layers, read_deferred_state_checks
from .precision import autocast, check_precision, warn_if_emulated
from .progress import bar_disabled
from .readout import readout_of
from .runfiles import CheckpointError, atomic_save, read_checkpoint, write_text_atomic
from .surrogate import check_surrogate_assignments, set_surrogates
from .tensorboard_log import TENSORBOARD_DIR, TensorBoardLog, log_formats, require_tensorboard, tap_firing_rates

#: the authors' per-data-set settings (spec mdn.md section 3): T, batch, eta_W, eta_D, hidden.
DATASET_DEFAULTS: dict[str, dict] = {
    "digits": {"steps": 20, "batch_size": 50, "lr": 1e-3, "lr_dynamics": 1e-3, "hidden": 500, "epochs": 30},
    "mnist": {"steps": 20, "batch_size": 100, "lr": 1e-3, "lr_dynamics": 1e-3, "hidden": 500},
    "fmnist": {"steps": 20, "batch_size": 100, "lr": 1e-3, "lr_dynamics": 1e-3, "hidden": 500},
    "cifar10": {"steps": 20, "batch_size": 100, "lr": 1e-4, "lr_dynamics": 1e-3, "hidden": 1500},
    "nettalk": {"steps": 20, "batch_size": 5, "lr": 1e-3, "lr_dynamics": 1e-3, "hidden": 500},
    "nmnist": {"steps": 20, "batch_size": 100, "lr": 1e-3, "lr_dynamics": 1e-3, "hidden": 500},
    "tidigits": {"steps": 30, "batch_size": 10, "lr": 1e-2, "lr_dynamics": 1e-4, "hidden": 500},
    "fsdd": {"steps": 30, "batch_size": 10, "lr": 1e-2, "lr_dynamics": 1e-4, "hidden": 500},
    "timit-gender": {"steps": 20, "batch_size": 32, "lr": 1e-3, "lr_dynamics": 1e-3, "hidden": 500},
    # frame-labelled (NRR, spec nrr.md section 4): each batch is cut to its longest utterance (<= 780 frames)
    "timit-phones": {"steps": 780, "batch_size": 50, "lr": 1e-3, "lr_dynamics": 1e-3, "hidden": 500},
    # event frames stored with a fixed count: the default T is the stored one, never more (PLIF spec plif.md
    # section 3: N-MNIST 10, DVS 20, batch 16, Adam 1e-3; BRP's DvsGesture: first 30 of 100 frames, batch 50)
    "nmnist-plif": {"steps": 10, "batch_size": 16, "lr": 1e-3, "lr_dynamics": 1e-3, "hidden": 500},
    "cifar10dvs": {"steps": 20, "batch_size": 16, "lr": 1e-3, "lr_dynamics": 1e-3, "hidden": 500},
    "dvsgesture-plif": {"steps": 20, "batch_size": 16, "lr": 1e-3, "lr_dynamics": 1e-3, "hidden": 500},
    "dvsgesture": {"steps": 30, "batch_size": 50, "lr": 1e-4, "lr_dynamics": 1e-4, "hidden": 500},
}
FALLBACK_DEFAULTS = {"steps": 20, "batch_size": 100, "lr": 1e-3, "lr_dynamics": 1e-3, "hidden": 500, "epochs": 80}


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json`` in the run directory).

    ``None`` means "the data set's default" (:data:`DATASET_DEFAULTS`).
    """

    dataset: str = "digits"
    data_root: str | None = None
    data_options: dict = field(default_factory=dict)  # loader keyword options, e.g. {"split": "speaker"}
    model: str = "mdn"  # network family (spikedyn.models.registry): mdn, brp
    model_options: dict = field(default_factory=dict)  # builder options, e.g. {"topology": "mnist"} for brp
    neuron: str | None = None  # None: the model's default (mdn: 2nd-fs, brp: lif-identity)
    hidden: int | None = None
    steps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_dynamics: float | None = None
    schedule: str = "step"  # "step": StepLR(lr_step, lr_gamma) (MDN); "cosine": CosineAnnealingLR(cosine_period) (PLIF)
    lr_step: int = 50
    lr_gamma: float = 0.1
    # decoupled weight decay of the weights group (AdamW: p -= lr * weight_decay * p each step); 0: plain Adam
    weight_decay: float = 0.0
    cosine_period: int = 64
    loss: str | None = None  # None: the model's read-out's (spikedyn.readout): rate-mse; nrr: step-mse
    rule: str = "bptt"  # learning rule (spikedyn.learning.RULES): bptt, brp, err, sign
    # reward rules' hidden-layer loss: "inject" (the authors' code: G_l as the spikes' gradient) or "difference"
    # (the paper's Eq. 8-9: the spikes pulled toward G_l; spikedyn.learning.reward)
    local_loss: str = "inject"
    # surrogate gradients: "SPEC" for every spiking layer, "LAYER=SPEC" for the layers named LAYER (module
    # names: neuron1, ...), SPEC such as "rect:0.25" or "atan:2" (spikedyn.surrogate); []: each neuron kind's own
    surrogate: list[str] = field(default_factory=list)
    encoder: str | None = None  # None: the data set's (static data) / the stored values (sequence data)
    alpha: float = 1.0
    input_view: str = "native"  # "static": sequence samples flattened into one static vector (MDN Table 4)
    theta_per_batch_slot: bool = False  # MDN authors' [batch, N] theta (neuron "mdn" only)
    validation: float = 0.0  # fraction of each class's train samples held out to pick an epoch (PLIF accuracy-B)
    precision: str = "fp32"  # "bf16": synaptic products in bfloat16 under autocast, neurons in float32 (spikedyn.precision)
    augment: str | None = None  # image pipeline of spikedyn.data.augment (plif-mnist, ...); None: the images as loaded
    seed: int = 3154
    out: str | None = None
    fast: bool = True
    device: str = "auto"
    eval_batch_size: int = 500
    progress: bool = True
    # minutes between checkpoints inside an epoch (a long CPU epoch interrupted resumes at its last batch
    # boundary, bitwise as if never stopped); 0: a checkpoint at the end of each epoch only
    checkpoint_minutes: float = 15.0
    # what to log besides metrics.jsonl (always written): ["jsonl", "tensorboard"] adds RUN/tensorboard/ event files
    log: list[str] = field(default_factory=lambda: ["jsonl"])

    def resolved(self) -> "TrainConfig":
        """A copy with every ``None`` replaced by the data set's default, checked.

        Raises ``ValueError`` naming the setting and the fix for a value no run can use (see
        the module docstring for the rules).
        """
        defaults = {**FALLBACK_DEFAULTS, **DATASET_DEFAULTS.get(self.dataset, {})}
        values = asdict(self)
        for key in ("hidden", "steps", "epochs", "batch_size", "lr", "lr_dynamics"):
            if values[key] is None:
                values[key] = defaults[key]
        check_settings(values, defaults)
        check_rule(self.rule)
        make_rule(self.rule, self.local_loss)  # a local loss the rule has not: the error names the fix
        values["augment"] = check_augment(self.augment)
        values["surrogate"] = check_surrogate_assignments(self.surrogate)
        check_precision(self.precision)
        values["log"] = log_formats(self.log)
        entry = model_entry(self.model)
        if values["neuron"] is None:
            values["neuron"] = entry.default("neuron")
        if values["loss"] is None:
            values["loss"] = readout_of(entry.model_class).default_loss
        if values["out"] is None:
            rule = "" if self.rule == "bptt" else f"-{self.rule}"
            model = "" if self.model == "mdn" else f"-{self.model}"
            values["out"] = str(Path("runs") / f"{self.dataset}{model}-{values['neuron']}{rule}-seed{self.seed}")
        if values["loss"] not in LOSSES:
            raise ValueError(f"unknown loss {values['loss']!r}; choose one of {sorted(LOSSES)}")
        if self.input_view not in ("native", "static"):
            raise ValueError(f"unknown input_view {self.input_view!r}; choose 'native' or 'static'")
        if self.schedule not in ("step", "cosine"):
            raise ValueError(f"unknown schedule {self.schedule!r}; choose 'step' or 'cosine'")
        c = self.checkpoint_minutes
        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not c >= 0.0 or math.isinf(c):
            raise ValueError(
                f"checkpoint_minutes (--checkpoint-minutes), the minutes between checkpoints inside an epoch, must be "
                f"a finite number >= 0 (0: a checkpoint at the end of each epoch only), got {c!r}."
            )
        v = self.validation
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0.0 <= v < 1.0:
            raise ValueError(
                f"validation (--validation), the fraction of each class's training samples held out to select "
                f"the epoch, must be a number in [0, 1) (0: no validation split; PLIF's accuracy-B uses 0.15), got {v!r}."
            )
        if self.theta_per_batch_slot and values["neuron"] != "mdn":
            raise ValueError(
                f"theta_per_batch_slot applies to the learnable MDN neuron only (--neuron mdn), not {values['neuron']!r}"
            )
        return TrainConfig(**values)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


#: (setting, command-line flag, what it is) of the settings that must be positive integers.
_POSITIVE_INTS = (
    ("batch_size", "--batch-size", "the batch size"),
    ("steps", "--steps", "the number of time steps T"),
    ("epochs", "--epochs", "the number of epochs"),
    ("hidden", "--hidden", "the hidden layer size"),
    ("eval_batch_size", "--eval-batch-size", "the evaluation batch size"),
    ("lr_step", "--lr-step", "the learning-rate decay period in epochs"),
    ("cosine_period", "--cosine-period", "the cosine schedule's period in epochs"),
)
#: (setting, flag, what it is, smallest value, whether the smallest value is allowed).
_NUMBERS = (
    ("lr", "--lr", "the learning rate of the weights (eta_W)", 0.0, False),
    ("lr_dynamics", "--lr-dynamics", "the learning rate of the neuron dynamics (eta_D; 0 keeps them fixed)", 0.0, True),
    ("alpha", "--alpha", "the Bernoulli rate scale alpha", 0.0, False),
    ("lr_gamma", "--lr-gamma", "the learning-rate decay factor", 0.0, False),
    ("weight_decay", "--weight-decay", "the decoupled weight decay of the weights (0: none)", 0.0, True),
)


def check_settings(values: dict, defaults: dict | None = None) -> None:
    """Refuse run settings no run can use (``values``: a config as a dict, defaults filled in).

    The message names the setting (Python name and command-line flag), the value and the fix.
    """
    defaults = defaults or {}
    for key, flag, what in _POSITIVE_INTS:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            if key == "epochs" and isinstance(value, numbers.Integral) and value == 0:
                raise ValueError(
                    f"{key} ({flag}) is 0, so nothing would be trained: a run trains at least one epoch. "
                    f"Pass {flag} N with N >= 1; to score a trained run without training, use `spikedyn eval RUN_DIR`."
                )
            default = f" (the data set's default is {defaults[key]})" if key in defaults else ""
            raise ValueError(
                f"{key} ({flag}), {what}, must be a positive integer, got {value!r}; pass {flag} N with N >= 1{default}."
            )
    for key, flag, what, low, inclusive in _NUMBERS:
        value = values[key]
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value >= low if inclusive else value > low)
        if not ok:
            bound = f">= {low:g}" if inclusive else f"> {low:g}"
            default = f" (the data set's default is {defaults[key]:g})" if key in defaults else ""
            raise ValueError(f"{key} ({flag}), {what}, must be a finite number {bound}, got {value!r}{default}.")
    if isinstance(values["seed"], bool) or not isinstance(values["seed"], numbers.Integral):
        raise ValueError(f"seed (--seed) must be an integer, got {values['seed']!r}.")
    parse_device(values["device"])




#: the progress bar's running loss is refreshed every this many batches (each refresh reads it from the device)
POSTFIX_EVERY = 20


def sum_dtype(device: torch.device) -> torch.dtype:
    """dtype of the running sums of a loss over an epoch: float64, except on MPS, which has none."""
    return torch.float32 if device.type == "mps" else torch.float64


def global_rng_state(device: torch.device) -> dict:
    """PyTorch's global random states (CPU, and ``device``'s when it is a GPU): what dropout draws from."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_global_rng(state: dict, device: torch.device) -> None:
    """Put the global random states of :func:`global_rng_state` back (the GPU's on ``device``)."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def move_to(value, device: torch.device):
    """``value`` (tensors, possibly inside dicts, lists and tuples) with every tensor moved to ``device``."""
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: move_to(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(move_to(v, device) for v in value)
    return value



def build_model(config: TrainConfig, dataset: SpikeDataset) -> nn.Module:
    """The run's network from the model registry, for the data set's per-step shape and classes.

    The run settings a builder takes (``hidden``, ``neuron``, ``fast``, ``neuron_options``) come
    from the config; ``model_options`` add to them (and win).
    """
    settings = {
        "hidden": config.hidden,
        "neuron": config.neuron,
        "fast": config.fast,
        "neuron_options": {"theta_slots": config.batch_size} if config.theta_per_batch_slot else None,
    }
    accepted = model_entry(config.model).options()
    options = {k: v for k, v in settings.items() if k in accepted}
    options.update(config.model_options)
    model = build_registered_model(config.model, dataset.feature_shape, dataset.num_classes, **options)
    set_surrogates(model, config.surrogate)
    return model


def make_adam(groups: list[dict]) -> torch.optim.Optimizer:
    """Adam over ``groups``, with PyTorch's fused implementation where every parameter allows it;
    AdamW (decoupled weight decay, ``p -= lr * weight_decay * p`` before the Adam step) when a group
    has a ``weight_decay`` above 0.

    The fused step updates each tensor in one pass (``m = b1 m + (1 - b1) g``,
    ``v = b2 v + (1 - b2) g^2``, ``p -= lr m_hat / (sqrt(v_hat) + eps)``) instead of about seven,
    which on a CPU makes the step of a large net several times faster (13 M parameters: 156 ms ->
    21 ms on one core); it matches the per-tensor loop to float rounding (within 1 ulp of the
    parameters).  Parameters on other devices or of other types keep the default implementation.
    """
    params = [p for group in groups for p in group["params"]]
    fusable = bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    kind = torch.optim.AdamW if any(group.get("weight_decay", 0.0) > 0 for group in groups) else torch.optim.Adam
    if kind is torch.optim.AdamW:  # AdamW's own default decay (0.01) must not reach the other groups
        groups = [{"weight_decay": 0.0, **group} for group in groups]
    return kind(groups, fused=True) if fusable else kind(groups)


def build_optimizer(model: MDNNet, config: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    groups = [{"params": model.weight_parameters(), "lr": config.lr, "name": "weights"}]
    if config.weight_decay:
        groups[0]["weight_decay"] = config.weight_decay
    dynamics = model.dynamic_parameters()
    if dynamics:
        groups.append({"params": dynamics, "lr": config.lr_dynamics, "name": "dynamics"})
    optimizer = make_adam(groups)
    if config.schedule == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    elif config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.cosine_period)
    else:
        raise ValueError(f"unknown schedule {config.schedule!r}; choose 'step' or 'cosine'")
    return optimizer, scheduler


@torch.no_grad()
def evaluate(
    model: nn.Module, batcher: Batcher, config: TrainConfig, split: str = "test", epoch: int = 0,
    ctx: DistContext = SINGLE,
) -> dict:
    """Loss and score of ``model`` on a split after training epoch index ``epoch`` (0-based).

    The encoding randomness comes from :func:`~spikedyn.batching.epoch_generator` ``(seed, epoch, 1)``, so the
    trainer's evaluation after epoch ``k`` and ``spikedyn eval`` of that checkpoint agree.
    ``accuracy`` holds the data set's metric (``metric`` names it), chosen by the model's read-out
    (:mod:`spikedyn.readout`); the metric's further scores (a per-step read-out's
    ``sample_accuracy``) are added by name; ``output_active`` counts the output layer's non-zero entries
    (spikes, or a voting layer's non-zero votes) over the split and ``hidden_active`` the spikes of each
    tapped hidden layer, in tap order (padded frames left out; 0: a silent layer).  In a data-parallel run
    (``ctx``) every process scores its share of each batch and all of them get the totals.
    """
    model.eval()
    readout = readout_of(model)
    readout.check(batcher.dataset, config.loss)
    generator = epoch_generator(config.seed, epoch, purpose=1)
    metric = readout.metric(batcher.dataset, config.batch_size)
    total, loss_sum = 0, 0.0
    active: list = []  # non-zero outputs, then the spikes of each tapped hidden layer
    for x, y in batcher.batches(split, config.eval_batch_size, generator, shuffle=False):
        rows, count = ctx.rows(len(y)) if ctx.enabled else (slice(None), len(y))
        with autocast(config.precision, x.device):
            out = model(x[:, rows] if ctx.enabled else x)
        mine = y[rows]
        target = readout.target(mine, batcher.dataset, out.rate.dtype, out.spikes.shape[0])
        loss = readout.loss_fn(config.loss, target)(out.spikes, target.values)
        loss_sum = loss.to(sum_dtype(loss.device)) * count + loss_sum  # summed on the device: no sync per batch
        mask = None if target.mask is None else target.mask[:, :count]
        counts = [_frame_total(s[:, :count], mask, loss.device) for s in (out.spikes != 0, *out.taps)]
        active = [c + a for c, a in zip(counts, active)] if active else counts
        metric.update(ctx.gather_rows(readout.scores(out)[:count], len(y)), y)
        total += len(y)
    loss_sum, *active = ctx.sum([float(loss_sum), *map(float, active)], batcher.device)
    model.train()
    return {"loss": loss_sum / total, "accuracy": metric.value(), "metric": metric.name, **metric.extras(),
            "output_active": active[0], "hidden_active": active[1:]}


def _frame_total(values: Tensor, mask: Tensor | None, device: torch.device) -> Tensor:
    """The sum of ``values`` ``[T, B, ...]`` over the frames that count (``mask`` ``[T, B]``: padded frames of a
    sequence batch are left out, so padding changes no count); summed per frame first, so a large layer needs
    no second tensor of its size."""
    per_frame = values.detach().flatten(2).sum(-1, dtype=sum_dtype(device))
    return (per_frame if mask is None else per_frame * mask).sum()


#: the keys of a train/evaluate summary that are not a metric's extras
_SCORE_KEYS = ("loss", "accuracy", "metric", "parts", "output_active", "hidden_active")


def silent_layers(scores: dict) -> list[str]:
    """The layers that fired no spike in an :func:`evaluate` summary: ``"the output layer"``, ``"hidden layer K"``."""
    named = [("the output layer", scores["output_active"])]
    hidden = scores["hidden_active"]
    named += [(f"hidden layer {k}" + (f" of {len(hidden)}" if len(hidden) > 1 else ""), n) for k, n in enumerate(hidden, 1)]
    return [name for name, n in named if n == 0]


def silent_layers_warning(epoch: int, split: str, layers: list[str]) -> str:
    """What the trainer prints, once per layer, when ``layers`` fired no spike on a whole split after ``epoch``."""
    return (
        f"warning: after epoch {epoch} {' and '.join(layers)} fired no spike on the whole {split} set. A layer "
        f"whose membranes lie far below threshold passes almost no surrogate gradient, so the net may not leave "
        f"chance; if this persists, rerun with a lower --lr (or another --seed)."
    )


def dynamics_summary(model: nn.Module) -> dict[str, float | list[float]]:
    """Learned neuron dynamics per layer for ``metrics.jsonl``: a scalar as is (PLIF's tau), a
    per-neuron tensor ``[P, ...]`` as the mean of each of its ``P`` parameters over the neurons
    (MDN's theta_a..theta_d)."""
    learned = getattr(model, "learned_dynamics", None)
    out: dict[str, float | list[float]] = {}
    for name, value in (learned() if learned is not None else {}).items():
        value = value.detach().float()
        out[name] = float(value) if value.dim() == 0 else [float(v) for v in value.flatten(1).mean(1)]
    return out



class TrainingStopped(KeyboardInterrupt):
    """Training stopped on request (SIGTERM, e.g. a batch system's pre-emption) at a batch boundary, after
    a checkpoint of that moment was written; ``--resume`` continues from it as if never stopped."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch
        super().__init__(f"stopped inside epoch {epoch + 1} after {batch} batch(es); checkpoint saved")



class Trainer:
    """Runs (or resumes) a training run described by a :class:`TrainConfig`."""

    def __init__(self, config: TrainConfig, dataset: SpikeDataset | None = None) -> None:
        self.config = config.resolved()
        if "tensorboard" in self.config.log:
            require_tensorboard()  # a missing package stops the run before any data is loaded
        if self.config.augment is not None:
            require_kornia(self.config.augment)
        self.dist = init_from_env(pick_device(self.config.device))
        self.device = rank_device(pick_device(self.config.device), self.dist)
        warn_if_emulated(self.config.precision, self.device)
        if self.dist.enabled and self.config.theta_per_batch_slot:
            raise ValueError(
                "theta_per_batch_slot ties theta to batch slots, which data parallel training splits over "
                f"{self.dist.world_size} processes; train it in one process, or drop --theta-per-batch-slot"
            )
        self.dataset = run_dataset(self.config) if dataset is None else prepare_dataset(dataset, self.config)
        self.batcher = Batcher(self.dataset, self.config, self.device)
        torch.manual_seed(self.config.seed)
        self.model = build_model(self.config, self.dataset).to(self.device)
        label_neuron_layers(self.model)  # neuron warnings name the layer
        self.readout = readout_of(self.model)  # targets, loss, scores and metric of the model's read-out
        self.readout.check(self.dataset, self.config.loss)
        self.rule = make_rule(self.config.rule, self.config.local_loss)
        self.taps = self.rule.attach(self.model)
        self._warned_silent: set[str] = set()  # layers already reported silent (each once per run)
        self.net = self.dist.wrap(self.model, self.device)  # the model, or its DDP wrapper (gradient averaging)
        self.optimizer, self.scheduler = build_optimizer(self.model, self.config)
        self.epoch = 0  # epochs completed
        self.history: list[dict] = []
        self.partial_epoch: dict | None = None  # set by resume() from a checkpoint written inside an epoch
        self._stop_requested = False  # set by SIGTERM during fit(): stop at the next batch boundary
        self._epoch_start, self._epoch_seconds = time.perf_counter(), 0.0
        self.out = Path(self.config.out)

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    @property
    def theta_history_path(self) -> Path:
        return self.out / "theta_history.pt"

    def record_dynamics(self) -> None:
        """Append the learnable theta after ``self.epoch`` epochs to ``theta_history.pt`` (atomic)."""
        dynamics = self.model.learned_dynamics()
        if not dynamics:
            return
        history = {"epochs": [], "theta": {}, "dataset": self.config.dataset, "neuron": self.config.neuron}
        if self.theta_history_path.exists():
            try:
                history = torch.load(self.theta_history_path, weights_only=False)
            except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways
                raise CheckpointError(
                    f"{self.theta_history_path} (the learned theta after every epoch) is damaged and cannot be read "
                    f"({type(exc).__name__}); delete it to start the history afresh from this epoch on, or put back "
                    f"a saved copy."
                ) from None
            keep = [i for i, e in enumerate(history["epochs"]) if e < self.epoch]  # a redone epoch replaces its entry
            history["epochs"] = [history["epochs"][i] for i in keep]
            history["theta"] = {k: v[keep] for k, v in history["theta"].items()}
        history["epochs"].append(self.epoch)
        for name, theta in dynamics.items():
            old = history["theta"].get(name)
            history["theta"][name] = theta[None] if old is None else torch.cat([old, theta[None]])
        atomic_save(history, self.theta_history_path)

    def state(self) -> dict:
        return {
            "config": asdict(self.config),
            "model": self.model.state_dict(),
            "model_name": self.config.model,
            "model_config": self.model.config,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "history": self.history,
        }

    def _catch_sigterm(self):
        """In a single-process run on the main thread, make SIGTERM a request to stop at the next batch
        boundary (checkpoint written, :class:`TrainingStopped` raised); returns the handler it replaced, or None."""
        if self.dist.enabled or threading.current_thread() is not threading.main_thread():
            return None
        self._stop_requested = False

        def request_stop(signum, frame) -> None:
            self._stop_requested = True

        return signal.signal(signal.SIGTERM, request_stop)

    def save_partial_epoch(self, batch: int, total: int, part_sums: dict, metric) -> None:
        """Checkpoint in the middle of epoch ``self.epoch + 1``, after ``batch`` batches (atomic, as at an
        epoch's end): the run's state plus what continuing the epoch needs (``partial_epoch``)."""
        state = self.state()
        state["partial_epoch"] = {
            "epoch": self.epoch, "batch": batch, "total": total,
            "part_sums": move_to(part_sums, torch.device("cpu")),
            "metric": move_to(dict(metric.__dict__), torch.device("cpu")),
            "generators": self.batcher.generator_states(),
            "rng": global_rng_state(self.device),
            "seconds": self._epoch_seconds + time.perf_counter() - self._epoch_start,
        }
        atomic_save(state, self.checkpoint_path)

    def resume(self) -> bool:
        """Load ``checkpoint.pt`` from the run directory if present; True if resumed.

        A checkpoint that cannot be read raises :class:`~spikedyn.runfiles.CheckpointError`; one trained with other
        run-defining settings a ``ValueError`` naming the setting.
        """
        if not self.checkpoint_path.exists():
            return False
        ckpt = read_checkpoint(self.checkpoint_path, map_location=self.device)
        saved = ckpt["config"]
        defaults = TrainConfig()
        keys = ("dataset", "data_options", "model", "model_options", "neuron", "hidden", "steps", "batch_size", "seed",
                "loss", "rule", "local_loss", "encoder", "input_view", "theta_per_batch_slot", "validation", "augment",
                "surrogate")
        for key in keys:
            trained = saved.get(key, getattr(defaults, key))  # keys newer than the checkpoint: their default
            if trained != getattr(self.config, key):
                raise ValueError(
                    f"cannot resume {self.checkpoint_path}: it was trained with {key}={trained!r}, "
                    f"this run asks for {key}={getattr(self.config, key)!r}. Use another --out directory "
                    f"or the same settings."
                )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch = int(ckpt["epoch"])
        self.history = list(ckpt["history"])
        self.partial_epoch = ckpt.get("partial_epoch")  # a checkpoint written inside an epoch: continue that epoch
        if self.dist.is_main:
            self.restore_metrics_file()
        return True

    def restore_metrics_file(self) -> None:
        """Make ``metrics.jsonl`` hold exactly the checkpoint's epochs (atomically).

        The checkpoint is written before its epoch's line is appended, so a run killed between
        the two (or during the append) would otherwise resume with that epoch's line missing or
        cut; the checkpoint's ``history`` is the record.  Lines of epochs after the checkpoint
        (none in practice) are dropped, since those epochs are trained again.
        """
        path = self.out / "metrics.jsonl"
        text = "".join(json.dumps(record) + "\n" for record in self.history)
        if path.exists() and path.read_text() == text:
            return
        write_text_atomic(path, text)

    def firing_rates(self, epoch: int) -> dict[str, float]:
        """Mean spike rate of every tapped hidden layer on the first ``batch_size`` test samples after
        epoch index ``epoch`` (for TensorBoard; the encoding has its own seeded generator)."""
        generator = epoch_generator(self.config.seed, epoch, purpose=2)
        x, _ = next(iter(self.batcher.batches("test", self.config.batch_size, generator, shuffle=False)))
        return tap_firing_rates(self.model, x)

    def open_tensorboard(self) -> TensorBoardLog:
        """The run's TensorBoard log from epoch ``self.epoch + 1`` on (later events of an earlier process
        purged); a new run also logs its initial dynamics at step 0."""
        board = TensorBoardLog(self.out / TENSORBOARD_DIR, purge_step=self.epoch + 1 if self.epoch else 0)
        if self.epoch == 0:
            board.write_dynamics(self.model, 0)
        return board

    def train_epoch(self, epoch: int, partial: dict | None = None) -> dict:
        """One epoch of training; ``partial`` (a mid-epoch checkpoint's ``partial_epoch``) continues it
        after its last batch, with the generators, sums and metric where they were."""
        cfg = self.config
        generator = epoch_generator(cfg.seed, epoch)
        torch.manual_seed(cfg.seed + epoch)
        metric = self.readout.metric(self.dataset, cfg.batch_size)
        total, batch = 0, 0
        part_sums: dict[str, float | Tensor] = {}  # the read-out loss and the rule's other terms (BRP: one per tap)
        if partial is not None:
            total, batch = partial["total"], partial["batch"]
            part_sums = move_to(partial["part_sums"], self.device)
            metric.__dict__.update(move_to(partial["metric"], self.device))
            restore_global_rng(partial["rng"], self.device)
        batches = self.batcher.batches(
            "train", cfg.batch_size, generator, shuffle=True, start_batch=batch,
            generator_states=None if partial is None else partial["generators"],
        )
        bar = tqdm(
            batches,
            total=self.batcher.num_batches("train", cfg.batch_size),
            initial=batch,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=bar_disabled(cfg.progress and self.dist.is_main),
            leave=False,
            dynamic_ncols=True,
        )
        ctx = self.dist
        # mid-epoch checkpoints: a single process only (the ranks of a data-parallel run would each need theirs)
        every = 60.0 * cfg.checkpoint_minutes if cfg.checkpoint_minutes > 0 and not ctx.enabled else None
        last_save = time.monotonic()
        for x, y in bar:
            n = len(y)
            if ctx.enabled:  # this process's share of the batch (see spikedyn.distributed)
                rows, count = ctx.rows(n)
                x, mine = x[:, rows], y[rows]
            else:
                mine, count = y, n
            with autocast(cfg.precision, x.device):
                out = self.net(x)
                target = self.readout.target(mine, self.dataset, out.rate.dtype, out.spikes.shape[0])
                loss_fn = self.readout.loss_fn(cfg.loss, target)
                result = self.rule(out, target.values, loss_fn, self.taps, target.mask)
            self.optimizer.zero_grad(set_to_none=True)
            if ctx.enabled:  # a masked per-step loss is a mean over this share's valid frames
                weight = target.mask.sum() * (count > 0) if target.mask is not None else None
                ctx.scaled_loss(result.total, result.batch_summed, n, weight).backward()
            else:
                result.total.backward()
            self.optimizer.step()
            if ctx.enabled:  # summed over the processes every batch
                names = list(result.parts)
                sums = ctx.sum([result.parts[k].item() * count for k in names], self.device)
                for name, value in zip(names, sums):
                    part_sums[name] = part_sums.get(name, 0.0) + value
            else:  # summed on the device: no host round trip per batch on a GPU
                for name, value in result.parts.items():
                    part_sums[name] = value.detach().to(sum_dtype(value.device)) * count + part_sums.get(name, 0.0)
            metric.update(ctx.gather_rows(self.readout.scores(out).detach()[:count], n), y)
            total += n
            batch += 1
            if batch % POSTFIX_EVERY == 0:  # one read of the running loss every few batches
                bar.set_postfix(loss=f"{float(part_sums['readout']) / total:.4f}", refresh=False)
            if self._stop_requested:  # SIGTERM (single-process runs only): stop here, where the state is whole
                self.save_partial_epoch(batch, total, part_sums, metric)
                raise TrainingStopped(epoch, batch)
            if every is not None and time.monotonic() - last_save >= every:
                self.save_partial_epoch(batch, total, part_sums, metric)
                last_save = time.monotonic()
        sums = {name: float(value) / total for name, value in part_sums.items()}
        summary = {"loss": sums.pop("readout"), "accuracy": metric.value(), **metric.extras()}
        if sums:
            summary["parts"] = sums
        return summary

    def fit(self, resume: bool = False, stop_after: int | None = None) -> list[dict]:
        """Train until ``config.epochs`` (or ``stop_after`` more epochs); returns the metric history.

        ``resume=True`` continues from ``checkpoint.pt`` when the run directory has one and starts
        a new run otherwise (saying so; ``spikedyn train --resume`` refuses that case instead).
        A run resumed with ``epochs`` not above the epochs already trained trains nothing and says
        so.  A new run (no checkpoint) starts ``metrics.jsonl`` afresh.
        """
        main = self.dist.is_main  # in a data-parallel run rank 0 alone writes files and prints
        say = print if main else (lambda *args, **kwargs: None)
        if resume and self.resume():
            say(f"resumed from {self.checkpoint_path} after epoch {self.epoch}")
            if self.epoch >= self.config.epochs:
                say(
                    f"nothing to train: the run already holds {self.epoch} epoch(s) and epochs is {self.config.epochs}; "
                    f"pass --epochs N with N > {self.epoch} to train it further"
                )
        elif self.checkpoint_path.exists():
            raise FileExistsError(
                f"{self.checkpoint_path} already exists: pass --resume to continue that run, "
                f"or choose another --out directory"
            )
        elif resume:
            say(f"no checkpoint in {self.out} to resume; starting a new run there")
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        last = self.config.epochs if stop_after is None else min(self.config.epochs, self.epoch + stop_after)
        if self.epoch == 0 and main:
            (self.out / "metrics.jsonl").unlink(missing_ok=True)  # left by a run that never saved a checkpoint
            self.record_dynamics()  # epoch 0: the initial theta
        board = self.open_tensorboard() if main and "tensorboard" in self.config.log and self.epoch < last else None
        previous = self._catch_sigterm()
        try:
            self.train_epochs(last, board)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if board is not None:
                board.close()
        self.dist.barrier()  # every process returns once rank 0 has written the last checkpoint
        return self.history

    def train_epochs(self, last: int, board: TensorBoardLog | None) -> None:
        """Train epochs ``self.epoch + 1 .. last``, recording each (rank 0: files, ``board`` when logging)."""
        main = self.dist.is_main
        while self.epoch < last:
            epoch = self.epoch
            partial, self.partial_epoch = self.partial_epoch, None
            if partial is not None and partial["epoch"] != epoch:
                partial = None
            start = time.perf_counter()
            self._epoch_start, self._epoch_seconds = start, 0.0 if partial is None else partial["seconds"]
            train = self.train_epoch(epoch, partial)
            if self.device.type == "cuda":  # the queued GPU work belongs to the training time
                torch.cuda.synchronize(self.device)
            train_seconds = self._epoch_seconds + time.perf_counter() - start
            test = evaluate(self.model, self.batcher, self.config, "test", epoch, self.dist)
            val = evaluate(self.model, self.batcher, self.config, "val", epoch, self.dist) if self.dataset.val is not None else None
            read_deferred_state_checks(self.model)  # a GPU run's membrane checks, read once per epoch
            lrs = [g["lr"] for g in self.optimizer.param_groups]
            self.scheduler.step()
            record = {
                "epoch": epoch + 1,
                "train_loss": train["loss"],
                "train_accuracy": train["accuracy"],
                "test_loss": test["loss"],
                "test_accuracy": test["accuracy"],
                "lr": lrs,
                "seconds": round(self._epoch_seconds + time.perf_counter() - start, 3),
                "train_seconds": round(train_seconds, 3),
            }
            if val is not None:  # the epoch with the best val_accuracy is the one to report (accuracy-B)
                record.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            if test["metric"] != "accuracy":
                record["metric"] = test["metric"]
            for split_name, scores in (("train", train), ("test", test)):  # the metric's extras, e.g. sample_accuracy
                record.update({f"{split_name}_{k}": v for k, v in scores.items() if k not in _SCORE_KEYS})
            if "parts" in train:
                record["train_parts"] = train["parts"]
            dynamics = dynamics_summary(self.model)
            if dynamics:
                record["dynamics"] = dynamics
            self.history.append(record)
            self.epoch = epoch + 1
            if not main:
                continue
            self.record_dynamics()
            if board is not None:  # before the checkpoint: an epoch logged but not saved is purged on resume
                names = [g.get("name", str(i)) for i, g in enumerate(self.optimizer.param_groups)]
                board.write_epoch(record, self.model, names, self.firing_rates(epoch))
            atomic_save(self.state(), self.checkpoint_path)
            with open(self.out / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(record) + "\n")
            silent = [layer for layer in silent_layers(test) if layer not in self._warned_silent]
            if silent:
                print(silent_layers_warning(record["epoch"], "test", silent), file=sys.stderr, flush=True)
                self._warned_silent.update(silent)
            if self.config.progress:
                print(
                    f"epoch {record['epoch']:3d}/{self.config.epochs}  loss {train['loss']:.4f}  "
                    f"train {100 * train['accuracy']:.2f}%  test {100 * test['accuracy']:.2f}%  "
                    + (f"(per sample {100 * test['sample_accuracy']:.2f}%)  " if "sample_accuracy" in test else "")
                    + f"({record['seconds']:.1f}s)",
                    flush=True,
                )


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> tuple[nn.Module, TrainConfig, dict]:
    """Model, config and raw checkpoint from a ``checkpoint.pt`` (or the run directory holding it).

    A checkpoint written inside an epoch (``checkpoint_minutes``) holds the weights of that moment,
    which a warning says (its ``epoch`` counts the epochs completed before it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: pass a run directory or its checkpoint.pt")
    ckpt = read_checkpoint(path, map_location=device)
    partial = ckpt.get("partial_epoch")
    if partial is not None:
        warnings.warn(
            f"{path} was written inside epoch {partial['epoch'] + 1}, after {partial['batch']} of its batches: "
            f"the weights are those of that moment, not of the end of an epoch (the run resumes from there)",
            stacklevel=2,
        )
    config = TrainConfig.from_dict(ckpt["config"])
    # checkpoints written before the model registry hold an MDN net
    model = rebuild_model(ckpt.get("model_name", "mdn"), ckpt["model_config"], fast=config.fast)
    model.load_state_dict(ckpt["model"])
    set_surrogates(model, config.surrogate)
    make_rule(config.rule, config.local_loss).attach(model)
    return model.to(device), config, ckpt
