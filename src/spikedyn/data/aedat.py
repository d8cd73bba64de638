"""Readers for the two AER file formats of the DVS data sets.

* **AEDAT 3.1** (DVS128 Gesture): ASCII header lines starting with ``#`` up to
  ``#!END-HEADER``, then packets.  A packet header is 28 bytes little-endian: ``int16 type,
  int16 source, int32 eventSize, int32 tsOffset, int32 tsOverflow, int32 capacity,
  int32 number, int32 valid``, followed by ``capacity * eventSize`` bytes.  Polarity events
  (type 1, 8 bytes): ``uint32 data`` (bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x)
  and ``int32 timestamp``; the full time is ``tsOverflow << 31 | timestamp`` (µs).  Other
  packet types are skipped; invalid events are dropped as the format prescribes.
* **AEDAT 2.0** (jAER, CIFAR10-DVS): ``#`` header lines, then big-endian ``uint32 address,
  uint32 timestamp`` pairs; DVS128 addresses: ``x = (a >> 1) & 0x7F``, ``y = (a >> 8) & 0x7F``,
  ``p = a & 1``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .base import corrupt_file
from .events import make_events

_PACKET = struct.Struct("<hhiiiiii")


def _split_header(raw: bytes, path: Path, dataset: str, obtain: str, end_marker: bytes | None) -> int:
    """Offset of the first byte after the ``#`` header lines."""
    if end_marker is not None:
        pos = raw.find(end_marker)
        if pos < 0:
            raise corrupt_file(path, dataset, f"no {end_marker.decode().strip()} line: not an AEDAT 3.1 file", obtain)
        return raw.index(b"\n", pos) + 1
    offset = 0
    while offset < len(raw) and raw[offset:offset + 1] == b"#":
        nl = raw.find(b"\n", offset)
        if nl < 0:
            raise corrupt_file(path, dataset, "header line without end", obtain)
        offset = nl + 1
    return offset


def read_aedat31(path: Path, dataset: str = "dvsgesture", obtain: str = "the data set's distribution") -> np.ndarray:
    """Polarity events of an AEDAT 3.1 file, as an event array (t, x, y, p)."""
    path = Path(path)
    raw = path.read_bytes()
    offset = _split_header(raw, path, dataset, obtain, b"#!END-HEADER")
    chunks = []
    while offset < len(raw):
        if offset + _PACKET.size > len(raw):
            raise corrupt_file(path, dataset, f"packet header cut short at byte {offset}", obtain)
        etype, _, size, _, overflow, capacity, number, _ = _PACKET.unpack_from(raw, offset)
        offset += _PACKET.size
        body = capacity * size
        if size <= 0 or number > capacity or offset + body > len(raw):
            raise corrupt_file(path, dataset, f"packet at byte {offset - _PACKET.size} runs past the end of the file", obtain)
        if etype == 1:
            if size != 8:
                raise corrupt_file(path, dataset, f"polarity events of {size} bytes (expected 8)", obtain)
            ev = np.frombuffer(raw, dtype=np.dtype([("data", "<u4"), ("t", "<i4")]), count=number, offset=offset)
            ev = ev[(ev["data"] & 1) == 1]
            data = ev["data"].astype(np.int64)
            t = ev["t"].astype(np.int64) | (int(overflow) << 31)
            chunks.append(make_events(t, (data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF, (data >> 1) & 1))
        offset += body
    if not chunks:
        return make_events([], [], [], [])
    return np.concatenate(chunks)


def read_aedat2(path: Path, dataset: str = "cifar10dvs", obtain: str = "the data set's distribution") -> np.ndarray:
    """Events of a jAER AEDAT 2.0 DVS128 file, as an event array (t, x, y, p)."""
    path = Path(path)
    raw = path.read_bytes()
    offset = _split_header(raw, path, dataset, obtain, None)
    body = len(raw) - offset
    if body % 8:
        raise corrupt_file(path, dataset, f"{body} bytes of events is not a multiple of 8 (truncated?)", obtain)
    ev = np.frombuffer(raw, dtype=np.dtype([("a", ">u4"), ("t", ">u4")]), offset=offset)
    a = ev["a"].astype(np.int64)
    return make_events(ev["t"].astype(np.int64), (a >> 1) & 0x7F, (a >> 8) & 0x7F, a & 1)
