"""Paper tables as data: which tasks, which neurons, the paper's numbers, the checks.

A :class:`TableSpec` lists :class:`RowSpec` rows (one task each) and the neuron kinds of its
columns.  Every number in a ``paper`` field is **the paper's**, in percent, copied from the
publication; nothing here is computed.  The runner (:mod:`spikedyn.reproduce.runner`) turns a
table into training cells and the report (:mod:`spikedyn.reproduce.report`) sets our numbers
beside the paper's.  A new table is a new :func:`register_table` call, not new code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: a paper figure: (mean %, std % or None when the paper gives none)
PaperValue = tuple[float, "float | None"]


@dataclass(frozen=True)
class StandIn:
    """A data set used in place of the row's own when that one is absent (e.g. licensed)."""

    dataset: str
    data_options: dict = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class RowSpec:
    """One task of a table.

    * ``dataset`` / ``data_options``: what the paper used, as a registered data set name.
    * ``paper``: the paper's figure per neuron kind (percent).
    * ``paper_best``: a paper figure not tied to a neuron (the report compares it to our best
      neuron); ``paper_best_note`` says what the paper states about it.
    * ``train_options``: extra :class:`~spikedyn.train.TrainConfig` fields, e.g.
      ``{"encoder": "rate"}``.
    * ``stand_ins``: tried in order when ``dataset`` has no files.
    * ``kind``: ``"spatial"`` or ``"temporal"`` (MDN's capability, Eq. 7), or None.
    * ``variant``: a suffix of the run folder, needed when two rows of a table train on the same
      data set (folder ``<dataset>-<variant>``).
    * ``paper_samples``: the paper's train/test sizes, as text, to set beside ours.
    """

    label: str
    dataset: str
    paper: dict[str, PaperValue] = field(default_factory=dict)
    data_options: dict = field(default_factory=dict)
    train_options: dict = field(default_factory=dict)
    stand_ins: tuple[StandIn, ...] = ()
    kind: str | None = None
    variant: str | None = None
    paper_best: PaperValue | None = None
    paper_best_note: str = ""
    paper_samples: str = ""

    def __post_init__(self) -> None:
        if self.kind not in (None, "spatial", "temporal"):
            raise ValueError(f"row {self.label!r}: kind must be 'spatial', 'temporal' or None, got {self.kind!r}")

    def candidates(self) -> list[tuple[str, dict, str]]:
        """``(dataset, data_options, note)`` in the order tried: the row's own, then its stand-ins."""
        return [(self.dataset, dict(self.data_options), "")] + [
            (s.dataset, dict(s.data_options), s.note) for s in self.stand_ins
        ]

    def folder(self, dataset: str) -> str:
        """Run folder name of this row when it trains on ``dataset``."""
        return dataset if self.variant is None else f"{dataset}-{self.variant}"


@dataclass(frozen=True)
class CheckSpec:
    """A qualitative claim of the paper: on each of ``rows``, every neuron of ``winners`` scores
    above (``strict``) or at least (not ``strict``) every neuron of ``losers``."""

    text: str
    rows: tuple[str, ...]
    winners: tuple[str, ...]
    losers: tuple[str, ...]
    strict: bool = True


@dataclass(frozen=True)
class TableSpec:
    """A paper table: rows (tasks) x neurons, the paper's numbers and qualitative checks."""

    name: str
    title: str
    source: str
    neurons: tuple[str, ...]
    rows: tuple[RowSpec, ...]
    notes: tuple[str, ...] = ()
    checks: tuple[CheckSpec, ...] = ()
    capability: bool = False  # report MDN's spatial/temporal capability (rows need a kind)

    def row(self, label: str) -> RowSpec:
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(f"table {self.name!r} has no row {label!r}; rows: {', '.join(r.label for r in self.rows)}")


#: every registered table, by name
TABLES: dict[str, TableSpec] = {}


def register_table(spec: TableSpec, replace: bool = False) -> TableSpec:
    """Add a table to :data:`TABLES` (an existing name is an error unless ``replace``)."""
    if spec.name in TABLES and not replace:
        raise ValueError(f"a table named {spec.name!r} is already registered; pass replace=True to replace it")
    labels = [r.label for r in spec.rows]
    if len(set(labels)) != len(labels):
        raise ValueError(f"table {spec.name!r}: row labels must be unique, got {labels}")
    owner: dict[str, str] = {}
    for r in spec.rows:
        for dataset, _, _ in r.candidates():
            folder = r.folder(dataset)
            if owner.setdefault(folder, r.label) != r.label:
                raise ValueError(
                    f"table {spec.name!r}: rows {owner[folder]!r} and {r.label!r} would share the run folder "
                    f"{folder!r}; give one of them a variant"
                )
    for check in spec.checks:
        for label in check.rows:
            spec.row(label)
    TABLES[spec.name] = spec
    return spec


def get_table(name: str) -> TableSpec:
    """The registered table ``name``; an unknown name is an error listing the tables."""
    try:
        return TABLES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; available: {', '.join(sorted(TABLES)) or 'none'}") from None


def table_names() -> list[str]:
    return sorted(TABLES)


# --------------------------------------------------------------------------------------------
# MDN (Finite Meta-Dynamic Neurons), Tables 3 and 4
# --------------------------------------------------------------------------------------------

