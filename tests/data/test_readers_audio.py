"""RIFF / SPHERE audio, the spectral features, and the TIDigits, FSDD and TIMIT sets on fixtures."""

import numpy as np
import pytest
import torch
from writers import write_sphere, write_wav

from spikedyn.data import DataFileError, format_summary, load_dataset
from spikedyn.data.audio import deltas, fbank, mel_filterbank, mfcc, read_audio, spectrogram_frames
from spikedyn.data.spoken_digits import tidigits_files, tidigits_scan
from spikedyn.data.timit import PHONES_39, frame_labels


def tone(freq: float, seconds: float, rate: int, amplitude: int = 8000, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.RandomState(seed).randn(len(t)) * 50
    return (amplitude * np.sin(2 * np.pi * freq * t) + noise).astype(np.int16)


def test_riff_and_sphere_read_the_same_samples(tmp_path):
    samples = tone(440, 0.1, 16000)
    a, ra = read_audio(write_wav(tmp_path / "a.wav", samples, 16000))
    b, rb = read_audio(write_sphere(tmp_path / "b.wav", samples, 16000))
    assert ra == rb == 16000 and np.array_equal(a, samples) and np.array_equal(b, samples)
    (tmp_path / "c.wav").write_bytes(b"OggS....")
    with pytest.raises(DataFileError, match="neither a RIFF/WAVE nor a NIST SPHERE"):
        read_audio(tmp_path / "c.wav")
    sph = (tmp_path / "b.wav").read_bytes()
    (tmp_path / "d.wav").write_bytes(sph[:-100])
    with pytest.raises(DataFileError, match="promises 1600 samples"):
        read_audio(tmp_path / "d.wav")


def test_mel_filterbank_is_triangular_and_fbank_finds_the_tone():
    fb = mel_filterbank(26, 512, 16000)
    assert fb.shape == (26, 257) and fb.max() == pytest.approx(1.0) and (fb >= 0).all()
    feat, energy = fbank(tone(1000, 0.2, 16000), 16000)
    assert feat.shape == (19, 26) and energy.shape == (19,)  # 1 + ceil((3200 - 400) / 160) frames
    centres = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 28) / 2595) - 1)[1:-1]
    assert abs(centres[feat[5].argmax()] - 1000) < 150


def test_spectrogram_frames_cover_the_utterance_and_normalise_bands():
    image = spectrogram_frames(tone(500, 0.5, 8000), 8000, frames=30, bands=30)
    assert image.shape == (30, 30)
    np.testing.assert_allclose(image.sum(0), np.ones(30))
    assert spectrogram_frames(tone(500, 0.5, 8000), 8000, frames=39, bands=39).shape == (39, 39)


def test_mfcc_and_deltas():
    m = mfcc(tone(300, 0.3, 16000), 16000)
    assert m.shape == (29, 13) and np.isfinite(m).all()  # 1 + ceil((4800 - 400) / 160)
    v = np.arange(12.0).reshape(4, 3) ** 2
    d = deltas(v)
    assert (d[0] == 0).all() and (d[-1] == 0).all() and d[1].tolist() == (v[2] - v[0]).tolist()


def fsdd_fixture(root):
    for digit in (0, 1):
        for speaker in ("jackson", "theo"):
            for index in (0, 7):
                write_wav(root / "fsdd" / "recordings" / f"{digit}_{speaker}_{index}.wav", tone(300 + 200 * digit, 0.3, 8000, seed=index), 8000)


