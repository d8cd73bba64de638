"""GPU speed and memory of one training step: every neuron family against SpikingJelly and snnTorch.

Workloads (issue #10's table), each a whole training step (forward over T, rate-MSE against
one-hot labels, backward, Adam step) on pre-encoded Bernoulli input (20 % spikes, not timed):

* ``mlp-small``  784-500-10, T = 20, batch 100
* ``mlp-large``  784-4096-10, T = 32, batch 1024
* ``conv``       3 x [Conv 3x3 (128 channels, no bias) + BatchNorm + neuron] on 3x32x32, then
                 Flatten + Linear(128*32*32 -> 10) + neuron; T = 8, batch 64.  Convolutions, batch norm
                 and the Linear run folded over T*B.
* ``recurrent``  ``speed_recurrent.py``'s workload and networks: 40 -> 256 recurrent -> 10 read-out at every
                 step, T = 200, batch 32 (decay-LIF with recurrent input as ``spikedyn-lif``, NRR's
                 two-channel cell as ``spikedyn-nrr``, SpikingJelly's and snnTorch's recurrent LIF, Norse's
                 ``LIFRecurrent``; the floor's recurrence has no neuron)

Variants, all in ONE process, timed in interleaved rounds (every round runs each variant once, in a
rotating order) with CUDA events around each step:

* ``floor``                the same layers without neurons (the cost any SNN of the shape pays)
* ``spikedyn-lif``         decay-LIF (identity input, reset flag differentiated), ``spikedyn-plif`` PLIF
                           (tau0 2, detached reset, ATan), ``spikedyn-2nd-fs`` frozen MDN meta neuron,
                           ``spikedyn-mdn`` MDN neuron with learnable per-neuron theta: on a GPU these
                           run the fused Triton kernels (:mod:`spikedyn.kernels`)
* ``spikedyn-lif-torch``   decay-LIF on the eager torch loops (``SPIKEDYN_KERNELS=torch``), to show
                           what the kernels change
* ``sj-lif``, ``sj-plif``  SpikingJelly multi-step ``LIFNode(tau=1.25, decay_input=False, v_threshold=0.5,
                           v_reset=0, detach_reset=False)`` (the same charge ``0.2 V + X``) and
                           ``ParametricLIFNode(init_tau=2, v_threshold=1, detach_reset=True)``; SpikingJelly
                           picks its own fused GPU path
* ``snntorch``             ``snn.Leaky(beta=0.2, threshold=0.5, reset_mechanism="zero")``, snnTorch's per-step
                           loop (MLPs; ``RLeaky`` on the recurrent workload)
* ``spikedyn-nrr``, ``spikedyn-nrr-torch``, ``norse``  recurrent workload only: NRR's cell on its Triton
                           kernels and on its torch loop, and Norse

Peak memory: for each variant alone, the largest allocation above what was allocated before one
step (``torch.cuda.max_memory_allocated``).

    python benchmarks/speed_gpu.py                          # results/speed_gpu.{json,md}, device named
    python benchmarks/speed_gpu.py --workloads mlp-small --quick --device cpu   # smoke test, nothing written

SpikingJelly and snnTorch are optional: a variant whose library is missing is skipped with a note.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling module bench_common
import bench_common as bench  # noqa: E402
from spikedyn import kernels  # noqa: E402
from spikedyn.neurons import make_neuron  # noqa: E402

WORKLOADS = {
    "mlp-small": {"kind": "mlp", "sizes": (784, 500, 10), "steps": 20, "batch": 100},
    "mlp-large": {"kind": "mlp", "sizes": (784, 4096, 10), "steps": 32, "batch": 1024},
    "conv": {"kind": "conv", "channels": 128, "image": (3, 32, 32), "classes": 10, "steps": 8, "batch": 64},
    "recurrent": {"kind": "recurrent", "sizes": (40, 256, 10), "steps": 200, "batch": 32},
}
VARIANTS = ("floor", "spikedyn-lif", "spikedyn-lif-torch", "spikedyn-plif", "spikedyn-2nd-fs", "spikedyn-mdn",
            "sj-lif", "sj-plif", "snntorch", "spikedyn-nrr", "spikedyn-nrr-torch", "norse")
#: the recurrent workload's variants: speed_recurrent.py's network of each
RECURRENT = {"floor": "floor", "spikedyn-lif": "spikedyn-lif", "spikedyn-lif-torch": "spikedyn-lif",
             "spikedyn-nrr": "spikedyn-nrr", "spikedyn-nrr-torch": "spikedyn-nrr", "sj-lif": "spikingjelly",
             "snntorch": "snntorch", "norse": "norse"}
#: spikedyn neuron kind of each spikedyn variant
KINDS = {"spikedyn-lif": "lif-identity", "spikedyn-lif-torch": "lif-identity", "spikedyn-plif": "plif",
         "spikedyn-2nd-fs": "2nd-fs", "spikedyn-mdn": "mdn"}
WEIGHT_GAIN = 4.0  # Linear init scaled so that the MLPs' neurons fire (as benchmarks/speed_mlp.py)


class Folded(nn.Module):
    """Stateless layers run over ``[T, B, ...]`` folded to ``[T*B, ...]``."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        self.inner = nn.Sequential(*layers)

    def forward(self, x):
        T, B = x.shape[:2]
        y = self.inner(x.reshape(T * B, *x.shape[2:]))
        return y.reshape(T, B, *y.shape[1:])


