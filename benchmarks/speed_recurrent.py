"""Speed of one training step of a recurrent SNN: 40 -> 256 (recurrent) -> 10, T=200, batch 32.

Every variant is the same network shape: an input projection ``Linear(40, 256)``, a layer of 256
spiking neurons with all-to-all recurrent weights ``[256, 256]`` fed by the previous step's
spikes, and a non-spiking read-out ``Linear(256, 10)`` at every step.  The loss is the MSE
between the read-out's mean over time and the one-hot label; a training step is forward + loss
+ backward + Adam (lr 1e-3).  All variants are timed in ONE process on the same CPU with
interleaved repetitions (after the warm-up, each round times every variant once, in a rotating
or shuffled order) on the same pre-encoded Bernoulli input ``[200, 32, 40]`` (rate 0.2;
encoding is not timed), starting from the same weights (where a library's construction has
them).  Everything that has no state across time (the input projection where the library
allows it, the read-out) is computed once over the folded ``[T*B, ...]`` sequence in every
variant, so the variants differ only in the recurrent layer:

* ``spikedyn-nrr``            :class:`~spikedyn.models.NRRNet` (one RFC layer of NRR's two-channel
                              adaptive-threshold cell, sparse recurrent mask), fused fast path, rule
                              ``bptt`` (full BPTT through every reuse of ``S_{t-1}``)
* ``spikedyn-nrr-brp``        the same under NRR's reward propagation (``--rule brp``: every reuse of
                              ``S_{t-1}`` detached, a projection loss on the hidden spikes)
* ``spikedyn-nrr-loops``      ``spikedyn-nrr`` with the fused path's time loops in PyTorch operations
                              (``SPIKEDYN_KERNELS=torch``) instead of the compiled CPU loops
                              (spikedyn.kernels.cpu), which every other spikedyn variant uses when they build
* ``spikedyn-nrr-reference``  the same as ``spikedyn-nrr`` on the per-step autograd reference path
                              (``fast=False``)
* ``norse``                   ``norse.torch.LIFRecurrent(40, 256)`` (input and recurrent weights inside,
                              no autapses), current-based LIF with ``dt tau_mem^-1 = 0.8`` and
                              ``dt tau_syn^-1 = 1``, i.e. ``V_t = 0.2 V_{t-1} (1 - S_{t-1}) + 0.8 (W x_t + W_r S_{t-1})``
                              (weights divided by 0.8 so the drive equals the others'), ``v_th = 0.5``,
                              SuperSpike surrogate (Norse's default), reset detached (Norse's choice)
* ``snntorch``                ``snn.RLeaky(beta=0.2, threshold=0.5, linear_features=256,
                              reset_mechanism="zero")`` with a rectangular surrogate (half-width 0.5,
                              height 1), the tutorials' per-step call ``spk, mem = lif(cur[t], spk, mem)``
* ``spikingjelly``            ``layer.LinearRecurrentContainer(neuron.LIFNode(...), 256, 256, step_mode="m")``:
                              SpikingJelly's linear recurrent construction, ``rc = Linear(256 + 256, 256)``
                              over ``[x_t, S_{t-1}]``, set to ``[I, W_r]`` so the neuron receives
                              ``x_t + W_r S_{t-1} + b_r``; single-step ``LIFNode(tau=1.25, decay_input=False,
                              v_threshold=0.5, v_reset=0, detach_reset=False)`` (charge ``0.2 V + X``, hard
                              reset), surrogate ``PiecewiseQuadratic(alpha=2)``
* ``spikingjelly-loop``       the same neuron in a plain per-step loop with ``nn.Linear(256, 256)`` as the
                              recurrence (no identity block: exactly the others' matrix work)
* ``floor``                   the same three Linear layers with no neuron and no recurrence in time,
                              computed once over the folded sequence (the matrix work any variant must do)

The ``floor`` counts the recurrent matrix once over ``T*B`` rows, as one product; the variants
must do the same FLOPs as 200 products of 32 rows each, which no library can fold.

    python benchmarks/speed_recurrent.py                 # writes results/speed_recurrent.{json,md}
    python benchmarks/speed_recurrent.py --quick         # 3 rounds, nothing written

Norse, snnTorch and SpikingJelly are optional: when one is not importable its variants are
skipped with a printed note.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling module bench_common
import bench_common as bench  # noqa: E402
from spikedyn import kernels as spikedyn_kernels  # noqa: E402
from spikedyn.learning import make_rule  # noqa: E402
from spikedyn.losses import rate_mse  # noqa: E402
from spikedyn.models import NRRNet  # noqa: E402

INPUTS, HIDDEN, CLASSES = 40, 256, 10
WEIGHT_GAIN = 2.0  # PyTorch's default Linear init scaled so that the hidden layer of every variant fires
OURS = "spikedyn-nrr"

#: spikedyn's plain recurrent decay-LIF: the NRR layer with the recurrent input into the membrane, no adaptive
#: threshold and full loops (no self-connections), i.e. V_t = 0.2 V_{t-1} (1 - S_{t-1}) + W x_t + b + W_r S_{t-1} + b_r
LIF_OPTIONS = {"recurrent_input": "membrane", "adaptive": False, "sparseness": 0.0}

ALL_VARIANTS = (
    "spikedyn-lif",
    "spikedyn-lif-brp",
    "spikedyn-nrr",
    "spikedyn-nrr-brp",
    "spikedyn-nrr-loops",
    "spikedyn-nrr-reference",
    "norse",
    "snntorch",
    "spikingjelly",
    "spikingjelly-loop",
    "floor",
)
COMPETITORS = ("norse", "snntorch", "spikingjelly", "spikingjelly-loop")
OURS_ALL = ("spikedyn-lif", "spikedyn-nrr")  # the verdict compares each with the fastest other library

#: what each variant's recurrent layer computes (V: membrane, S: spikes, x_t: the projected input)
NEURONS = {
    "spikedyn-lif": "decay-LIF, `V_t = 0.2 V_{t-1} (1 - S_{t-1}) + x_t + W_r S_{t-1} + b_r`, `S_t = [V_t > 0.5]` in {0, 1}; "
                    "rectangular surrogate (1 on abs(V - 0.5) < 0.5), reset flag differentiated; no self-loops; fused path",
    "spikedyn-lif-brp": "the same under reward propagation (every reuse of S_{t-1} detached)",
    "spikedyn-lif-reference": "spikedyn-lif on the per-step autograd reference path",
    "spikedyn-nrr": "NRR two-channel cell: leaky channel as spikedyn-lif with an adaptive threshold (a_t = 0.9 a_{t-1} + "
                    "0.1 S_{t-1}, minus a_t), plus a memory-less recurrent channel `W~_r S_{t-1} + b_r` with its own "
                    "threshold (S in {0, 1, 2}); W_r masked 50 % sparse; fused path",
    "spikedyn-nrr-brp": "the NRR cell under reward propagation",
    "spikedyn-nrr-loops": "spikedyn-nrr with its fused path on the PyTorch loops (`SPIKEDYN_KERNELS=torch`) instead of the "
                          "compiled CPU loops",
    "spikedyn-nrr-reference": "the NRR cell on the per-step autograd reference path",
    "norse": "current-based LIF (LIFRecurrent) with dt/tau_mem = 0.8, dt/tau_syn = 1: `V_t = 0.2 V_{t-1} (1 - S_{t-1}) + "
             "0.8 (W x_t + W_r S_{t-1})`, `S_t = [V_t > 0.5]`; SuperSpike surrogate; reset detached; no self-loops; "
             "input projection inside the step",
    "snntorch": "RLeaky(beta 0.2, threshold 0.5, reset zero): `U_t = (1 - R_{t-1}) (0.2 U_{t-1} + x_t + W_r S_{t-1} + "
                "b_r)` (the reset zeroes the whole update; RLeaky evaluates it twice); rectangular surrogate; reset detached",
    "spikingjelly": "LIFNode(tau 1.25, no input decay, v_th 0.5, hard reset to 0) in LinearRecurrentContainer: "
                    "`H_t = 0.2 V_{t-1} + x_t + W_r S_{t-1} + b_r`, `S_t = [H_t >= 0.5]`, `V_t = H_t (1 - S_t)` (our "
                    "recursion); PiecewiseQuadratic surrogate; reset differentiated; rc = Linear(512, 256) on [x_t, S_{t-1}]",
    "spikingjelly-loop": "the same LIFNode, recurrence by nn.Linear(256, 256) in a plain per-step loop",
    "floor": "no neuron, no time loop: the three Linear layers once over T*B",
}


# ---------------------------------------------------------------------------------------
# The networks: [T, B, 40] -> read-out o [T, B, 10]; each leaves its hidden spikes in
# ``hidden`` and exposes its three weight matrices through ``weights()`` (see share_weights).
# ---------------------------------------------------------------------------------------
class SpikedynNRR(nn.Module):
    """NRRNet(40, 256, 10): RecurrentNRR (fused or reference path) -> per-step linear read-out."""

    def __init__(self, fast: bool = True, rule: str = "bptt", kernels: str = "auto", **options) -> None:
        super().__init__()
        self.options = options
        self.kernels = kernels  # spikedyn.kernels back end of the fused path ("torch": the PyTorch loops)
        self.net = NRRNet(INPUTS, HIDDEN, CLASSES, mask_seed=0, fast=fast, **options)
        self.rule = make_rule(rule)
        with torch.random.fork_rng():  # the same fixed projection B for every model under a reward-propagation rule
            torch.manual_seed(2)
            self.taps = self.rule.attach(self.net)
        self.hidden = None

    def weights(self):
        rfc = self.net.rfc[0]
        return rfc.fc_f, rfc.fc_r, self.net.out

    def forward(self, x):
        with spikedyn_kernels.backend(self.kernels):
            out = self.net(x)
        self.hidden = out.taps[0]
        return out

    def loss(self, x, target):
        out = self(x)
        return self.rule(out, target, rate_mse, self.taps).total

    def after_share(self) -> None:
        self.net.apply_masks_()


class Floor(nn.Module):
    """The three synapse matrices alone, folded over T*B: the matrix work of any variant, no time loop."""

    def __init__(self) -> None:
        super().__init__()
        self.fc_in = nn.Linear(INPUTS, HIDDEN)
        self.fc_rec = nn.Linear(HIDDEN, HIDDEN)
        self.out = nn.Linear(HIDDEN, CLASSES)
        self.hidden = None

    def weights(self):
        return self.fc_in, self.fc_rec, self.out

    def forward(self, x):
        T, B = x.shape[:2]
        h = self.fc_rec(self.fc_in(x.reshape(T * B, -1)))
        self.hidden = h.reshape(T, B, -1)
        return self.out(h).reshape(T, B, -1)


def make_norse() -> nn.Module:
    from norse.torch import LIFParameters, LIFRecurrent

    dt = 1e-3
    params = LIFParameters(
        tau_syn_inv=torch.as_tensor(1.0 / dt),  # the synaptic current is used up in the step it arrives
        tau_mem_inv=torch.as_tensor(0.8 / dt),  # V <- V + 0.8 (0 - V + I) = 0.2 V + 0.8 I
        v_leak=torch.as_tensor(0.0),
        v_th=torch.as_tensor(0.5),
        v_reset=torch.as_tensor(0.0),
    )

    class NorseNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = LIFRecurrent(INPUTS, HIDDEN, p=params, autapses=False, dt=dt)
            self.out = nn.Linear(HIDDEN, CLASSES)
            self.hidden = None

        def weights(self):
            return None, None, self.out  # the recurrent layer's weights are set in after_share

        def forward(self, x):
            spikes, _ = self.rnn(x)
            self.hidden = spikes
            T, B = x.shape[:2]
            return self.out(spikes.reshape(T * B, -1)).reshape(T, B, -1)

    return NorseNet()


def make_snntorch() -> nn.Module:
    import snntorch as snn
    from snntorch import surrogate

    def rect(input_, grad_input, spikes):  # dS/dU = 1 for |U - U_th| < 0.5 (ours: RectWindow(0.5, 1))
        return grad_input * (input_.abs() < 0.5).to(grad_input.dtype)

    class SnnTorchNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc_in = nn.Linear(INPUTS, HIDDEN)
            self.lif = snn.RLeaky(
                beta=0.2, threshold=0.5, linear_features=HIDDEN, all_to_all=True, reset_mechanism="zero",
                spike_grad=surrogate.custom_surrogate(rect),
            )
            self.out = nn.Linear(HIDDEN, CLASSES)
            self.hidden = None

        def weights(self):
            return self.fc_in, self.lif.recurrent, self.out

        def forward(self, x):
            T, B = x.shape[:2]
            cur = self.fc_in(x.reshape(T * B, -1)).reshape(T, B, -1)
            spk, mem = self.lif.init_rleaky()
            record = []
            for t in range(T):
                spk, mem = self.lif(cur[t], spk, mem)
                record.append(spk)
            spikes = torch.stack(record)
            self.hidden = spikes
            return self.out(spikes.reshape(T * B, -1)).reshape(T, B, -1)

    return SnnTorchNet()


def _sj_lif():
    from spikingjelly.activation_based import neuron, surrogate

    return neuron.LIFNode(
        tau=1.25, decay_input=False, v_threshold=0.5, v_reset=0.0, detach_reset=False,
        surrogate_function=surrogate.PiecewiseQuadratic(alpha=2.0), step_mode="s",
    )


def make_spikingjelly() -> nn.Module:
    from spikingjelly.activation_based import functional, layer

    class SJNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc_in = layer.SeqToANNContainer(nn.Linear(INPUTS, HIDDEN))
            self.rnn = layer.LinearRecurrentContainer(_sj_lif(), HIDDEN, HIDDEN, step_mode="m")
            self.out = layer.SeqToANNContainer(nn.Linear(HIDDEN, CLASSES))
            self.hidden = None

        def weights(self):
            return self.fc_in[0], None, self.out[0]

        def set_recurrent(self, w: torch.Tensor, b: torch.Tensor) -> None:
            with torch.no_grad():  # rc([x, y]) = x + W_r y + b_r
                self.rnn.rc.weight.copy_(torch.cat([torch.eye(HIDDEN), w], dim=1))
                self.rnn.rc.bias.copy_(b)

        def forward(self, x):
            functional.reset_net(self)
            spikes = self.rnn(self.fc_in(x))
            self.hidden = spikes
            return self.out(spikes)

    return SJNet()


def make_spikingjelly_loop() -> nn.Module:
    from spikingjelly.activation_based import functional

    class SJLoopNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc_in = nn.Linear(INPUTS, HIDDEN)
            self.rec = nn.Linear(HIDDEN, HIDDEN)
            self.lif = _sj_lif()
            self.out = nn.Linear(HIDDEN, CLASSES)
            self.hidden = None

        def weights(self):
            return self.fc_in, self.rec, self.out

        def forward(self, x):
            functional.reset_net(self)
            T, B = x.shape[:2]
            cur = self.fc_in(x.reshape(T * B, -1)).reshape(T, B, -1)
            spk = torch.zeros_like(cur[0])
            record = []
            for t in range(T):
                spk = self.lif(cur[t] + self.rec(spk))
                record.append(spk)
            spikes = torch.stack(record)
            self.hidden = spikes
            return self.out(spikes.reshape(T * B, -1)).reshape(T, B, -1)

    return SJLoopNet()


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "spikedyn-lif": lambda: SpikedynNRR(**LIF_OPTIONS),
    "spikedyn-lif-brp": lambda: SpikedynNRR(rule="brp", **LIF_OPTIONS),
    "spikedyn-lif-reference": lambda: SpikedynNRR(fast=False, **LIF_OPTIONS),
    "spikedyn-nrr": SpikedynNRR,
    "spikedyn-nrr-brp": lambda: SpikedynNRR(rule="brp"),
    "spikedyn-nrr-loops": lambda: SpikedynNRR(kernels="torch"),
    "spikedyn-nrr-reference": lambda: SpikedynNRR(fast=False),
    "norse": make_norse,
    "snntorch": make_snntorch,
    "spikingjelly": make_spikingjelly,
    "spikingjelly-loop": make_spikingjelly_loop,
    "floor": Floor,
}


def share_weights(models: dict[str, nn.Module], gain: float = WEIGHT_GAIN) -> None:
    """Give every model the same input, recurrent and read-out weights.

    PyTorch's default init times ``gain``; the recurrent matrix is spikedyn's ``W_r * M`` (no
    self-loops, the sparse NRR mask), which the other libraries then train as a dense matrix.
    Norse has no input bias and scales its drive by 0.8: its weights are divided by 0.8.
    """
    torch.manual_seed(1)
    ref_in, ref_out = nn.Linear(INPUTS, HIDDEN), nn.Linear(HIDDEN, CLASSES)
    ref_rec = nn.Linear(HIDDEN, HIDDEN)
    mask = SpikedynNRR().net.rfc[0].mask
    with torch.no_grad():
        w_in, b_in = ref_in.weight * gain, ref_in.bias * gain
        w_rec, b_rec = ref_rec.weight * gain * mask, ref_rec.bias * gain
        w_out, b_out = ref_out.weight * gain, ref_out.bias * gain
        for name, model in models.items():
            for mine, (w, b) in zip(model.weights(), ((w_in, b_in), (w_rec, b_rec), (w_out, b_out))):
                if mine is not None:
                    mine.weight.copy_(w)
                    mine.bias.copy_(b)
            if name == "norse":
                model.rnn.input_weights.copy_(w_in / 0.8)
                model.rnn.recurrent_weights.copy_(w_rec / 0.8)
            elif name == "spikingjelly":
                model.set_recurrent(w_rec, b_rec)
            if hasattr(model, "after_share"):
                model.after_share()


# ---------------------------------------------------------------------------------------
# Sanity: shapes, firing rates, and the fast path against its reference
# ---------------------------------------------------------------------------------------
def _loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if hasattr(model, "loss"):
        return model.loss(x, target)
    return bench.rate_mse_loss(model, x, target)


def sanity(variants: dict[str, nn.Module], x: torch.Tensor, target: torch.Tensor) -> dict[str, dict]:
    """Per variant: read-out shape and hidden firing rate; for spikedyn's fast paths also the
    agreement of hidden spikes and gradients with the reference path on the same weights."""
    refs: dict[tuple, tuple[torch.Tensor, dict]] = {}

    def reference(model: SpikedynNRR) -> tuple[torch.Tensor, dict]:
        key = (model.rule.name, tuple(sorted(model.options.items())))
        if key not in refs:  # the per-step reference path of the same net, rule and weights
            ref = SpikedynNRR(fast=False, rule=model.rule.name, **model.options)
            share_weights({"ref": ref})
            ref.zero_grad(set_to_none=True)
            _loss(ref, x, target).backward()
            refs[key] = (ref.hidden.detach(), {n: p.grad.clone() for n, p in ref.named_parameters()})
        return refs[key]

    report = {}
    for name, model in variants.items():
        model.zero_grad(set_to_none=True)
        _loss(model, x, target).backward()
        out_shape = list(model(x).spikes.shape if isinstance(model, SpikedynNRR) else model(x).shape)
        entry: dict = {"output_shape": out_shape}
        assert out_shape == [x.shape[0], x.shape[1], CLASSES], (name, out_shape)
        if name == "floor":
            entry["note"] = "no neurons"
        else:
            entry["hidden_rate"] = float(model.hidden.detach().float().mean())
            if entry["hidden_rate"] == 0.0:
                print(f"WARNING: {name} does not spike")
        if isinstance(model, SpikedynNRR):
            ref_spikes, ref_grads = reference(model)
            entry["spikes_equal_to_reference"] = float((model.hidden.detach() == ref_spikes).float().mean())
            entry["grad_max_rel_diff_vs_reference"] = bench.max_rel_grad_diff(model, ref_grads)
            rfc = model.net.rfc[0]
            entry["masked_weights_zero"] = bool(torch.all(rfc.fc_r.weight[rfc.mask == 0] == 0))
        model.zero_grad(set_to_none=True)
        report[name] = entry
    return report


# ---------------------------------------------------------------------------------------
# Timing: the training step is bench.train_step_fn with _loss (Adam lr 1e-3)
# ---------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    allocator, names = bench.prepare(args, BUILDERS, reference=("spikedyn-nrr-reference",))
    x, target = bench.random_input(args, (INPUTS,), CLASSES)
    variants = bench.build_variants(names, BUILDERS)
    share_weights(variants)

    checks = sanity(variants, x, target)
    for name, e in checks.items():
        line = f"sanity: {name:23s} read-out {tuple(e['output_shape'])}"
        if "hidden_rate" in e:
            line += f", hidden rate {e['hidden_rate']:.3f}"
        if "spikes_equal_to_reference" in e:
            line += (f"; hidden spikes = reference path's: {100 * e['spikes_equal_to_reference']:.2f} %, "
                     f"max rel. grad diff {e['grad_max_rel_diff_vs_reference']:.1e}, "
                     f"masked weights zero: {e['masked_weights_zero']}")
        print(line)

    load_before = bench.loadavg()
    fns = {name: bench.train_step_fn(m, x, target, loss=_loss) for name, m in variants.items()}
    results = bench.time_variants(fns, args, ours=OURS)
    versions = bench.library_versions(("norse", "snntorch", "spikingjelly"))
    competitors = {n: results[n]["median_ms"] for n in COMPETITORS if n in results}
    verdict = {}
    if competitors:
        fastest = min(competitors, key=competitors.get)
        for ours in OURS_ALL:
            if ours in results:
                verdict[ours] = {
                    "fastest_other_library": fastest,
                    "fastest_other_ms": competitors[fastest],
                    "spikedyn_ms": results[ours]["median_ms"],
                    "speedup": competitors[fastest] / results[ours]["median_ms"],
                }
    workload = (f"recurrent {INPUTS} -> {HIDDEN} (recurrent) -> {CLASSES}, T={args.steps}, batch {args.batch}, "
                f"input rate {args.input_rate}")
    return {
        **bench.conditions(args, "speed_recurrent.py", workload=workload, allocator=allocator, versions=versions,
                           load_before=load_before),
        "neurons": {name: NEURONS[name] for name in variants},
        "fused_loops": fused_loops(),
        "sanity": checks,
        "results": {"train": results},
        "verdict": verdict,
    }


def fused_loops() -> str:
    """Which loops spikedyn's fused paths ran on (the default back end on this machine)."""
    from spikedyn.kernels import cpu

    if spikedyn_kernels.selected_backend() == "torch":
        return "PyTorch loops (SPIKEDYN_KERNELS=torch)"
    if cpu.available():
        return f"compiled CPU loops (spikedyn.kernels.cpu, flags {' '.join(cpu.CFLAGS)})"
    return f"PyTorch loops (compiled CPU loops unavailable: {cpu.unavailable_reason()})"