@pytest.mark.filterwarnings("ignore:fsdd")  # the fixture is a small part of the release (complete=False)
def test_fsdd_official_and_speaker_splits(tmp_path):
    fsdd_fixture(tmp_path)
    ds = load_dataset("fsdd", tmp_path, progress=False, complete=False)
    assert ds.train.tensors[0].shape == (4, 30, 30) and ds.test.tensors[0].shape == (4, 30, 30)
    assert ds.train.tensors[1].tolist() == [0, 0, 1, 1] and ds.kind == "sequence"
    spk = load_dataset("fsdd", tmp_path, split="speaker", test_speaker="theo", progress=False, complete=False)
    assert len(spk.train) == 4 and len(spk.test) == 4
    bands = load_dataset("fsdd", tmp_path, time_axis="bands", progress=False, complete=False)
    assert torch.equal(bands.train.tensors[0][0], ds.train.tensors[0][0].T)
    torch.testing.assert_close(ds.train.tensors[0][0].sum(0), torch.ones(30))
    (tmp_path / "fsdd" / "recordings" / "1_theo_7.wav").write_bytes(b"RIFF\x00\x00")
    with pytest.raises(DataFileError, match="1_theo_7.wav"):
        load_dataset("fsdd", tmp_path, progress=False, complete=False)
    with pytest.raises(DataFileError, match="fsdd/recordings.*\n.*Obtain it from"):
        load_dataset("fsdd", tmp_path / "nowhere", progress=False, complete=False)


def test_tidigits_layout_split_and_labels(tmp_path):
    base = tmp_path / "TIDIGITS"
    names = ["za", "1a", "2b", "oa", "3a", "12a", "9b", "4a", "5a", "6b", "7a"]
    for i, name in enumerate(names):
        group = "train" if i % 2 else "test"
        write_sphere(base / group / "man" / "ae" / f"{name}.wav", tone(200 + 40 * i, 0.4, 20000, seed=i), 20000)
    write_wav(base / "train" / "woman" / "bc" / "8A_endpt.wav", tone(900, 0.4, 20000), 20000)  # the authors' copies
    write_wav(base / "train" / "woman" / "bc" / "1B_endpt.wav", tone(950, 0.4, 20000), 20000)
    ds = load_dataset("tidigits", tmp_path, progress=False)
    total = len(ds.train) + len(ds.test)
    assert total == 11  # "oh" and the two-digit file are not isolated digits 0-9
    assert ds.notes["duplicates_dropped"] == 0  # 1a (ae) and 1B_endpt (bc) are different speakers
    assert len(ds.train) == int(0.7 * 11)
    # the authors' order: (digit char, speaker folder, repetition), then np.random.seed(42) permutation
    ordered = [1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]  # 1a (ae), 1B (bc), 2b, ..., 8A, 9b, za
    perm = np.random.RandomState(42).permutation(11)
    assert ds.train.tensors[1].tolist() == [ordered[i] for i in perm[:7]]
    assert ds.test.tensors[1].tolist() == [ordered[i] for i in perm[7:]]
    assert ds.train.tensors[0].shape[1:] == (30, 30)
    again = load_dataset("tidigits", tmp_path, progress=False)
    assert torch.equal(ds.train.tensors[0], again.train.tensors[0])
    assert load_dataset("tidigits", tmp_path, frames=39, progress=False).train.tensors[0].shape[1:] == (39, 39)
    women = load_dataset("tidigits", tmp_path, groups=("woman",), progress=False)
    assert len(women.train) + len(women.test) == 2
    assert len(load_dataset("tidigits", tmp_path, groups="man,woman", progress=False).train) == 7
    with pytest.raises(DataFileError, match="TIDIGITS.*\n.*LDC93S10"):
        load_dataset("tidigits", tmp_path / "none", progress=False)