def neuron_factory(variant: str):
    """``shape -> module [T, B, *shape] -> [T, B, *shape]`` for a multi-step variant (None: no neuron)."""
    if variant == "floor":
        return lambda shape: nn.Identity()
    if variant in KINDS:
        return lambda shape: make_neuron(KINDS[variant], shape)
    if variant in ("sj-lif", "sj-plif"):
        from spikingjelly.activation_based import neuron, surrogate

        if variant == "sj-lif":
            return lambda shape: neuron.LIFNode(tau=1.25, decay_input=False, v_threshold=0.5, v_reset=0.0,
                                                surrogate_function=surrogate.PiecewiseQuadratic(alpha=2.0),
                                                detach_reset=False, step_mode="m")
        return lambda shape: neuron.ParametricLIFNode(init_tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                                                      surrogate_function=surrogate.ATan(alpha=2.0),
                                                      detach_reset=True, step_mode="m")
    raise ValueError(variant)


class Net(nn.Module):
    """A workload's network with the variant's neurons after every synaptic layer."""

    def __init__(self, workload: dict, variant: str) -> None:
        super().__init__()
        neuron = neuron_factory(variant)
        self.sj = variant.startswith("sj-")
        if workload["kind"] == "mlp":
            n_in, hidden, classes = workload["sizes"]
            self.layers = nn.Sequential(Folded(nn.Linear(n_in, hidden)), neuron(hidden),
                                        Folded(nn.Linear(hidden, classes)), neuron(classes))
        else:
            c, (c0, h, w) = workload["channels"], workload["image"]
            blocks: list[nn.Module] = []
            for c_in in (c0, c, c):
                blocks += [Folded(nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)), neuron((c, h, w))]
            blocks += [Folded(nn.Flatten(), nn.Linear(c * h * w, workload["classes"])), neuron(workload["classes"])]
            self.layers = nn.Sequential(*blocks)

    def forward(self, x):
        if self.sj:
            from spikingjelly.activation_based import functional

            functional.reset_net(self.layers)
        return self.layers(x)


