"""Data parallel training with PyTorch's own engine (``torchrun`` + DistributedDataParallel).

``torchrun --nproc-per-node N -m spikedyn train ...`` starts N copies of the trainer with the
usual environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``);
:func:`init_from_env` joins the process group (``gloo`` on CPU, ``nccl`` on CUDA) and returns a
:class:`DistContext`; a plain ``spikedyn train`` gets the one-process context, which does
nothing.

How the batch is shared, and why the result equals a one-process run:

* ``batch_size`` stays the **global** batch.  Every process draws the same shuffled order and
  the same input encoding from the epoch's seeded generator (so the random spikes are exactly
  those of a one-process run), then keeps only its contiguous share of the batch:
  rows ``[r * B / N, (r + 1) * B / N)`` (:meth:`DistContext.share`).  This is a distributed
  sampler that keeps the one-process batch composition.
* Process ``r`` with ``n_r`` of the batch's ``n`` samples scales its mean loss by
  ``n_r * N / n`` (:meth:`DistContext.loss_scale`).  DDP averages the gradients over the N
  processes, so the update is ``(1/N) sum_r (n_r N / n) grad L_r = grad (1/n) sum_i l_i``: the
  gradient of the mean loss over the whole batch, also for a last batch that does not split
  evenly.  A term that *sums* over samples (reward propagation's projected teaching signal,
  ``RuleLoss.batch_summed``) is scaled by ``N`` instead (:meth:`DistContext.scaled_loss`); a
  mean over valid frames (a masked per-step loss) is weighted by each process's valid frames.
* The train metric sees every process's output rates (gathered per batch), in batch order, so
  ``metrics.jsonl`` holds the same numbers as a one-process run.  Evaluation is shared the same
  way.
* Rank 0 alone writes ``config.json``, ``metrics.jsonl``, ``theta_history.pt``, the
  checkpoint and the TensorBoard log (``--log tensorboard``); every process reads the
  checkpoint on ``--resume``.

Not identical to one process (stated, not hidden): dropout masks are drawn per process for its
own rows, and BatchNorm normalises with each process's share of the batch (as plain DDP does).
MDN's ``theta_per_batch_slot`` ties parameters to batch slots and is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run (``world_size == 1``: a plain run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0

    def bounds(self, n: int) -> list[tuple[int, int]]:
        """Every rank's ``[lo, hi)`` rows of an ``n``-sample batch (contiguous, sizes differ by at most 1)."""
        base, extra = divmod(n, self.world_size)
        out, lo = [], 0
        for r in range(self.world_size):
            hi = lo + base + (1 if r < extra else 0)
            out.append((lo, hi))
            lo = hi
        return out

    def share(self, n: int) -> slice:
        """This rank's rows of an ``n``-sample batch."""
        lo, hi = self.bounds(n)[self.rank]
        return slice(lo, hi)

    def rows(self, n: int) -> tuple[slice, int]:
        """The rows this rank computes on for an ``n``-sample batch, and how many of them count.

        A batch smaller than the number of processes leaves some ranks without a share; such a
        rank still runs one row (the batch's first) so that it joins DDP's gradient all-reduce,
        but that row counts 0 (its loss weight, sums and gathered rows are zero / empty).
        """
        share = self.share(n)
        count = share.stop - share.start
        return (share if count else slice(0, 1)), count

    def loss_scale(self, n: int) -> float:
        """``n_r * N / n``: makes DDP's gradient average equal the gradient of the whole batch's mean loss."""
        share = self.share(n)
        return (share.stop - share.start) * self.world_size / n

    def scaled_loss(
        self, total: Tensor, batch_summed: Tensor | float, n: int, weight: Tensor | None = None,
    ) -> Tensor:
        """The loss this rank backpropagates so that DDP's gradient average is the whole batch's gradient.

        ``total = mean part + batch_summed``: the mean over this rank's ``n_r`` samples is
        weighted by :meth:`loss_scale`, a sum over them by ``N`` (the average over N ranks of N
        times each rank's sum is the sum over the batch).  ``weight``: what the mean runs over
        when it is not the samples, e.g. the valid frames of a masked per-step loss; the mean
        part is then weighted by ``N w_r / sum_r w_r`` (one all-reduce of ``w``).
        """
        if weight is None:
            scale = self.loss_scale(n)
        else:
            w = weight.detach().to(torch.float64).reshape(1).clone()
            mine = float(w)
            dist.all_reduce(w)
            scale = self.world_size * mine / max(float(w), 1e-12)
        share = self.share(n)
        if share.stop == share.start:  # no share of this batch: a zero-weighted loss (see rows())
            return total * 0.0
        if isinstance(batch_summed, Tensor) or batch_summed != 0.0:
            return total * scale + batch_summed * (self.world_size - scale)
        return total * scale

    def gather_rows(self, part: Tensor, n: int) -> Tensor:
        """The ``[n, ...]`` tensor whose rows ``share(n)`` are each rank's ``part`` (batch order)."""
        if not self.enabled:
            return part
        sizes = [hi - lo for lo, hi in self.bounds(n)]
        width = max(sizes)
        padded = part.new_zeros((width, *part.shape[1:]))
        padded[: len(part)] = part
        pieces = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(pieces, padded.contiguous())
        return torch.cat([p[:s] for p, s in zip(pieces, sizes)])

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum of ``values`` over the ranks (the values themselves in a plain run)."""
        if not self.enabled:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``DistributedDataParallel(model)`` when data parallel, else ``model`` itself."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


SINGLE = DistContext()


def launched_by_torchrun() -> bool:
    """True when the environment describes more than one process (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group ``torchrun`` describes (idempotent); the plain context without one.

    ``device``: the device the run asked for.  On CUDA every process takes the GPU of its
    ``LOCAL_RANK`` (and ``nccl``); on CPU ``gloo``.
    """
    if not launched_by_torchrun():
        return SINGLE
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} asks for data parallel training, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set: start the processes with "
            f"`torchrun --nproc-per-node N -m spikedyn train ...`, or unset WORLD_SIZE for one process"
        )
    ctx = DistContext(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend)
    return ctx


def rank_device(device: torch.device, ctx: DistContext) -> torch.device:
    """The device of this process: ``cuda:LOCAL_RANK`` for a CUDA run, else ``device``."""
    if ctx.enabled and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


def broadcast_object(value, ctx: DistContext):
    """Rank 0's ``value`` on every rank (e.g. the run directory rank 0 picked)."""
    if not ctx.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
