"""A recording missing from FSDD is named (the release has 3,000: 6 speakers x 10 digits x 50)."""

import numpy as np
import pytest
from bad_input_helpers import write_wav

from spikedyn.data import DataFileError, load_dataset


def tone(seed: int) -> np.ndarray:
    return (3000 * np.sin(np.arange(800) * (0.1 + 0.01 * seed))).astype(np.int16)


def write_listed(root, names, present):
    """FSDD with a ``files.csv`` listing ``names``, of which ``present`` exist."""
    folder = root / "fsdd" / "recordings"
    for name in present:
        write_wav(folder / name, tone(int(name[0])), 8000)
    rows = [f"{n},{n[0]},{n.split('_')[1]},{n.split('_')[2][:-4]}" for n in names]
    (root / "fsdd" / "files.csv").write_text("file,digit,speaker,index\n" + "\n".join(rows) + "\n")


def test_missing_file_of_the_listing_is_named(tmp_path):
    names = ["0_theo_0.wav", "0_theo_5.wav", "1_theo_0.wav", "1_theo_5.wav"]
    write_listed(tmp_path, names, [n for n in names if n != "1_theo_5.wav"])
    with pytest.raises(DataFileError, match=r"1 of the 4 files listed in .*files.csv are missing .*: 1_theo_5.wav") as info:
        load_dataset("fsdd", tmp_path, progress=False)
    assert "complete=false" in str(info.value)


def test_complete_false_uses_the_files_present_with_a_warning(tmp_path):
    names = ["0_theo_0.wav", "0_theo_5.wav", "1_theo_0.wav", "1_theo_5.wav"]
    write_listed(tmp_path, names, [n for n in names if n != "1_theo_5.wav"])
    with pytest.warns(UserWarning, match="1_theo_5.wav"):
        ds = load_dataset("fsdd", tmp_path, progress=False, complete=False)
    assert len(ds.train) + len(ds.test) == 3 and ds.notes["missing_recordings"] == 1


def test_without_a_listing_every_digit_and_repetition_of_a_speaker_is_expected(tmp_path):
    folder = tmp_path / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    header = (tmp_path / "one.wav")
    write_wav(header, tone(0), 8000)
    data = header.read_bytes()
    for digit in range(10):
        for index in range(50):
            if (digit, index) != (3, 7):
                (folder / f"{digit}_theo_{index}.wav").write_bytes(data)
    with pytest.warns(UserWarning, match="no recordings of the speaker"):  # five speakers absent
        with pytest.raises(DataFileError, match="1 of 10 digits x 50 repetitions .* missing .*: 3_theo_7.wav"):
            load_dataset("fsdd", tmp_path, progress=False)
