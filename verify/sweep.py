"""Run a sweep of independent tasks here (in this process or in a pool of processes), or on a Dask cluster.

A sweep is a list of tasks (plain dicts) and one pure function of a task.  :func:`execute` runs them in this
process in order, in ``workers`` processes of this machine (each single-threaded: one task per core), or, given the
address of a Dask scheduler, on its workers (``dask.distributed``, the optional
extra ``pip install 'sobolev-verify[cluster]'``; the workers need this package installed too).  The results come
back in the order of the tasks either way, so a report built from them is the same whichever ran them: each task
draws its own random numbers from its own seed and runs the same NumPy code.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager

CLUSTER_HINT = "pip install 'sobolev-verify[cluster]' (Dask distributed)"


def execute(fn, tasks: list, *, scheduler: str | None = None, workers: int = 1, bar=None) -> list:
    """``[fn(task) for task in tasks]``: through the Dask scheduler at ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``)
    when given, else in ``workers`` processes here (``1``: in this process); ``bar``: a progress bar advanced once
    per finished task.  ``fn`` must be importable by name (a module-level function) for the processes and Dask."""
    tasks = list(tasks)
    if scheduler is not None:
        return _on_cluster(fn, tasks, scheduler, bar)
    if workers > 1 and len(tasks) > 1:
        return _in_processes(fn, tasks, workers, bar)
    out = []
    for task in tasks:
        out.append(fn(task))
        if bar is not None:
            bar.update(1)
    return out


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextmanager
def _single_threaded_children():
    """Processes started inside the block use one BLAS/OpenMP thread each (they are one per core already)."""
    before = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _in_processes(fn, tasks: list, workers: int, bar) -> list:
    # spawn, not fork: the parent may hold torch's thread pools, which do not survive a fork
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context)
    try:
        with _single_threaded_children():  # the processes start with the first tasks submitted
            futures = [pool.submit(fn, task) for task in tasks]
        for _ in as_completed(futures):
            if bar is not None:
                bar.update(1)
        return [f.result() for f in futures]
    except BaseException:
        # an error or an interrupt (Ctrl-C, SIGTERM): drop the tasks not started, so that the sweep stops once
        # the running ones end, instead of running the rest first (what leaving a `with` block would do)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


def default_workers() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _on_cluster(fn, tasks: list, scheduler: str, bar) -> list:
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise RuntimeError(f"--scheduler needs Dask distributed, which is not installed: {CLUSTER_HINT}") from None
    with Client(scheduler) as client:
        futures = client.map(fn, tasks, pure=False)  # one future per task, even for equal tasks
        position = {f.key: i for i, f in enumerate(futures)}
        out = [None] * len(tasks)
        for future in as_completed(futures):
            out[position[future.key]] = future.result()  # re-raises a task's exception here
            if bar is not None:
                bar.update(1)
    return out