def test_tidigits_one_utterance_one_sample(tmp_path):
    speaker = tmp_path / "TIDIGITS" / "train" / "man" / "ae"
    utterance = tone(500, 0.3, 20000, seed=1)
    silence = np.zeros(4000, dtype=np.int16)
    write_sphere(speaker / "1a.wav", np.concatenate([silence, utterance, silence]), 20000)  # raw recording
    write_wav(speaker / "1A_endpt.wav", utterance, 20000)  # its endpointed copy
    write_sphere(speaker / "2b.wav", tone(700, 0.4, 20000, seed=2), 20000)
    ds = load_dataset("tidigits", tmp_path, progress=False)
    assert len(ds.train) + len(ds.test) == 2
    assert sorted(ds.train.tensors[1].tolist() + ds.test.tensors[1].tolist()) == [1, 2]
    assert ds.notes["duplicates_dropped"] == 1 and ds.notes["prefer"] == "endpt"
    assert "duplicates_dropped: 1" in format_summary(ds)

    def digit_one(ds):  # the features of the digit-1 sample, whichever split it landed in
        x = torch.cat([ds.train.tensors[0], ds.test.tensors[0]])
        y = torch.cat([ds.train.tensors[1], ds.test.tensors[1]])
        return x[y == 1][0]

    alone = tmp_path / "alone"
    write_wav(alone / "TIDIGITS" / "ae" / "1A_endpt.wav", utterance, 20000)
    endpt = load_dataset("tidigits", alone, progress=False)
    assert torch.equal(digit_one(ds), digit_one(endpt))
    ds = load_dataset("tidigits", tmp_path, prefer="raw", progress=False)
    assert len(ds.train) + len(ds.test) == 2 and ds.notes["duplicates_dropped"] == 1
    assert not torch.equal(digit_one(ds), digit_one(endpt))
    kept, dropped = tidigits_scan(tmp_path / "TIDIGITS", prefer="raw")
    assert [p.name for p, _ in kept] == ["1a.wav", "2b.wav"] and [p.name for p in dropped] == ["1A_endpt.wav"]
    assert [p.name for p, _ in tidigits_files(tmp_path / "TIDIGITS")] == ["1A_endpt.wav", "2b.wav"]
    with pytest.raises(ValueError, match="prefer"):
        load_dataset("tidigits", tmp_path, prefer="both", progress=False)


def test_tidigits_split_never_holds_an_utterance_twice(tmp_path):
    base = tmp_path / "TIDIGITS" / "test" / "woman"
    n = 0
    for s, speaker in enumerate(("bc", "de", "fg")):
        for d, digit in enumerate("z123456789"):
            rep = "ab"[(s + d) % 2]
            samples = tone(200 + 60 * d + 15 * s, 0.3, 20000, seed=10 * s + d)
            write_sphere(base / speaker / f"{digit}{rep}.wav", samples, 20000)
            if d % 3 == s % 3:  # the endpointed copy beside it, same samples, upper-case name
                write_wav(base / speaker / f"{digit.upper()}{rep.upper()}_endpt.wav", samples, 20000)
                n += 1
    assert n == 10
    ds = load_dataset("tidigits", tmp_path, progress=False)
    assert len(ds.train) + len(ds.test) == 30 and ds.notes["duplicates_dropped"] == 10
    x = torch.cat([ds.train.tensors[0], ds.test.tensors[0]]).flatten(1)
    assert len(torch.unique(x, dim=0)) == 30  # every utterance once, in one split only


def timit_fixture(root, layout):
    speakers = [("dr1", "fabc0"), ("dr1", "mdef0"), ("dr7", "fghi0"), ("dr8", "mjkl0")]
    for region, speaker in speakers:
        for utt in ("sa1", "sx2"):
            samples = tone(150 if speaker[0] == "m" else 250, 0.5, 16000, seed=len(utt))
            if layout == "ldc":
                split = "TRAIN" if region == "dr1" else "TEST"
                folder = root / "TIMIT" / "data" / split / region.upper() / speaker.upper()
                wav = write_sphere(folder / f"{utt.upper()}.WAV", samples, 16000)
                write_wav(folder / f"{utt.upper()}.WAV.wav", samples, 16000)  # a converted copy counts once
                phn = wav.with_suffix(".PHN")
            else:
                wav = write_wav(root / "timit_sample" / f"{region}-{speaker}" / f"{utt}.wav", samples, 16000)
                phn = wav.with_suffix(".phn")
            phn.write_text("0 2000 h#\n2000 4000 sh\n4000 6000 ix\n6000 8000 q\n")


