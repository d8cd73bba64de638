"""Ad-hoc experiment sweeps: data sets x neurons x learning rules x seeds, run like a paper table.

:func:`sweep_table` turns a sweep into a :class:`~spikedyn.reproduce.tables.TableSpec` without
paper figures, so the same planner, runner (parallel processes or GPUs, every cell resumable,
finished cells never rerun) and report serve it.  With one rule the report has one column per
neuron; with several rules, one column per rule (each rule's cells in their own folder
``<dataset>-<rule>``) and the neurons side by side in the per-row table.
"""

from __future__ import annotations

from ..learning import check_rule
from .tables import AUTHORS_SEED, RUNNER_FIELDS, RowSpec, TableSpec, validate_table


def sweep_table(
    name: str,
    datasets: list[str],
    neurons: list[str],
    rules: list[str] | None = None,
    data_options: dict | None = None,
    train_options: dict | None = None,
    epochs: int = 10,
    lr_step: int = 50,
    first_seed: int = AUTHORS_SEED,
) -> TableSpec:
    """The table of a sweep (validated; not registered).  ``train_options``: TrainConfig fields of every cell."""
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"sweep name {name!r} must be a plain folder name, e.g. lif-vs-fs")
    if not datasets or not neurons:
        raise ValueError("a sweep needs at least one data set (--dataset) and one neuron kind (--neurons)")
    rules = list(dict.fromkeys(rules or ["bptt"]))
    for rule in rules:
        check_rule(rule)
    reserved = sorted(set(train_options or {}) & (set(RUNNER_FIELDS) | {"rule"}))
    if reserved:
        raise ValueError(f"sweep options cannot set {', '.join(reserved)}: pass them as the sweep's own flags")
    options = dict(data_options or {})
    by_rule = len(rules) > 1
    rows = []
    for dataset in dict.fromkeys(datasets):
        for rule in rules:
            if by_rule:
                rows.append(RowSpec(f"{dataset}, {rule}", dataset, data_options=options, train_options={"rule": rule},
                                    variant=rule, task=dataset, column=rule))
            else:
                rows.append(RowSpec(dataset, dataset, data_options=options, train_options={"rule": rule}))
    spec = TableSpec(
        name=name,
        title=f"Sweep {name}",
        source="no paper figures: an experiment sweep",
        neurons=tuple(dict.fromkeys(neurons)),
        rows=tuple(rows),
        columns=tuple(rules) if by_rule else (),
        train_options=dict(train_options or {}),
        epochs=epochs,
        lr_step=lr_step,
        first_seed=first_seed,
        paper_schedule="",
    )
    validate_table(spec)
    return spec
