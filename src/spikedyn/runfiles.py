"""Run files written so that an interruption never leaves a broken one: atomic writes, checksummed checkpoints.

:func:`atomic_save` writes a file that is always either the previous one or the whole new one
(temporary file, SHA-256 recorded in the zip archive's comment, fsync, rename, fsync of the
folder); :func:`read_checkpoint` verifies the checksum before unpickling and turns every way a
damaged or foreign file fails into a :class:`CheckpointError` that says how far the run got and
what to do.  :func:`write_text_atomic` does the same for a text file (reports, ``metrics.jsonl``, presets);
:func:`read_metrics` reads a run's ``metrics.jsonl`` back.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

class CheckpointError(ValueError):
    """A run file (``checkpoint.pt``, ``theta_history.pt``) that cannot be read; the message says what to do."""



def _recorded_epochs(run_dir: Path) -> str:
    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists():
        return f"{run_dir} has no metrics.jsonl, so no epoch of this run was recorded"
    try:
        count = sum(1 for line in metrics.read_text().splitlines() if line.strip())
    except OSError:
        return f"its metrics.jsonl ({metrics}) shows how far the run got"
    return f"its metrics.jsonl ({metrics}) shows how far the run got: {count} finished epoch(s)"


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """``torch.load`` a run's ``checkpoint.pt``; a damaged or foreign file raises :class:`CheckpointError`.

    A checkpoint written by :func:`atomic_save` carries the SHA-256 of its bytes; it is checked
    before anything is unpickled, so a file that changed after it was written (a bit flipped on
    disk, a copy cut short) is refused even where ``torch.load`` would read it without complaint.
    Checkpoints written before the checksum existed have none and load as before.
    """
    path = Path(path)
    reason = None
    try:
        reason = _checksum_problem(path)
        ckpt = None if reason else torch.load(path, map_location=map_location, weights_only=False)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.load fails in many ways on a damaged file
        text = str(exc).strip().split("\n")[0].split(". ")[0].rstrip(".")  # the first sentence: torch's are long
        reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    else:
        needed = ("config", "model", "epoch")
        if reason is None and (not isinstance(ckpt, dict) or any(key not in ckpt for key in needed)):
            reason = f"it is not a spikedyn checkpoint (the keys {', '.join(needed)} are missing)"
    if reason is not None:
        raise CheckpointError(
            f"the checkpoint {path} is damaged and cannot be read ({reason}); {_recorded_epochs(path.parent)}. "
            f"To train the run again from the start, delete {path} and train with --out {path.parent} without "
            f"--resume (that starts metrics.jsonl afresh: copy it first to keep it); or put back a saved copy of "
            f"the checkpoint if you have one."
        )
    return ckpt


#: The zip archive comment that carries a checkpoint's checksum: this tag, then 64 hex digits.
_CHECKSUM_TAG = b"spikedyn-sha256:"
_CHECKSUM_SIZE = len(_CHECKSUM_TAG) + 64
#: A zip archive ends with its 22-byte end-of-central-directory record (this signature first,
#: the comment's length in its last two bytes), then the comment.
_ZIP_END = b"PK\x05\x06"
_ZIP_END_SIZE = 22


def _sha256_of_start(fh, end: int):
    """The SHA-256 (a ``hashlib`` object, to extend) of the first ``end`` bytes of the binary file ``fh``."""
    import hashlib

    fh.seek(0)
    digest = hashlib.sha256()
    while end > 0:
        chunk = fh.read(min(end, 1 << 20))
        if not chunk:
            break
        digest.update(chunk)
        end -= len(chunk)
    return digest


def _add_checksum(fh) -> None:
    """Record the SHA-256 of the archive ``torch.save`` wrote to ``fh`` (opened ``r+b``) as its zip comment.

    The digest covers the archive exactly as ``torch.save`` wrote it (comment length 0).  Zip
    readers, ``torch.load`` and ``zipfile`` included, skip the comment, so the file stays a plain
    PyTorch checkpoint.  A file that is not a comment-less zip archive is left as it is.
    """
    size = fh.seek(0, os.SEEK_END)
    if size < _ZIP_END_SIZE:
        return
    fh.seek(size - _ZIP_END_SIZE)
    end = fh.read(_ZIP_END_SIZE)
    if not end.startswith(_ZIP_END) or end[-2:] != b"\0\0":
        return
    comment = _CHECKSUM_TAG + _sha256_of_start(fh, size).hexdigest().encode("ascii")
    fh.seek(size - 2)
    fh.write(len(comment).to_bytes(2, "little") + comment)


def _checksum_problem(path: Path) -> str | None:
    """Why the checksum recorded by :func:`_add_checksum` in ``path`` does not hold, or None.

    None also for a file without a checksum (written before it existed, or not by
    :func:`atomic_save`): ``torch.load`` then judges it, as before.
    """
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - _ZIP_END_SIZE - _CHECKSUM_SIZE)
        fh.seek(start)
        tail = fh.read()
        at = tail.rfind(_ZIP_END)
        if at < 0 or len(tail) - at < _ZIP_END_SIZE:
            return None  # no end record in reach: torch.load will tell whether the file is whole
        declared = int.from_bytes(tail[at + 20 : at + 22], "little")
        comment = tail[at + _ZIP_END_SIZE :]
        ours = comment.startswith(_CHECKSUM_TAG) or (
            declared == _CHECKSUM_SIZE and comment == _CHECKSUM_TAG[: len(comment)]
        )
        if not ours:
            return None
        recorded = comment[len(_CHECKSUM_TAG) :]
        whole = declared == len(comment) == _CHECKSUM_SIZE
        if not whole or not all(c in b"0123456789abcdef" for c in recorded):
            return "its SHA-256 checksum record at the end of the file is cut short or damaged"
        digest = _sha256_of_start(fh, start + at + 20)
        digest.update(b"\0\0")  # the comment length torch.save wrote
    if digest.hexdigest().encode("ascii") != recorded:
        return "its bytes do not match the SHA-256 checksum recorded when it was written, so the file changed since"
    return None


def atomic_save(obj: object, path: Path) -> None:
    """Write ``obj`` to ``path`` so that ``path`` is always the previous file or the whole new one.

    ``torch.save`` to a temporary file ``.NAME.tmp-PID`` in the same folder, record the SHA-256
    of its bytes in it (:func:`_add_checksum`; :func:`read_checkpoint` verifies it), fsync it,
    rename it over ``path`` and fsync the folder: the data is on disk before the new name
    points at it (a power loss cannot leave a renamed but empty or partial file), and the rename
    is on disk when this returns.  A process killed while saving leaves only its temporary file,
    which nothing reads as a checkpoint; the next save removes those of processes that have ended.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        with open(tmp, "r+b") as fh:
            _add_checksum(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    _fsync_folder(path.parent)
    _remove_stale_temporaries(path)


def _fsync_folder(folder: Path) -> None:
    """fsync ``folder`` so that a rename in it survives a power loss (a no-op where a folder cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows: folders cannot be opened (NTFS renames are journaled)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder
    finally:
        os.close(fd)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the ``.NAME.tmp-PID`` files next to ``path`` left by processes killed while saving it.

    Only files whose process has ended go (POSIX only: there ``os.kill(pid, 0)`` merely probes).
    """
    if os.name != "posix":
        return
    prefix = f".{path.name}.tmp-"
    try:
        names = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for tmp in names:
        pid = tmp.name[len(prefix) :]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # that process has ended: its file will never be renamed
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
        except OSError:
            pass  # running under another user, or unknown: leave it


def read_metrics(run: str | os.PathLike, missing_ok: bool = False) -> list[dict]:
    """The per-epoch records of a run: ``RUN/metrics.jsonl``, or a metrics file itself (a copy kept as a log).

    The trainer appends one line per epoch after its checkpoint, so a run killed during the append
    can leave the last line cut; that line is skipped (the resumed run writes it again).  A broken
    line before the last one means the file was damaged or edited and raises ``ValueError``.  A
    missing file raises ``FileNotFoundError`` unless ``missing_ok`` (then: no records).
    """
    run = Path(run)
    path = run if run.is_file() else run / "metrics.jsonl"
    if not path.exists():
        if missing_ok:
            return []
        raise FileNotFoundError(
            f"no metrics.jsonl in {run}: pass a run directory written by `spikedyn train` or its metrics.jsonl"
        )
    lines = [(number, line) for number, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    records = []
    for i, (number, line) in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if i == len(lines) - 1:
                break  # cut by a run killed while appending it
            raise ValueError(f"{path}, line {number}, is not a JSON record ({err.msg}): the file is damaged") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}, line {number}, is not a JSON object: not a metrics file of `spikedyn train`")
        records.append(record)
    return records


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    The parent folder is created if needed.  On any error the temporary file is removed and
    ``path`` keeps its previous content (or stays absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