def markdown(report: dict) -> str:
    lines = [
        *bench.speed_header(report),
        f"spikedyn's fused paths: {report.get('fused_loops', '-')}",
        "",
        "## Training step (forward + MSE of the mean read-out + backward + Adam)",
        "",
        *bench.timing_table(report["results"]["train"], ours=OURS),
        "",
    ]
    for ours, verdict in (report.get("verdict") or {}).items():
        lines.append(
            f"Fastest other library: {verdict['fastest_other_library']} ({verdict['fastest_other_ms']:.2f} ms); "
            f"{ours} ({verdict['spikedyn_ms']:.2f} ms) is {verdict['speedup']:.2f}x faster.  "
        )
    lines += [
        "",
        "## The recurrent layer of each variant",
        "",
        "| variant | neuron |",
        "|---|---|",
        *(f"| {name} | {text} |" for name, text in report["neurons"].items()),
        "",
    ]
    lines += [
        "## Sanity: same shapes, same weights, neurons that fire",
        "",
        "Before timing, on the same input and initial weights. For spikedyn's fast paths: the fraction of "
        "hidden spikes equal to the per-step reference path's, the largest relative L2 difference of any "
        "parameter gradient from the reference path's (same rule), and whether the masked recurrent weights are 0.",
        "",
        "| variant | read-out shape | hidden rate | spikes = reference | max grad diff vs reference | masked weights 0 |",
        "|---|---|---|---|---|---|",
    ]
    for name, e in report["sanity"].items():
        rate = f"{e['hidden_rate']:.3f}" if "hidden_rate" in e else "-"
        same = f"{100 * e['spikes_equal_to_reference']:.2f} %" if "spikes_equal_to_reference" in e else "-"
        diff = f"{e['grad_max_rel_diff_vs_reference']:.1e}" if "grad_max_rel_diff_vs_reference" in e else "-"
        zero = str(e["masked_weights_zero"]) if "masked_weights_zero" in e else "-"
        lines.append(f"| {name} | {e['output_shape']} | {rate} | {same} | {diff} | {zero} |")
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return bench.speed_args(
        argv, __doc__, name="speed_recurrent", warmup=3, batch=32, steps=200, input_rate=0.2, allocator="keep",
        variants=ALL_VARIANTS, choices=BUILDERS, no_reference_help="skip spikedyn's slow per-step reference path",
    )


def main(argv: list[str] | None = None) -> dict:
    return bench.run_and_write(parse_args(argv), run, markdown)


if __name__ == "__main__":
    main()