@pytest.mark.parametrize("layout", ["ldc", "nltk"])
def test_timit_gender(tmp_path, layout):
    timit_fixture(tmp_path, layout)
    ds = load_dataset("timit-gender", tmp_path, progress=False)
    assert ds.train.tensors[0].shape == (4, 20, 520) and ds.test.tensors[0].shape == (4, 20, 520)
    assert sorted(ds.train.tensors[1].tolist()) == [0, 0, 1, 1] and ds.num_classes == 2
    assert ds.notes["speakers"] == {"train": 2, "test": 2}
    if layout == "ldc":
        phones = load_dataset("timit-phones", tmp_path, progress=False)
        assert len(phones.train) == 4 and phones.train.tensors[1][0, 12].item() == PHONES_39.index("sh")
    raw = load_dataset("timit-gender", tmp_path, normalize=False, progress=False)
    blocks = raw.train.tensors[0][0].reshape(800, 13)
    assert (blocks[50:] == 0).all() and (blocks[:49] != 0).any()  # 0.5 s -> 49 frames, zero-padded to 800
    train_values = ds.train.tensors[0]
    assert train_values.mean().abs() < 1e-4 and (train_values.std() - 1).abs() < 1e-3


def test_timit_phones_and_frame_labels(tmp_path):
    timit_fixture(tmp_path, "nltk")
    ds = load_dataset("timit-phones", tmp_path, progress=False)
    x, y, lengths = ds.train.tensors
    assert x.shape == (4, 780, 39) and y.shape == (4, 780) and ds.target == "frame_class"
    assert lengths.tolist() == [49] * 4  # real frames per utterance (0.5 s), the rest padding
    sil, sh, ih = PHONES_39.index("sil"), PHONES_39.index("sh"), PHONES_39.index("ih")
    assert y[0, :11].tolist() == [sil] * 11  # centres 200 + 160 i < 2000 -> h# -> sil
    assert y[0, 12:23].tolist() == [sh] * 11 and y[0, 25].item() == ih and y[0, 40].item() == sil  # ix -> ih, q -> sil
    assert (y[0, 49:] == sil).all() and (x[0, 49:] == 0).all()
    labels = frame_labels([(0, 400, "aa"), (400, 800, "ao")], 6)  # centres 200, 360, ..., 1000
    assert labels.tolist() == [PHONES_39.index("aa")] * 4 + [0, 0]  # ao folds onto aa; beyond the last phone: sil
    with pytest.raises(ValueError, match="unknown TIMIT phone"):
        frame_labels([(0, 400, "xx")], 2)


def test_timit_missing(tmp_path):
    with pytest.raises(DataFileError, match="TIMIT.*\n.*LDC93S1"):
        load_dataset("timit-gender", tmp_path, progress=False)


def test_timit_phone_files_missing_or_corrupt(tmp_path):
    timit_fixture(tmp_path, "nltk")
    phn = tmp_path / "timit_sample" / "dr7-fghi0" / "sx2.phn"
    phn.write_text("0 2000 h#\n2000 oops sh\n")
    with pytest.raises(DataFileError, match="sx2.phn\n.*line 2 is not 'start end phone'"):
        load_dataset("timit-phones", tmp_path, progress=False)
    phn.unlink()
    with pytest.raises(DataFileError, match="required file not found: .*sx2.phn"):
        load_dataset("timit-phones", tmp_path, progress=False)
    wav = tmp_path / "timit_sample" / "dr1-fabc0" / "sa1.wav"
    wav.write_bytes(wav.read_bytes()[:-1001])
    with pytest.raises(DataFileError, match="sa1.wav"):
        load_dataset("timit-gender", tmp_path, progress=False)
