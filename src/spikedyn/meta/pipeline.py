"""MDN's generate-cluster-filter pipeline, end to end (spec mdn.md section 4).

1. **Learn the dynamics** (phase 1): train the three-layer network of ``mdn`` neurons (theta
   learnable, init (0.02, 0.2, 0.0, 0.08)) on a source task; the trainer appends every layer's
   theta to ``theta_history.pt`` after each epoch.
2. **Cluster** (phase 2, :func:`~spikedyn.meta.cluster.run_cluster`): theta of the chosen
   epoch -> (theta_a, theta_b) and (theta_c, theta_d) clouds -> mean shift picks the number of
   centres, KMeans places them -> candidates = product of the centres.
3. **Filter** (phase 3, :func:`~spikedyn.meta.dynamics.filter_candidates`): every candidate
   under the reference sine; drop the non-sensitive (M3-like) and silent ones, keep one per
   group of alike spike trains.

:func:`run_pipeline` writes into one folder ``phase1/`` (an ordinary, resumable run
directory), ``phase2/`` (presets, clusters plot and summary), ``phase3/`` (dynamics plot),
``meta-neurons.json`` (the kept meta neurons, a presets file usable as ``FILE:NAME``) and
``report.md`` naming the kept neurons and how close they come to the paper's: theta distance
and, under the same drive, van Rossum distance of their spike trains to FS / RS / M3 (MNIST)
and SDS / WDS (TIDigits or its stand-in).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..neurons import META_NEURON_PRESETS
from ..runfiles import write_text_atomic
from .cluster import run_cluster
from .dynamics import filter_candidates, simulate, sine_drive, van_rossum_distances
from .presets import THETA_KEYS, load_presets, save_presets

_MNIST_CENTRES = {"ab": [(0.060, 0.219)], "cd": [(-0.065, 0.003), (-0.010, 0.050), (-0.135, -0.051)]}
_TIDIGITS_CENTRES = {"ab": [(-0.009, 0.246), (0.005, 0.158), (0.007, 0.205)], "cd": [(-0.058, 0.065), (0.064, 0.091)]}

#: the authors' choices per source task (spec mdn.md 2.3, 4.2): the epoch they clustered, the M
#: they forced for the (a, b) cloud, the paper's meta neurons found on that task and the
#: centres of their candidates (MNIST: M1-M3; TIDigits: T1-T6).
SOURCE_TASKS: dict[str, dict[str, Any]] = {
    "mnist": {"epochs": 5, "n_ab": None, "paper": ["2nd-FS", "2nd-RS", "2nd-M3"], "paper_candidates": "1 x 3",
              "paper_centres": _MNIST_CENTRES},
    "tidigits": {"epochs": 26, "n_ab": 3, "paper": ["2nd-SDS", "2nd-WDS"], "paper_candidates": "3 x 2",
                 "paper_centres": _TIDIGITS_CENTRES},
    "fsdd": {"epochs": 26, "n_ab": 3, "paper": ["2nd-SDS", "2nd-WDS"], "paper_candidates": "3 x 2 (TIDigits)",
             "paper_centres": _TIDIGITS_CENTRES},
}
DEFAULT_SOURCE = {"epochs": 5, "n_ab": None, "paper": list(META_NEURON_PRESETS), "paper_candidates": "-",
                  "paper_centres": None}


@dataclass
class PipelineConfig:
    """Settings of :func:`run_pipeline`; ``None`` takes the source task's value from :data:`SOURCE_TASKS`."""

    dataset: str = "mnist"
    data_root: str | None = None
    data_options: dict = field(default_factory=dict)
    seed: int = 3154
    epochs: int | None = None  # phase-1 epochs (authors: 5 for MNIST, 26 for TIDigits)
    cluster_epoch: int | None = None  # None: the last epoch trained
    n_ab: int | None = None  # force M for the (a, b) cloud (authors: 3 for TIDigits)
    n_cd: int | None = None
    quantile: float = 0.5
    theta_per_batch_slot: bool = False
    hidden: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    device: str = "auto"
    out: str | None = None
    progress: bool = True
    drive_steps: int = 200
    drive_period: float = 20.0
    drive_mean: float = 0.0

    def source(self) -> dict[str, Any]:
        return SOURCE_TASKS.get(self.dataset, DEFAULT_SOURCE)

    def resolved(self) -> "PipelineConfig":
        values = asdict(self)
        src = self.source()
        if values["epochs"] is None:
            values["epochs"] = src["epochs"]
        if values["n_ab"] is None:
            values["n_ab"] = src["n_ab"]
        if values["out"] is None:
            values["out"] = str(Path("runs") / "meta" / f"{self.dataset}-seed{self.seed}")
        if values["epochs"] < 1:
            raise ValueError(f"phase 1 needs at least one epoch, got epochs={values['epochs']}")
        return PipelineConfig(**values)


