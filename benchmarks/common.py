"""What every benchmark shares: a description of the machine, timing (plain, interleaved, by rounds), and writing
its report (atomically)."""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from verify.atomic import write_atomic

ROOT = Path(__file__).resolve().parents[1]  # the repository (the working folder of the benchmarks' child processes)
REPORTS = ROOT / "reports"
# glibc keeps freed memory: whether a large result array is fresh (page-faulted) or reused then no longer depends on
# the process's history (benchmarks/cost_breakdown.py saw the same product move between 2.9 and 4.7 ms without it)
KEEP_FREED_MEMORY = {"MALLOC_MMAP_THRESHOLD_": "1000000000", "MALLOC_TRIM_THRESHOLD_": "4000000000"}


def keep_freed_memory(module: str) -> None:
    """Re-execute ``python -m module`` with the same arguments once, with :data:`KEEP_FREED_MEMORY` set (a no-op when
    it already is)."""
    if any(os.environ.get(k) != v for k, v in KEEP_FREED_MEMORY.items()):
        os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], {**os.environ, **KEEP_FREED_MEMORY})


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _torch():
    import torch

    return torch


# what machine() can say about the machine, by key (torch is imported only when asked about)
MACHINE_FIELDS = {
    "cpu": cpu_name,
    "cores": os.cpu_count,
    "cpu_count": os.cpu_count,
    "affinity": lambda: len(os.sched_getaffinity(0)),
    "platform": platform.platform,
    "python": platform.python_version,
    "numpy": lambda: np.__version__,
    "torch": lambda: _torch().__version__,
    "torch_threads": lambda: _torch().get_num_threads(),
    "gpu": lambda: _torch().cuda.get_device_name(0) if _torch().cuda.is_available() else None,
}


def machine(*fields: str) -> dict:
    """The machine described by ``fields`` (keys of :data:`MACHINE_FIELDS`, in that order; each benchmark's report
    keeps its own): by default the CPU, the cores, NumPy, torch and Python."""
    return {f: MACHINE_FIELDS[f]() for f in fields or ("cpu", "cores", "numpy", "torch", "python")}


def call_times(fn, calls: int, sync=None) -> list:
    """Seconds (``time.perf_counter``) of each of ``calls`` calls of ``fn()``.  ``sync``: called before the clock
    starts and before it stops (a device's queue, e.g. ``torch.cuda.synchronize``), so that a call's time includes
    the work it queued."""
    out = []
    for _ in range(calls):
        if sync is not None:
            sync()
        t = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        out.append(time.perf_counter() - t)
    return out


def median_time(fn, calls: int, sync=None) -> float:
    """Median of :func:`call_times`."""
    return statistics.median(call_times(fn, calls, sync))


def interleaved_times(fns, repeats: int) -> list:
    """Seconds of ``repeats`` calls of each function of ``fns``, taken in turn (first, second, ..., first, ...), so
    that a slow spell of the machine touches all of them: one list per function, in the order of ``fns``."""
    out = [[] for _ in fns]
    for _ in range(repeats):
        for fn, acc in zip(fns, out):
            acc += call_times(fn, 1)
    return out


def median_over_rounds(stages: dict, rounds: int, calls: int = 3) -> dict:
    """Median over rounds of the per-round median of ``calls`` timed calls of each stage, the stages interleaved round
    after round (so that a slow spell of the machine touches all of them).  A stage is ``(setup, run)``: ``setup()``
    (untimed) returns the argument of the timed ``run``."""
    per = {k: [] for k in stages}
    for _ in range(rounds):
        for key, (setup, run) in stages.items():
            times = []
            for _ in range(calls):
                arg = setup()
                t = time.perf_counter()
                run(arg)
                times.append(time.perf_counter() - t)
            per[key].append(statistics.median(times))
    return {k: statistics.median(v) for k, v in per.items()}


def write(name: str, result: dict, markdown: str | None, out: Path = REPORTS, *, indent: int = 2,
          sort_keys: bool = False) -> None:
    """``out/name.json`` (``result`` as ``json.dumps(result, indent=indent, sort_keys=sort_keys)`` and a newline) and
    ``out/name.md`` (``markdown`` as given; none when it is None), each written atomically."""
    out = Path(out)
    write_atomic(out / f"{name}.json", (json.dumps(result, indent=indent, sort_keys=sort_keys) + "\n").encode())
    if markdown is not None:
        write_atomic(out / f"{name}.md", markdown.encode())
