"""Audio reading (RIFF wav, NIST SPHERE) and the spectral features of the papers.

* :func:`read_audio` reads RIFF/WAVE (16-bit PCM) and NIST SPHERE (``NIST_1A`` header, PCM,
  either byte order; shorten-compressed SPHERE is refused with a clear error).
* :func:`fbank` is the mel filterbank of the authors' pipeline (python_speech_features
  semantics): pre-emphasis ``y_n = x_n - 0.97 x_{n-1}``, frames of ``round(winlen*fs)``
  samples every ``round(winstep*fs)`` (the last one zero-padded), window, power spectrum
  ``|rfft(frame, nfft)|^2 / nfft`` (rectangular window by default, as python_speech_features;
  the TIDigits pipeline passes Hamming), triangular mel filters with ``mel = 2595 log10(1 + f/700)``
  spaced evenly from 0 Hz to ``fs/2`` on ``nfft + 1`` bins; zeros replaced by machine epsilon.
  Returns the filterbank energies ``[frames, nfilt]`` (no log) and the frame energies.
* :func:`mfcc`: ``log`` of the filterbank, DCT-II (orthonormal), first ``numcep`` cepstra,
  sine lifter ``1 + (L/2) sin(pi n / L)`` (L = 22), ``c0`` replaced by the log frame energy.
* :func:`deltas`: ``d_t = v_{t+1} - v_{t-1}``, zero at both ends (the LSNN/e-prop features).

Implemented here with NumPy/SciPy (a few dozen lines) rather than adding a dependency.
"""

from __future__ import annotations

import functools
import math
import wave
from pathlib import Path

import numpy as np

from .base import corrupt_file


def read_sphere(path: Path, dataset: str = "audio", obtain: str = "the corpus distribution") -> tuple[np.ndarray, int]:
    """NIST SPHERE file -> (int16 samples, sample rate)."""
    raw = Path(path).read_bytes()
    if not raw.startswith(b"NIST_1A"):
        raise corrupt_file(Path(path), dataset, "not a NIST SPHERE file (no NIST_1A header)", obtain)
    try:
        header_size = int(raw[8:16].decode().strip())
        fields = {}
        for line in raw[16:header_size].decode("ascii", "replace").splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3:
                fields[parts[0]] = parts[2].strip()
        rate = int(fields.get("sample_rate", "16000"))
        width = int(fields.get("sample_n_bytes", "2"))
        count = int(fields["sample_count"]) * int(fields.get("channel_count", "1"))
    except (ValueError, KeyError) as exc:
        raise corrupt_file(Path(path), dataset, f"unreadable SPHERE header ({exc})", obtain) from exc
    coding = fields.get("sample_coding", "pcm")
    if "shorten" in coding or coding not in ("pcm",) and not coding.startswith("pcm"):
        raise corrupt_file(
            Path(path), dataset,
            f"SPHERE sample coding {coding!r} is not plain PCM; decompress it first (e.g. with sph2pipe)", obtain,
        )
    if width != 2:
        raise corrupt_file(Path(path), dataset, f"expected 16-bit samples, header says {width} bytes", obtain)
    order = fields.get("sample_byte_format", "01")
    dtype = "<i2" if order == "01" else ">i2"
    data = raw[header_size:]
    if len(data) < count * width:
        raise corrupt_file(Path(path), dataset, f"header promises {count} samples, file holds {len(data) // width}", obtain)
    return np.frombuffer(data, dtype=dtype, count=count).astype(np.int16), rate


#: bytes of the smallest RIFF/WAVE file: the RIFF header (12), a PCM "fmt " chunk (24), the "data" chunk header (8).
WAV_HEADER_BYTES = 44


def read_wav(path: Path, dataset: str = "audio", obtain: str = "the corpus distribution") -> tuple[np.ndarray, int]:
    """RIFF/WAVE 16-bit PCM -> (int16 samples of the first channel, sample rate).

    A file too short for the header, or whose chunks end early, is reported with its size.
    """
    size = Path(path).stat().st_size
    if size < WAV_HEADER_BYTES:
        raise corrupt_file(
            Path(path), dataset,
            f"too short: {size} bytes, while a RIFF/WAVE header alone needs {WAV_HEADER_BYTES} (the file is cut short)",
            obtain,
        )
    try:
        with wave.open(str(path), "rb") as fh:
            if fh.getsampwidth() != 2:
                raise corrupt_file(Path(path), dataset, f"expected 16-bit PCM, got {8 * fh.getsampwidth()}-bit", obtain)
            frames = fh.readframes(fh.getnframes())
            channels, rate, expected = fh.getnchannels(), fh.getframerate(), fh.getnframes()
    except (EOFError, RuntimeError) as exc:  # the wave module's errors for a chunk running past the end
        raise corrupt_file(
            Path(path), dataset, f"its RIFF chunks end early ({size} bytes): the file is cut short", obtain
        ) from exc
    except wave.Error as exc:
        raise corrupt_file(Path(path), dataset, f"not a readable RIFF/WAVE file ({exc or type(exc).__name__})", obtain) from exc
    if len(frames) != expected * channels * 2:
        held = len(frames) // (2 * channels)
        raise corrupt_file(Path(path), dataset, f"header promises {expected} frames, file holds {held} (truncated?)", obtain)
    samples = np.frombuffer(frames, dtype="<i2")
    return samples[::channels].copy(), rate