class SnnTorchMLP(nn.Module):
    """snnTorch's idiomatic per-step loop on the MLP (rectangular surrogate as ours)."""

    def __init__(self, workload: dict) -> None:
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        def rect(input_, grad_input, spikes):
            return grad_input * (input_.abs() < 0.5).to(grad_input.dtype)

        n_in, hidden, classes = workload["sizes"]
        sg = surrogate.custom_surrogate(rect)
        self.fc1, self.fc2 = nn.Linear(n_in, hidden), nn.Linear(hidden, classes)
        self.lif1 = snn.Leaky(beta=0.2, threshold=0.5, reset_mechanism="zero", spike_grad=sg)
        self.lif2 = snn.Leaky(beta=0.2, threshold=0.5, reset_mechanism="zero", spike_grad=sg)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        out = []
        for x_t in x:
            spk1, mem1 = self.lif1(self.fc1(x_t), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            out.append(spk2)
        return torch.stack(out)


def build(workload: dict, variant: str) -> nn.Module:
    if workload["kind"] == "recurrent":
        if variant not in RECURRENT:
            raise LookupError("not a variant of the recurrent workload")
        import speed_recurrent

        return speed_recurrent.BUILDERS[RECURRENT[variant]]()
    if variant in ("spikedyn-nrr", "spikedyn-nrr-torch", "norse"):
        raise LookupError("a variant of the recurrent workload only")
    if variant == "snntorch":
        if workload["kind"] != "mlp":
            raise LookupError("snnTorch variant is for the MLPs only")
        return SnnTorchMLP(workload)
    return Net(workload, variant)


def share_weights(models: list[nn.Module]) -> None:
    """The same synaptic weights in every model (Linear layers scaled by ``WEIGHT_GAIN``)."""
    torch.manual_seed(1)
    first = [m for m in models[0].modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    reference = [(m.weight.detach().clone(), None if m.bias is None else m.bias.detach().clone()) for m in first]
    with torch.no_grad():
        for model in models:
            layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
            for layer, (w, b) in zip(layers, reference):
                gain = WEIGHT_GAIN if isinstance(layer, nn.Linear) else 1.0
                layer.weight.copy_(w * gain)
                if b is not None:
                    layer.bias.copy_(b * gain)


def backend_for(variant: str):
    return kernels.backend("torch") if variant.endswith("-torch") else contextlib.nullcontext()


def output_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``[T, B, classes]``: the output spikes (the per-step read-out on the recurrent workload)."""
    out = model(x)
    return out.spikes if hasattr(out, "spikes") else out


def make_step(model: nn.Module, variant: str, x: torch.Tensor, target: torch.Tensor):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        with backend_for(variant):
            loss = F.mse_loss(output_of(model, x).mean(0), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return step


def timed(fn, device: torch.device) -> float:
    """Seconds of one call: CUDA events on a GPU, the wall clock after a sync elsewhere."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    begin = time.perf_counter()
    fn()
    return time.perf_counter() - begin


def peak_mib(fn, device: torch.device) -> float | None:
    """MiB allocated above the level before one call of ``fn`` (None off CUDA)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def run_workload(name: str, args, device: torch.device) -> dict:
    workload = WORKLOADS[name]
    names = [v for v in args.variants.split(",") if v]
    models = {}
    for variant in names:
        try:
            models[variant] = build(workload, variant).to(device)
        except ImportError as err:
            print(f"note: {name}/{variant} skipped ({err.name or err} is not importable)")
        except LookupError as err:
            print(f"note: {name}/{variant} skipped ({err})")
    if workload["kind"] == "recurrent":
        import speed_recurrent

        for variant, model in models.items():  # one call each: two variants may share a network's name
            speed_recurrent.share_weights({RECURRENT[variant]: model})
    else:
        share_weights(list(models.values()))
    torch.manual_seed(0)
    shape = (workload["sizes"][0],) if workload["kind"] != "conv" else workload["image"]
    classes = workload["sizes"][2] if workload["kind"] != "conv" else workload["classes"]
    x = (torch.rand(workload["steps"], workload["batch"], *shape, device=device) < 0.2).float()
    target = F.one_hot(torch.randint(0, classes, (workload["batch"],), device=device), classes).float()
    rates, steps, memory, failed = {}, {}, {}, {}
    for variant, model in models.items():
        try:  # a variant that fails (a kernel that does not build, say) is reported, not fatal
            with torch.no_grad(), backend_for(variant):
                rates[variant] = float(output_of(model, x).float().mean()) if variant != "floor" else None
            steps[variant] = make_step(model, variant, x, target)
            memory[variant] = peak_mib(steps[variant], device)
        except Exception as err:  # noqa: BLE001 - reported in the results and on stderr
            failed[variant] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]
            steps.pop(variant, None)
            print(f"error: {name}/{variant} failed and is left out: {failed[variant]}", file=sys.stderr)
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {v: [] for v in steps}
    order = list(steps)
    for r in range(args.rounds):
        for variant in order[r % len(order):] + order[: r % len(order)]:
            times[variant].append(timed(steps[variant], device))
    stats = bench.summarise(times, floor="floor", ours="spikedyn-lif")
    for variant, s in stats.items():
        s["peak_mib"] = memory[variant]
        s["output_rate"] = rates[variant]
    return {"workload": workload, "results": stats, "failed": failed}


def markdown(report: dict) -> str:
    lines = [
        "# Speed on GPU: one training step (forward + rate-MSE + backward + Adam)",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; device: {report['device']}; torch {report['versions']['torch']}; "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if k != "torch" and v) + "  ",
        f"{report['rounds']} interleaved rounds after {report['warmup']} warm-up rounds; "
        + ("CUDA-event timing; neuron kernels: " + report["kernels"] if report["kernels"] == "triton" or
           report["device_type"] == "cuda" else "wall-clock timing (not a GPU: a smoke run)"),
        "",
    ]
    for name, entry in report["workloads"].items():
        w = entry["workload"]
        lines += [f"## {name}: T = {w['steps']}, batch {w['batch']}", "",
                  "| variant | median ms | IQR ms | x floor | x spikedyn-lif | peak MiB | output rate |",
                  "|---|---|---|---|---|---|---|"]
        for variant, s in entry["results"].items():
            lines.append(
                f"| {variant} | {s['median_ms']:.2f} | {s['q1_ms']:.2f}-{s['q3_ms']:.2f} | {bench.fmt(s['x_floor'])} "
                f"| {bench.fmt(s['x_spikedyn-lif'])} | {bench.fmt(s['peak_mib'], '.0f')} | {bench.fmt(s['output_rate'], '.3f')} |"
            )
        for variant, why in entry.get("failed", {}).items():
            lines.append(f"| {variant} | failed: {why} | | | | | |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = bench.new_parser(__doc__)
    bench.add_round_options(parser, 30, 5)
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a smoke test")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 1 warm-up, nothing written")
    bench.add_out_option(parser, "speed_gpu")
    args = bench.parse(parser, argv)
    if args.quick:
        args.rounds, args.warmup = 3, 1
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU is visible: run this benchmark on a GPU machine, or pass --device cpu --quick "
                         "for a smoke test")
    unknown = {w for w in args.workloads.split(",") if w} - set(WORKLOADS)
    unknown |= {v for v in args.variants.split(",") if v} - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown workload(s)/variant(s) {sorted(unknown)}; workloads: {', '.join(WORKLOADS)}; "
                         f"variants: {', '.join(VARIANTS)}")
    report = {
        "command": bench.command_line("speed_gpu.py", args.argv),
        "date": bench.utc_date(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else bench.cpu_model(),
        "versions": bench.library_versions(("snntorch", "spikingjelly", "triton")),
        "device_type": device.type,
        "kernels": "triton" if device.type == "cuda" and kernels.triton_importable() else "torch",
        "rounds": args.rounds,
        "warmup": args.warmup,
        "workloads": {},
    }
    for name in (w for w in args.workloads.split(",") if w):
        report["workloads"][name] = run_workload(name, args, device)
        if not args.quick:  # written after every workload: a run cut short keeps what it measured
            bench.write_results(report, markdown(report), args.out)
    text = markdown(report)
    print(text)
    return report


if __name__ == "__main__":
    main()
