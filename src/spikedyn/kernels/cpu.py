"""The compiled CPU time loops (``cpp`` back end): built once on first use, then cached.

A fused whole-window path in PyTorch still pays one operator dispatch (a few microseconds) and one
pass through memory for every elementwise operation of every time step.  For a recurrent layer,
whose per-step matrix product cannot be folded over time, the dispatches are most of the cost; for
a conv layer's large maps, the passes.  The C++ sources next to this module (``cpu_lif.cpp``:
decay-LIF, PLIF and fixed-tau LIF; ``cpu_second_order.cpp``: MDN's 2nd-order neuron;
``cpu_nrr.cpp``: the NRR cell; ``cpu_norm.cpp``: the per-step batch norm's backward; ``cpu_pool.cpp``: max
pooling over non-overlapping windows, :mod:`spikedyn.layers.pool`) run the same
recursions with one pass over a step's elements (split
between threads by ATen's ``parallel_for``), the surrogate derivative inline, and call ATen for the
NRR cell's per-step matrix product.  The forward passes round in the order of the PyTorch loops
(built with ``-ffp-contract=off``), so they give the same spikes; the backward passes agree to
float rounding.  One exception: the 2nd-order loop computes MDN's sigmoid input function itself
(in the same pass, with a vectorised exp), within 1.5 float eps of the exact sigmoid as
``torch.sigmoid`` is, and rounded as ``torch.sigmoid`` rounds for 99 % of inputs; the spikes do
not see the difference on the tests' inputs.

They are compiled with :func:`torch.utils.cpp_extension.load` the first time a fast path needs
them (about 20 s; a C++ compiler and ``ninja`` must be on the machine) into a cache directory
keyed by the sources, the compile flags and the PyTorch version: ``$SPIKEDYN_KERNEL_CACHE``, else
``~/.cache/spikedyn/kernels``.  When no compiler is found or the build fails, the fast paths fall
back to the PyTorch loops with one warning saying why (``SPIKEDYN_KERNELS=torch`` skips the build).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import torch

#: the operators' namespace (``torch.ops.spikedyn_cpu``) and the extension's library name
NAMESPACE = "spikedyn_cpu"
SOURCES = ("cpu_nrr.cpp", "cpu_lif.cpp", "cpu_second_order.cpp", "cpu_norm.cpp", "cpu_pool.cpp")
HEADERS = ("cpu_common.h",)  # included by the sources: part of the cache key
#: -march=native: the build is for this machine's vector units (the cache key includes the CPU's features);
#: -ffp-contract=off: no fused multiply-adds, so every operation rounds as the PyTorch loops' do;
#: -fno-trapping-math: no floating-point traps are watched for, so GCC may compute both sides of a select such as
#: the sigmoid's NaN-keeping clamp and blend them; without it the loops with the sigmoid inside stay scalar on
#: AVX2 CPUs (AVX-512's masks vectorise them anyway), 10x slower (54.7 against 5.7 ms for 6.4 million neuron-steps
#: of the 2nd-order loop on an AMD EPYC); no computed value changes;
#: -fopenmp: ATen's parallel_for is an OpenMP pragma in its header, a serial loop without it
CFLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-trapping-math", "-fopenmp")
LDFLAGS = ("-fopenmp",)

_lock = threading.Lock()
_state: dict[str, object] = {}  # "ok": bool once decided; "why": the reason it is unavailable


def cache_root() -> Path:
    """Where built kernels are kept: ``$SPIKEDYN_KERNEL_CACHE``, else ``~/.cache/spikedyn/kernels`` (the
    system's temporary directory when the home directory cannot be written)."""
    root = os.environ.get("SPIKEDYN_KERNEL_CACHE")
    if root:
        return Path(root).expanduser()
    home = Path.home() / ".cache" / "spikedyn" / "kernels"
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path(tempfile.gettempdir()) / f"spikedyn-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}"
    return home


def _source_paths() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [here / name for name in SOURCES]


def cpu_signature() -> str:
    """The CPU's model and feature flags (``/proc/cpuinfo``; elsewhere the platform's processor name):
    part of the cache key, so that a home directory shared by different machines keeps one build each."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine() + " " + platform.processor()
    wanted = [line for line in lines if line.split(":")[0].strip() in ("model name", "flags", "Features")]
    return "\n".join(dict.fromkeys(wanted))  # the first core's lines (all cores repeat them)


def build_directory() -> Path:
    """The cache directory of this build: a hash of the sources, flags, CPU, PyTorch version and Python."""
    digest = hashlib.sha256()
    digest.update(cpu_signature().encode())
    here = Path(__file__).resolve().parent
    for path in [*_source_paths(), *(here / name for name in HEADERS)]:
        digest.update(path.read_bytes())
    digest.update(" ".join(CFLAGS).encode())
    digest.update(torch.__version__.encode())
    digest.update(sys.version.encode())
    return cache_root() / digest.hexdigest()[:16]


def compiler_missing() -> str | None:
    """Why the kernels cannot be built here (no C++ compiler / no ninja), or None."""
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler ({compiler!r} is not on PATH; set CXX or install g++)"
    if shutil.which("ninja") is None:
        try:  # the ninja package from PyPI: its binary is not on PATH unless the environment is activated
            import ninja

            os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
        except ImportError:
            pass
    if shutil.which("ninja") is None:
        return "ninja is not on PATH (pip install ninja)"
    return None


#: a build lock older than this is left over from a process killed while compiling (a build takes about 20 s
#: on a free machine, minutes on a loaded one); PyTorch's loader would wait for it forever
STALE_LOCK_SECONDS = 600.0


def clear_stale_lock(directory: Path, max_age: float = STALE_LOCK_SECONDS) -> bool:
    """Remove the build lock in ``directory`` when it is older than ``max_age`` seconds, with a warning
    (True); a younger lock (a build in progress elsewhere) is left for the loader to wait on (False)."""
    lock = directory / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return False
    if age <= max_age:
        return False
    warnings.warn(
        f"spikedyn: removing the CPU kernels' build lock {lock}, left {age / 60:.0f} min ago by a build that "
        "did not finish (a process stopped while compiling); building again",
        RuntimeWarning,
        stacklevel=2,
    )
    lock.unlink(missing_ok=True)
    return True


def _build() -> None:
    from torch.utils.cpp_extension import load

    directory = build_directory()
    built = directory / f"{NAMESPACE}.so"
    if built.exists():  # the directory is keyed by the sources and flags: a finished build is this build
        try:
            torch.ops.load_library(str(built))
            return
        except OSError:  # cut short while linking: build it again below
            pass
    else:
        print(
            f"spikedyn: compiling the CPU kernels once (about 20 s), cached in {directory}",
            file=sys.stderr,
            flush=True,
        )
    directory.mkdir(parents=True, exist_ok=True)
    clear_stale_lock(directory)
    load(
        name=NAMESPACE,
        sources=[str(path) for path in _source_paths()],
        extra_cflags=list(CFLAGS),
        extra_ldflags=list(LDFLAGS),
        build_directory=str(directory),
        is_python_module=False,
        verbose=False,
    )


def _first_error(error: Exception) -> str:
    """The compiler's first ``error:`` line of a failed build (else its last line): what to act on."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    return (errors or lines or [repr(error)])[0 if errors else -1]


def available() -> bool:
    """Build (first call) or load the compiled CPU kernels; False, with one warning, when that fails."""
    if "ok" in _state:
        return bool(_state["ok"])
    with _lock:
        if "ok" in _state:
            return bool(_state["ok"])
        why = compiler_missing()
        if why is None:
            try:
                _build()
            except Exception as error:  # a failed build must not stop training: the PyTorch loops do the same
                why = f"the build failed: {_first_error(error)}"
        _state["ok"], _state["why"] = why is None, why
        if why is not None:
            warnings.warn(
                f"spikedyn's compiled CPU kernels are not available ({why}); the fused paths run the slower "
                "PyTorch loops instead. Set SPIKEDYN_KERNELS=torch to skip the attempt.",
                RuntimeWarning,
                stacklevel=3,
            )
        return why is None


def status() -> str:
    """What the CPU fast paths run, without building anything: the compiled loops (built, or to be built on
    first use), or the PyTorch loops and why."""
    if "ok" in _state:
        if _state["ok"]:
            return f"compiled CPU loops (built in {build_directory()})"
        return f"torch loops (compiled CPU loops unavailable: {_state['why']})"
    why = compiler_missing()
    if why is not None:
        return f"torch loops (compiled CPU loops unavailable: {why})"
    if (build_directory() / f"{NAMESPACE}.so").exists():
        return f"compiled CPU loops (built in {build_directory()})"
    return "compiled CPU loops (built on first use, about 20 s)"


def unavailable_reason() -> str | None:
    """Why :func:`available` returned False (None when it returned True or was not called yet)."""
    return _state.get("why")  # type: ignore[return-value]


def mark_overwritten(tensor: torch.Tensor) -> None:
    """Bump ``tensor``'s version after a compiled loop wrote into it through its data pointer (autograd's
    check then refuses a second backward through a node whose saved tensor it was)."""
    try:
        from torch.autograd.graph import increment_version
    except ImportError:  # an older PyTorch: an in-place no-op bumps it too
        tensor.mul_(1)
    else:
        increment_version(tensor)


def ops():
    """``torch.ops.spikedyn_cpu`` (call :func:`available` first)."""
    return getattr(torch.ops, NAMESPACE)