MDN_NEURONS = ("2nd-fs", "2nd-rs", "2nd-sds", "2nd-wds", "lif")
FSDD_FOR_TIDIGITS = StandIn(
    "fsdd",
    {"split": "official"},
    "the Free Spoken Digit Dataset (official split) stands in for the licensed TIDigits",
)


def _paper(*values: PaperValue) -> dict[str, PaperValue]:
    """The paper's figures in the column order of :data:`MDN_NEURONS`."""
    if len(values) != len(MDN_NEURONS):
        raise ValueError(f"expected {len(MDN_NEURONS)} paper values, got {len(values)}")
    return dict(zip(MDN_NEURONS, values))


MDN_TABLE3 = TableSpec(
    name="mdn-table3",
    title="MDN Table 3: meta neurons on spatial and temporal tasks",
    source="MDN paper Table 3, mean ± std over 5 seeds, 80 epochs",
    neurons=MDN_NEURONS,
    rows=(
        RowSpec("MNIST", "mnist", _paper((98.67, 0.05), (98.33, 0.03), (94.87, 0.08), (95.34, 0.21), (98.69, 0.03)),
                kind="spatial", paper_samples="60,000 / 10,000"),
        RowSpec("F-MNIST", "fmnist", _paper((90.50, 0.10), (89.58, 0.07), (85.37, 0.06), (85.79, 0.07), (90.38, 0.07)),
                kind="spatial", paper_samples="60,000 / 10,000"),
        RowSpec("NETtalk", "nettalk", _paper((91.46, 0.36), (91.70, 0.14), (87.15, 0.20), (89.41, 0.04), (89.99, 0.25)),
                kind="spatial", paper_samples="5,033 / 500"),
        RowSpec("CIFAR-10", "cifar10", _paper((54.30, 0.16), (53.39, 0.13), (47.26, 0.15), (49.07, 0.08), (52.63, 0.20)),
                kind="spatial", paper_samples="50,000 / 10,000"),
        RowSpec("TIDigits", "tidigits", _paper((65.76, 0.79), (69.47, 0.78), (78.00, 0.44), (76.32, 1.08), (61.64, 1.03)),
                kind="temporal", stand_ins=(FSDD_FOR_TIDIGITS,), paper_samples="4,144 in all, 70 / 30 split"),
        RowSpec("TIMIT-gender", "timit-gender",
                _paper((87.61, 2.39), (87.93, 1.35), (91.22, 1.13), (91.98, 0.70), (76.39, 2.76)),
                kind="temporal", paper_samples="4,620 / 1,680"),
        RowSpec("N-MNIST", "nmnist", _paper((98.14, 0.02), (97.95, 0.01), (97.53, 0.05), (97.63, 0.03), (98.18, 0.03)),
                paper_samples="60,000 / 10,000"),
    ),
    notes=(
        "The paper's columns are its 2nd-order meta neurons (FS, RS, SDS, WDS) and the 1st-order LIF.",
        "NETtalk's score is the authors' cosine similarity, not a classification accuracy.",
        "N-MNIST counts in neither capability group (spatial: MNIST, F-MNIST, NETtalk, CIFAR-10; "
        "temporal: TIDigits, TIMIT).",
    ),
    checks=(
        CheckSpec("spatial types (FS, RS) beat temporal types (SDS, WDS) on MNIST, F-MNIST, NETtalk, CIFAR-10",
                  ("MNIST", "F-MNIST", "NETtalk", "CIFAR-10"), ("2nd-fs", "2nd-rs"), ("2nd-sds", "2nd-wds")),
        CheckSpec("temporal types (SDS, WDS) win on TIDigits and TIMIT",
                  ("TIDigits", "TIMIT-gender"), ("2nd-sds", "2nd-wds"), ("2nd-fs", "2nd-rs", "lif")),
        CheckSpec("FS >= RS on MNIST", ("MNIST",), ("2nd-fs",), ("2nd-rs",), strict=False),
        CheckSpec("SDS >= WDS on TIDigits", ("TIDigits",), ("2nd-sds",), ("2nd-wds",), strict=False),
    ),
    capability=True,
)

MDN_TABLE4 = TableSpec(
    name="mdn-table4",
    title="MDN Table 4: spoken digits fed sequentially and non-sequentially",
    source="MDN paper Table 4 (single figures; the neuron is not stated)",
    neurons=MDN_NEURONS,
    rows=(
        RowSpec(
            "sequential", "tidigits", stand_ins=(FSDD_FOR_TIDIGITS,),
            paper_best=(78.00, None),
            paper_best_note="the 30x30 spectrogram fed frame by frame; the best 2nd-order neuron of Table 3 (2nd-SDS)",
            paper_samples="4,144 in all, 70 / 30 split",
        ),
        RowSpec(
            "non-sequential", "tidigits", stand_ins=(FSDD_FOR_TIDIGITS,), variant="static",
            train_options={"input_view": "static", "encoder": "rate"},
            paper_best=(94.00, None),
            paper_best_note=(
                "not described in the paper; here (spec [A]) the flattened 900-value spectrogram is fed at every "
                "step through BernoulliRate(1)"
            ),
            paper_samples="4,144 in all, 70 / 30 split",
        ),
    ),
    notes=(
        "The paper does not say which neuron gave these numbers: all five neurons are run and the best mean "
        "of ours is set against the paper's figure.",
    ),
)

register_table(MDN_TABLE3)
register_table(MDN_TABLE4)
