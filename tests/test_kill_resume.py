"""Nothing is lost when a training process dies (issue #11, point 4).

Guards: a run killed with ``SIGKILL`` in the middle of an epoch, or in the middle of writing a
checkpoint, leaves ``checkpoint.pt`` either absent or the previous whole checkpoint, and resumes
to weights bitwise equal to an uninterrupted run's; a checkpoint carries the SHA-256 of its bytes,
which :func:`read_checkpoint` verifies (a flipped bit, a cut-off file are refused with the fix),
while checkpoints without one still load; ``atomic_save`` fsyncs the file before the rename and
the folder after it, and clears the temporary files of killed processes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from tiny_runs import (
    BATCHES_PER_EPOCH,
    EPOCHS,
    assert_same_run,
    finish,
    read_metrics,
    start_run,
    train_here,
    wait_for,
)

from spikedyn.runfiles import CheckpointError, atomic_save, read_checkpoint
from spikedyn.train import load_checkpoint

needs_sigkill = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals (SIGKILL)")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted tiny run."""
    out = tmp_path_factory.mktemp("reference") / "run"
    train_here(out)
    return out


def leftovers(run: Path) -> list[Path]:
    """Hidden files in the run directory: the temporary files of unfinished saves."""
    return sorted(p for p in run.iterdir() if p.name.startswith("."))


@needs_sigkill
def test_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tmp_path: Path, reference: Path) -> None:
    """SIGKILL from outside after two optimizer steps of epoch 2: the checkpoint holds epoch 1,
    and the resumed run redoes epoch 2 from its seeded generator, ending bitwise where the
    uninterrupted run ends."""
    run, ready = tmp_path / "run", tmp_path / "ready"
    proc = start_run(run, kill={"at": "batch", "n": BATCHES_PER_EPOCH + 3, "ready": str(ready)})
    wait_for(ready, proc)
    proc.send_signal(signal.SIGKILL)
    rc, err = finish(proc)
    assert rc == -signal.SIGKILL, err
    assert read_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    assert [r["epoch"] for r in read_metrics(run)] == [1]
    assert leftovers(run) == []  # killed between saves: no file half written

    train_here(run, resume=True)
    assert_same_run(run, reference)


@needs_sigkill
def test_killed_inside_an_epoch_resumes_from_the_mid_epoch_checkpoint(tmp_path: Path, reference: Path) -> None:
    """With a checkpoint after every batch (``checkpoint_minutes`` tiny), SIGKILL before the 4th batch of
    epoch 2: the checkpoint holds epoch 1 plus 3 batches of epoch 2, and the resumed run continues at
    batch 4 with the generators, sums and metric where they were, ending bitwise where the
    uninterrupted run ends (the same metrics lines, epoch 2's train loss and accuracy included)."""
    run, ready = tmp_path / "run", tmp_path / "ready"
    every_batch = {"checkpoint_minutes": 1e-9}
    proc = start_run(run, kill={"at": "batch", "n": BATCHES_PER_EPOCH + 4, "ready": str(ready)}, settings=every_batch)
    wait_for(ready, proc)
    proc.send_signal(signal.SIGKILL)
    rc, err = finish(proc)
    assert rc == -signal.SIGKILL, err
    saved = read_checkpoint(run / "checkpoint.pt")
    assert saved["epoch"] == 1 and saved["partial_epoch"]["epoch"] == 1 and saved["partial_epoch"]["batch"] == 3
    assert [r["epoch"] for r in read_metrics(run)] == [1]

    with pytest.warns(UserWarning, match="inside epoch 2, after 3 of its batches"):
        load_checkpoint(run)  # eval / analyses say which weights they got

    trainer = train_here(run, resume=True, **every_batch)
    assert trainer.epoch == EPOCHS
    assert "partial_epoch" not in read_checkpoint(run / "checkpoint.pt")  # the epoch's end replaces it
    assert_same_run(run, reference)


def test_sigterm_stops_at_the_batch_boundary_with_a_checkpoint_of_that_moment(tmp_path: Path, reference: Path) -> None:
    """SIGTERM arriving during the 2nd batch of epoch 2 (a batch system's pre-emption): the batch is finished,
    a checkpoint of that moment written, and the process stops; the resumed run ends bitwise where the
    uninterrupted one does, though no periodic mid-epoch checkpoint was due."""
    run = tmp_path / "run"
    rc, err = finish(start_run(run, kill={"at": "sigterm", "n": BATCHES_PER_EPOCH + 2}))
    assert rc != 0 and "TrainingStopped" in err and "stopped inside epoch 2 after 2 batch(es)" in err
    saved = read_checkpoint(run / "checkpoint.pt")
    assert saved["epoch"] == 1 and saved["partial_epoch"]["batch"] == 2
    train_here(run, resume=True)
    assert_same_run(run, reference)


#: where a save is killed: (what, which save of that file, how); checkpoint.pt is written once per
#: epoch, theta_history.pt before training (epoch 0) and after every epoch.
SAVE_KILLS = {
    "first checkpoint, half written": {"at": "write", "file": "checkpoint.pt", "n": 1},
    "second checkpoint, half written": {"at": "write", "file": "checkpoint.pt", "n": 2},
    "second checkpoint, written, not renamed": {"at": "rename", "file": "checkpoint.pt", "n": 2},
    "theta history after epoch 2, half written": {"at": "write", "file": "theta_history.pt", "n": 3},
}


