"""A 30-byte wav: the message names the file and says it is too short for the 44-byte header."""

import pytest
from bad_input_helpers import write_wav

from spikedyn.data import DataFileError
from spikedyn.data.audio import read_audio


def test_thirty_byte_wav(tmp_path):
    import numpy as np

    full = write_wav(tmp_path / "full.wav", np.zeros(100, np.int16), 8000).read_bytes()
    short = tmp_path / "3_theo_7.wav"
    short.write_bytes(full[:30])
    with pytest.raises(DataFileError, match="too short: 30 bytes, while a RIFF/WAVE header alone needs 44") as info:
        read_audio(short, "fsdd")
    assert str(short) in str(info.value)


def test_wav_whose_chunks_end_early(tmp_path):
    import numpy as np

    full = write_wav(tmp_path / "full.wav", np.zeros(100, np.int16), 8000).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full[:12] + b"LIST" + (1000).to_bytes(4, "little") + b"\0" * 30)  # a chunk longer than the file
    with pytest.raises(DataFileError, match="cut.wav(.|\n)*(end early|not a readable)"):
        read_audio(cut, "fsdd")
