import json
from pathlib import Path

import pytest

from spikedyn.reproduce import RowSpec, TableSpec, get_table, register_table, table_names
from spikedyn.train import TrainConfig

SPEC_TARGETS = Path(__file__).resolve().parents[3] / "shared" / "spec" / "paper-targets.json"
LABELS = {"2nd-fs": "2nd-FS", "2nd-rs": "2nd-RS", "2nd-sds": "2nd-SDS", "2nd-wds": "2nd-WDS", "lif": "LIF"}


def test_mdn_tables_are_registered():
    assert {"mdn-table3", "mdn-table4"} <= set(table_names())
    t3 = get_table("MDN-Table3")
    assert [r.dataset for r in t3.rows] == ["mnist", "fmnist", "nettalk", "cifar10", "tidigits", "timit-gender", "nmnist"]
    assert t3.neurons == ("2nd-fs", "2nd-rs", "2nd-sds", "2nd-wds", "lif")
    assert [r.label for r in t3.rows if r.kind == "spatial"] == ["MNIST", "F-MNIST", "NETtalk", "CIFAR-10"]
    assert [r.label for r in t3.rows if r.kind == "temporal"] == ["TIDigits", "TIMIT-gender"]
    (fsdd,) = t3.row("TIDigits").stand_ins
    assert fsdd.dataset == "fsdd" and fsdd.data_options == {"split": "official"} and "licensed" in fsdd.note
    with pytest.raises(ValueError, match="mdn-table3"):
        get_table("mdn-table9")


def test_table4_rows():
    t4 = get_table("mdn-table4")
    seq, static = t4.rows
    assert seq.paper_best == (78.00, None) and static.paper_best == (94.00, None)
    assert static.train_options == {"input_view": "static", "encoder": "rate"}
    assert set(static.train_options) <= {f for f in TrainConfig.__dataclass_fields__}
    assert seq.folder("fsdd") == "fsdd" and static.folder("fsdd") == "fsdd-static"
    assert any("does not say which neuron" in n for n in t4.notes)


def test_paper_numbers_match_the_spec_targets():
    if not SPEC_TARGETS.exists():
        pytest.skip("the spec's paper-targets.json is not beside the repository")
    targets = json.loads(SPEC_TARGETS.read_text())
    t3 = targets["mdn-table3"]
    for row in get_table("mdn-table3").rows:
        expected = t3["rows"][row.label]
        for neuron, value in row.paper.items():
            assert list(value) == pytest.approx(expected[t3["neurons"].index(LABELS[neuron])])
    assert get_table("mdn-table4").row("non-sequential").paper_best[0] == targets["mdn-table4"]["rows"]["TIDigits non-sequential"][0]


def test_rows_sharing_a_run_folder_are_refused():
    rows = (RowSpec("a", "digits"), RowSpec("b", "digits"))
    with pytest.raises(ValueError, match="variant"):
        register_table(TableSpec("test-clash", "t", "s", ("lif",), rows))
    with pytest.raises(ValueError, match="kind"):
        RowSpec("a", "digits", kind="spectral")