@needs_sigkill
@pytest.mark.parametrize("kill", SAVE_KILLS.values(), ids=SAVE_KILLS.keys())
def test_killed_while_saving_leaves_a_whole_checkpoint_or_none(tmp_path: Path, reference: Path, kill: dict) -> None:
    """SIGKILL inside ``atomic_save``: ``checkpoint.pt`` is absent (nothing saved yet) or the previous
    whole checkpoint, never a partial file; the half-written temporary file is refused as damaged
    and not taken for a checkpoint; the resumed run ends where the uninterrupted one does and the
    next save clears the stale temporary file."""
    run = tmp_path / "run"
    rc, err = finish(start_run(run, kill=kill))
    assert rc == -signal.SIGKILL, err
    saved_epochs = 0 if (kill["file"], kill["n"]) == ("checkpoint.pt", 1) else 1
    if saved_epochs == 0:
        assert not (run / "checkpoint.pt").exists()
        with pytest.raises(FileNotFoundError, match="no checkpoint"):
            load_checkpoint(run)
    else:
        assert load_checkpoint(run)[2]["epoch"] == saved_epochs  # verified by its checksum
    metrics = read_metrics(run) if (run / "metrics.jsonl").exists() else []
    assert [r["epoch"] for r in metrics] == list(range(1, saved_epochs + 1))
    stray = leftovers(run)
    assert [p.name.split(".tmp-")[0] for p in stray] == ["." + kill["file"]], stray
    if kill["at"] == "write":
        with pytest.raises(CheckpointError, match="is damaged"):
            read_checkpoint(stray[0])

    train_here(run, resume=True)
    assert_same_run(run, reference)
    assert leftovers(run) == []


def saved(tmp_path: Path) -> tuple[Path, dict]:
    """A checkpoint-like object written by ``atomic_save`` into ``tmp_path / "run"``."""
    run = tmp_path / "run"
    run.mkdir()
    obj = {"config": {}, "model": {"w": torch.linspace(-1, 1, 257)}, "epoch": 1}
    atomic_save(obj, run / "checkpoint.pt")
    return run / "checkpoint.pt", obj


def test_checkpoint_carries_its_sha256_and_stays_a_plain_torch_file(tmp_path: Path) -> None:
    """The digest is the zip archive comment: the SHA-256 of the file as ``torch.save`` wrote it
    (comment length 0); ``torch.load`` and ``zipfile`` read the file as usual."""
    path, obj = saved(tmp_path)
    data = path.read_bytes()
    comment = zipfile.ZipFile(path).comment
    assert comment.startswith(b"spikedyn-sha256:")
    archive = data[: -len(comment) - 2] + b"\0\0"
    assert hashlib.sha256(archive).hexdigest() == comment.split(b":")[1].decode()
    assert torch.equal(torch.load(path, weights_only=True)["model"]["w"], obj["model"]["w"])
    assert torch.equal(read_checkpoint(path)["model"]["w"], obj["model"]["w"])


def test_a_flipped_bit_is_refused_where_torch_load_would_not_notice(tmp_path: Path) -> None:
    """One bit flipped in the tensor data: ``torch.load`` returns wrong weights silently, the
    checksum makes ``read_checkpoint`` refuse the file, naming it, the run and what to do."""
    path, obj = saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[data.index(obj["model"]["w"].numpy().tobytes()) + 100] ^= 0x10
    path.write_bytes(bytes(data))
    assert not torch.equal(torch.load(path, weights_only=True)["model"]["w"], obj["model"]["w"])
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    for words in (str(path), "is damaged", "SHA-256", f"--out {path.parent}", "without --resume", "delete"):
        assert words in message, (words, message)


@pytest.mark.parametrize("cut", [1, 80])
def test_a_cut_off_checksum_is_refused(tmp_path: Path, cut: int) -> None:
    """A file cut inside its checksum record (the archive itself still whole) is refused too."""
    path, _ = saved(tmp_path)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(CheckpointError, match="checksum record .* cut short"):
        read_checkpoint(path)


def test_a_checkpoint_without_checksum_still_loads(tmp_path: Path, reference: Path) -> None:
    """Checkpoints written before the checksum existed (plain ``torch.save``) load as before."""
    old = tmp_path / "old"
    old.mkdir()
    ckpt = read_checkpoint(reference / "checkpoint.pt")
    torch.save(ckpt, old / "checkpoint.pt")
    assert zipfile.ZipFile(old / "checkpoint.pt").comment == b""
    model, _, loaded = load_checkpoint(old)
    assert loaded["epoch"] == ckpt["epoch"]
    for name, tensor in ckpt["model"].items():
        assert torch.equal(model.state_dict()[name], tensor), name


@pytest.mark.skipif(os.name != "posix", reason="folders are fsynced on POSIX only")
def test_atomic_save_fsyncs_the_file_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Order that survives a power loss: the new bytes reach the disk before the name points at
    them (no renamed-but-empty file), and the rename reaches it before ``atomic_save`` returns."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_save({"x": torch.ones(3)}, tmp_path / "checkpoint.pt")
    assert events == ["fsync file", "rename", "fsync folder"]


@pytest.mark.skipif(os.name != "posix", reason="processes are probed on POSIX only")
def test_atomic_save_removes_temporary_files_of_ended_processes_only(tmp_path: Path) -> None:
    """A temporary file whose writer has ended goes at the next save; one of a running process stays."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f".checkpoint.pt.tmp-{int(ended.stdout)}"
    alive = tmp_path / f".checkpoint.pt.tmp-{os.getppid()}"
    other = tmp_path / f".theta_history.pt.tmp-{int(ended.stdout)}"
    for path in (dead, alive, other):
        path.write_bytes(b"half a checkpoint")
    atomic_save({"x": torch.ones(3)}, tmp_path / "checkpoint.pt")
    assert not dead.exists() and alive.exists() and other.exists()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["x"].sum() == 3