def learn_dynamics(config: PipelineConfig) -> Path:
    """Phase 1: train (or resume, or reuse when finished) the ``mdn`` network; returns its run dir."""
    from ..train import TrainConfig, Trainer

    run = Path(config.out) / "phase1"
    train = TrainConfig(
        dataset=config.dataset, data_root=config.data_root, data_options=dict(config.data_options), neuron="mdn",
        hidden=config.hidden, steps=config.steps, batch_size=config.batch_size, epochs=config.epochs,
        seed=config.seed, out=str(run), device=config.device, progress=config.progress,
        theta_per_batch_slot=config.theta_per_batch_slot,
    )
    trainer = Trainer(train)
    trainer.fit(resume=trainer.checkpoint_path.exists())
    return run


def compare_with_paper(thetas: dict[str, tuple[float, ...]], paper: list[str], drive) -> dict[str, dict[str, Any]]:
    """For each neuron: theta distance and spike-train (van Rossum) distance to each paper neuron."""
    reference = {name: META_NEURON_PRESETS[name] for name in paper}
    traces = simulate({**{f"ours:{k}": v for k, v in thetas.items()}, **reference}, drive)
    names = list(traces)
    dist = van_rossum_distances([traces[n].s for n in names])
    out: dict[str, dict[str, Any]] = {}
    for name, theta in thetas.items():
        i = names.index(f"ours:{name}")
        rows = {}
        for ref in paper:
            j = names.index(ref)
            rows[ref] = {
                "theta_distance": float(np.linalg.norm(np.subtract(theta, reference[ref]))),
                "spike_distance": float(dist[i, j]),
            }
        closest = min(rows, key=lambda r: rows[r]["spike_distance"])
        out[name] = {"closest_by_dynamics": closest, "to_paper": rows, "spike_count": traces[names[i]].spike_count}
    return out


def run_pipeline(config: PipelineConfig) -> dict[str, Any]:
    """Phases 1-3 on ``config.dataset``; writes the folder described in the module docstring."""
    cfg = config.resolved()
    out = Path(cfg.out)
    src = cfg.source()
    run = learn_dynamics(cfg)
    clusters = run_cluster(
        run, epoch=cfg.cluster_epoch, out_dir=out / "phase2", quantile=cfg.quantile, n_ab=cfg.n_ab, n_cd=cfg.n_cd
    )
    candidates = load_presets(clusters["files"]["presets"])
    weights = {c["name"]: float(max(c["joint_size"], 1)) for c in clusters["candidates"]}
    drive = sine_drive(steps=cfg.drive_steps, period=cfg.drive_period, mean=cfg.drive_mean)
    period = int(round(cfg.drive_period))
    report = filter_candidates(candidates, drive=drive, weights=weights, period=period)
    files = {"phase1": str(run), **{f"phase2_{k}": v for k, v in clusters["files"].items()}}
    (out / "phase3").mkdir(parents=True, exist_ok=True)
    try:
        from ..plots.dynamics import plot_dynamics

        plot = plot_dynamics(
            report.traces, out / "phase3" / "dynamics.png", sensitivity=report.sensitivity, period=period,
            title=f"candidates from {cfg.dataset} (epoch {clusters['epoch']}) under the reference sine",
        )
        files["phase3_plot"] = str(plot)
    except ImportError:
        files["phase3_plot"] = None
    kept = {name: candidates[name] for name in report.kept}
    comparison = compare_with_paper(candidates, src["paper"], drive)
    if kept:
        save_presets(
            out / "meta-neurons.json", kept,
            source={"pipeline": str(out), "dataset": cfg.dataset, "epoch": clusters["epoch"]},
            extra={k: {"closest_paper_by_dynamics": comparison[k]["closest_by_dynamics"]} for k in kept},
        )
        files["meta_neurons"] = str(out / "meta-neurons.json")
    summary = {
        "config": asdict(cfg),
        "epoch": clusters["epoch"],
        "clusters": {k: clusters["clouds"][k] for k in ("ab", "cd")},
        "candidates": clusters["candidates"],
        "filter": report.summary(),
        "kept": report.kept,
        "comparison": comparison,
        "paper": {"neurons": src["paper"], "candidates": src["paper_candidates"], "centres": src["paper_centres"]},
        "files": files,
    }
    write_text_atomic(out / "phase3" / "filter.json", json.dumps(report.summary(), indent=2) + "\n")
    write_text_atomic(out / "pipeline.json", json.dumps(summary, indent=2, default=str) + "\n")
    write_text_atomic(out / "report.md", format_report(summary))
    files["report"] = str(out / "report.md")
    return summary