def read_audio(path: Path, dataset: str = "audio", obtain: str = "the corpus distribution") -> tuple[np.ndarray, int]:
    """Read a RIFF wav or NIST SPHERE file by its magic bytes."""
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(7)
    if magic.startswith(b"NIST_1A"):
        return read_sphere(path, dataset, obtain)
    if magic.startswith(b"RIFF"):
        return read_wav(path, dataset, obtain)
    raise corrupt_file(path, dataset, "neither a RIFF/WAVE nor a NIST SPHERE file", obtain)


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def frame_signal(signal: np.ndarray, frame_len: int, frame_step: int, window: np.ndarray) -> np.ndarray:
    """Overlapping frames ``[n_frames, frame_len]``; the signal is zero-padded to fill the last one."""
    n = len(signal)
    n_frames = 1 if n <= frame_len else 1 + int(math.ceil((n - frame_len) / frame_step))
    padded = np.concatenate([signal, np.zeros((n_frames - 1) * frame_step + frame_len - n)])
    idx = np.arange(frame_len)[None, :] + frame_step * np.arange(n_frames)[:, None]
    return padded[idx] * window[None, :]


@functools.lru_cache(maxsize=32)
def mel_filterbank(nfilt: int, nfft: int, rate: int, low_hz: float = 0.0, high_hz: float | None = None) -> np.ndarray:
    """Triangular mel filters ``[nfilt, nfft // 2 + 1]`` (cached; do not modify the result)."""
    high_hz = high_hz or rate / 2
    mel = np.linspace(2595 * np.log10(1 + low_hz / 700), 2595 * np.log10(1 + high_hz / 700), nfilt + 2)
    bins = np.floor((nfft + 1) * (700 * (10 ** (mel / 2595) - 1)) / rate)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        lo, mid, hi = int(bins[j]), int(bins[j + 1]), int(bins[j + 2])
        for i in range(lo, mid):
            fb[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(mid, hi):
            fb[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    return fb


def fbank(
    signal: np.ndarray,
    rate: int,
    winlen: float = 0.025,
    winstep: float = 0.01,
    nfilt: int = 26,
    nfft: int = 512,
    preemph: float = 0.97,
    window: str = "rect",
) -> tuple[np.ndarray, np.ndarray]:
    """Mel filterbank energies ``[frames, nfilt]`` (no log) and frame energies ``[frames]``.

    ``window``: ``"rect"`` (python_speech_features' default) or ``"hamming"``.
    """
    if window not in ("rect", "hamming"):
        raise ValueError(f"window must be 'rect' or 'hamming', got {window!r}")
    x = np.asarray(signal, dtype=np.float64)
    x = np.append(x[0], x[1:] - preemph * x[:-1]) if len(x) else x
    frame_len, frame_step = _round_half_up(winlen * rate), max(1, _round_half_up(winstep * rate))
    win = np.hamming(frame_len) if window == "hamming" else np.ones(frame_len)
    frames = frame_signal(x, frame_len, frame_step, win)
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    energy = power.sum(1)
    energy = np.where(energy == 0, np.finfo(float).eps, energy)
    # einsum, not BLAS: for these tiny products a threaded BLAS costs far more than the arithmetic
    feat = np.einsum("fk,bk->fb", power, mel_filterbank(nfilt, nfft, rate))
    feat = np.where(feat == 0, np.finfo(float).eps, feat)
    return feat, energy


def mfcc(signal: np.ndarray, rate: int, numcep: int = 13, nfilt: int = 26, nfft: int = 512, ceplifter: int = 22,
         window: str = "rect") -> np.ndarray:
    """MFCC ``[frames, numcep]`` with c0 = log frame energy (25 ms window, 10 ms step)."""
    from scipy.fft import dct  # scipy comes with scikit-learn; imported here to keep `import spikedyn` light

    feat, energy = fbank(signal, rate, nfilt=nfilt, nfft=nfft, window=window)
    cep = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :numcep]
    n = np.arange(numcep)
    cep = cep * (1 + (ceplifter / 2.0) * np.sin(np.pi * n / ceplifter))
    cep[:, 0] = np.log(energy)
    return cep


def deltas(features: np.ndarray) -> np.ndarray:
    """``d_t = v_{t+1} - v_{t-1}`` along axis 0, zero at the first and last frame."""
    out = np.zeros_like(features)
    out[1:-1] = features[2:] - features[:-2]
    return out


def spectrogram_frames(signal: np.ndarray, rate: int, frames: int = 30, bands: int = 30) -> np.ndarray:
    """The CASIA TIDigits image: ``frames`` x ``bands`` mel energies covering the whole utterance.

    ``winlen = d / (frames * 0.5 + 0.5)`` (d = duration) and ``winstep = winlen / 2`` so that
    ``frames`` half-overlapping Hamming windows span the signal; ``fbank(nfilt=bands, nfft=4096)``
    without log; the first ``frames`` frames kept (zero rows appended if rounding gives fewer);
    each band L1-normalised over frames (every column sums to 1).  Returns ``[frames, bands]``.
    """
    duration = len(signal) / rate
    winlen = duration / (frames * 0.5 + 0.5)
    feat, _ = fbank(signal, rate, winlen=winlen, winstep=winlen / 2, nfilt=bands, nfft=4096, window="hamming")
    feat = feat[:frames]
    if len(feat) < frames:
        feat = np.concatenate([feat, np.zeros((frames - len(feat), bands))])
    return feat / feat.sum(0, keepdims=True)
