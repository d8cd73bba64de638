"""Writers of tiny data files in the real on-disk formats, for the reader tests."""

from __future__ import annotations

import gzip
import pickle
import struct
import wave
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_cifar_batch(path: Path, data: np.ndarray, labels: list[int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"test"}, fh)
    return path


def write_nmnist_bin(path: Path, events: list[tuple[int, int, int, int]]) -> Path:
    """events: (x, y, polarity, t_us)."""
    out = bytearray()
    for x, y, p, t in events:
        out += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(samples.astype("<i2").tobytes())
    return path


def write_sphere(path: Path, samples: np.ndarray, rate: int) -> Path:
    fields = [
        "database_id -s5 TIMIT", f"sample_count -i {len(samples)}", f"sample_rate -i {rate}", "channel_count -i 1",
        "sample_n_bytes -i 2", "sample_byte_format -s2 01", "sample_coding -s3 pcm", "end_head",
    ]
    header = ("NIST_1A\n   1024\n" + "\n".join(fields) + "\n").encode()
    header += b" " * (1024 - len(header))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + samples.astype("<i2").tobytes())
    return path


def write_aedat31(path: Path, events: list[tuple[int, int, int, int]], overflow: int = 0) -> Path:
    """Polarity events (x, y, p, t) in one AEDAT 3.1 packet, plus a non-polarity packet to skip."""
    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
    body = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | 1, t) for x, y, p, t in events)
    packet = struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, len(events), len(events), len(events)) + body
    special = struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, 1, 1, 1) + struct.pack("<Ii", 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + special + packet)
    return path


def write_aedat2(path: Path, events: list[tuple[int, int, int, int]]) -> Path:
    header = b"#!AER-DAT2.0\r\n# This is a raw AE data file\r\n"
    body = b"".join(struct.pack(">II", (y << 8) | (x << 1) | p, t) for x, y, p, t in events)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + body)
    return path
