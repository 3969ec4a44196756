"""Run a sweep of independent tasks here, or on a Dask cluster.

A sweep is a list of tasks (plain dicts) and one pure function of a task.  :func:`execute` runs them in this
process in order, or, given the address of a Dask scheduler, on its workers (``dask.distributed``, the optional
extra ``pip install 'sobolev-verify[cluster]'``; the workers need this package installed too).  The results come
back in the order of the tasks either way, so a report built from them is the same whichever ran them: each task
draws its own random numbers from its own seed and runs the same NumPy code.
"""
from __future__ import annotations

CLUSTER_HINT = "pip install 'sobolev-verify[cluster]' (Dask distributed)"


def execute(fn, tasks: list, *, scheduler: str | None = None, bar=None) -> list:
    """``[fn(task) for task in tasks]``, locally (``scheduler=None``) or through the Dask scheduler at
    ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``); ``bar``: a progress bar advanced once per finished task."""
    tasks = list(tasks)
    if scheduler is None:
        out = []
        for task in tasks:
            out.append(fn(task))
            if bar is not None:
                bar.update(1)
        return out
    return _on_cluster(fn, tasks, scheduler, bar)


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