def _theta_text(theta) -> str:
    return "(" + ", ".join(f"{x:.3f}" for x in theta) + ")"


def format_report(summary: dict[str, Any]) -> str:
    """The markdown report of :func:`run_pipeline`."""
    cfg, files = summary["config"], summary["files"]
    ab, cd = summary["clusters"]["ab"], summary["clusters"]["cd"]
    out_dir = Path(cfg["out"])

    def rel(path: str | None) -> str:
        if not path:
            return "(not drawn)"
        try:
            return str(Path(path).relative_to(out_dir))
        except ValueError:
            return str(path)

    lines = [
        f"# MDN meta-neuron pipeline on {cfg['dataset']}",
        "",
        f"Phase 1: `mdn` network trained {cfg['epochs']} epoch(s), seed {cfg['seed']}"
        f"{', theta per batch slot' if cfg['theta_per_batch_slot'] else ''}; theta of epoch {summary['epoch']} clustered "
        f"(run directory `{rel(files['phase1'])}`).",
        "",
        "## Phase 2: clusters",
        "",
        "| cloud | points | bandwidth | M (mean shift) | M used | centres |",
        "|---|---|---|---|---|---|",
    ]
    paper_centres = summary["paper"].get("centres") or {}
    for key, name, c in (("ab", "(theta_a, theta_b)", ab), ("cd", "(theta_c, theta_d)", cd)):
        centres = "; ".join(f"({x:.3f}, {y:.3f})" for x, y in c["centres"])
        lines.append(f"| {name} | {c['points']} | {c['bandwidth']:.4f} | {c['m_mean_shift']} | {c['m']} ({c['method']}) | {centres} |")
        if key in paper_centres:
            paper = "; ".join(f"({x:.3f}, {y:.3f})" for x, y in paper_centres[key])
            lines.append(f"| {name}, paper | | | | {len(paper_centres[key])} | {paper} |")
    lines += [
        "",
        f"Candidates: {ab['m']} x {cd['m']} = {len(summary['candidates'])} (paper on this task: {summary['paper']['candidates']}).",
        "",
        f"![clusters]({rel(files.get('phase2_plot'))})",
        "",
        "## Phase 3: dynamics under the reference sine",
        "",
        "| candidate | theta (a, b, c, d) | spikes | verdict | closest paper neuron (spike trains) | theta distance to it |",
        "|---|---|---|---|---|---|",
    ]
    filt = summary["filter"]["candidates"]
    for c in summary["candidates"]:
        name = c["name"]
        comp = summary["comparison"][name]
        ref = comp["closest_by_dynamics"]
        verdict = "**kept**" if filt[name]["kept"] else filt[name]["reason"]
        theta = [c[k] for k in THETA_KEYS]
        lines.append(
            f"| {name} | {_theta_text(theta)} | {filt[name]['spike_count']} | {verdict} | {ref} "
            f"(distance {comp['to_paper'][ref]['spike_distance']:.2f}) | {comp['to_paper'][ref]['theta_distance']:.3f} |"
        )
    settings = summary["filter"]["settings"]
    lines += [
        "",
        f"Drive: sine of mean {settings['drive_mean']:.2f}, std {settings['drive_std']:.3f}, period {settings['period']} "
        f"steps, {settings['steps']} steps, fed as the pre-activation z. Spike distance: van Rossum (tau "
        f"{settings['tau']:g} steps, 0 = identical trains, 1 = no overlap); candidates closer than "
        f"{settings['threshold']:g} (average linkage) form one group, of which one is kept.",
        "",
        f"![dynamics]({rel(files.get('phase3_plot'))})",
        "",
        "## Kept meta neurons",
        "",
    ]
    if summary["kept"]:
        for name in summary["kept"]:
            comp = summary["comparison"][name]
            parts = ", ".join(
                f"{ref}: spike distance {v['spike_distance']:.2f}, theta distance {v['theta_distance']:.3f}"
                for ref, v in comp["to_paper"].items()
            )
            lines.append(f"* **{name}** behaves most like {comp['closest_by_dynamics']} ({parts})")
        lines += [
            "",
            f"They are saved in `{rel(files.get('meta_neurons'))}`; train with them as "
            f"`--neuron {files.get('meta_neurons')}:{summary['kept'][0]}`.",
        ]
    else:
        lines.append("No candidate passed the filter.")
    return "\n".join(lines) + "\n"


__all__ = ["SOURCE_TASKS", "PipelineConfig", "run_pipeline", "learn_dynamics", "compare_with_paper", "format_report"]
