"""Paper tables as data, one runner that trains their cells, and paper-vs-ours reports.

>>> from spikedyn.reproduce import get_table, build_plan, run_plan, write_report
>>> plan = build_plan(get_table("mdn-table3"), seeds=3, epochs=20, lr_step=15, tasks=["mnist"])  # doctest: +SKIP
>>> run_plan(plan, jobs=2)  # doctest: +SKIP
>>> write_report(plan)  # doctest: +SKIP

The command line equivalent is ``spikedyn reproduce mdn-table3 --tasks mnist --seeds 3 --epochs 20 --lr-step 15``.
Tables: ``mdn-table3``, ``mdn-table4`` (neurons as columns), ``brp-table3`` (BRP vs pseudo-BP),
``brp-fig5`` (three teaching signals, with their test curves), ``brp-fig7`` (accuracy against T),
``plif-table2`` (accuracy-A and -B), ``plif-table4`` (PLIF vs LIF, tau 2 / 16), ``plif-table5`` (max vs
average pooling), ``nrr-table2`` (NRR-SNN ablations), ``nrr-fig4`` (accuracy against the loop sparseness).
"""

from .report import build_report, evaluate_check, render_markdown, write_report
from .cells import AUTHORS_SEED, DEFAULT_OUT_ROOT, Cell, CellState, cell_dir, cell_state, neuron_folder, seed_list
from .plan import TABLE_DEFAULT, Plan, RowPlan, build_plan, describe_plan
from .runner import RunSummary, run_plan
from .tables import (
    PAPER_EPOCHS, PAPER_LR_STEP, TABLES, CheckSpec, RowSpec, StandIn, TableSpec, get_table, register_table, table_names,
    validate_table,
)
from . import tables_plif  # noqa: F401,E402  (registers plif-table2, plif-table4, plif-table5)
from . import tables_nrr  # noqa: F401,E402  (registers nrr-table2, nrr-fig4)

__all__ = [
    "AUTHORS_SEED", "DEFAULT_OUT_ROOT", "PAPER_EPOCHS", "PAPER_LR_STEP", "TABLE_DEFAULT",
    "Cell", "CellState", "Plan", "RowPlan", "RunSummary",
    "build_plan", "cell_dir", "cell_state", "describe_plan", "neuron_folder", "run_plan", "seed_list",
    "build_report", "evaluate_check", "render_markdown", "write_report",
    "TABLES", "CheckSpec", "RowSpec", "StandIn", "TableSpec", "get_table", "register_table", "table_names",
    "validate_table",
]
