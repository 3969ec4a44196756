"""verify.sweep: a sweep gives the same results here and on a Dask cluster (an in-process LocalCluster)."""
from __future__ import annotations

import json

import pytest

from verify.landscape import compute
from verify.sweep import execute


def _tasks():
    """Real landscape tasks, small: the three flows, two chunks of starts each."""
    lrs = {(4, f): compute.step_size(4, f, 1.0) for f in ("L", "H-mean", "H-true")}
    settings = dict(ks=[4], offsets=[0], starts=2, chunk=1, max_steps=200)
    return compute.flow_tasks(7, settings, lrs)


def _numbers(results: list) -> str:
    """The results without their timing fields (``cpu_s``: seconds differ from run to run), as canonical JSON."""
    return json.dumps([{k: v for k, v in r.items() if k != "cpu_s"} for r in results], sort_keys=True)


def test_local_execution_is_the_plain_loop_in_order():
    calls = []
    assert execute(lambda t: calls.append(t) or 2 * t, [3, 1, 2]) == [6, 2, 4]
    assert calls == [3, 1, 2]


def test_a_pool_of_processes_gives_the_serial_results_bit_for_bit():
    tasks = _tasks()
    serial = execute(compute.run_task, tasks)
    assert _numbers(execute(compute.run_task, tasks, workers=2)) == _numbers(serial)


def test_a_local_cluster_gives_the_local_results_bit_for_bit():
    distributed = pytest.importorskip("distributed")
    tasks = _tasks()
    local = execute(compute.run_task, tasks)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        remote = execute(compute.run_task, tasks, scheduler=cluster.scheduler_address)
    # JSON text compares every float by its exact repr (shortest round-trip), so equal text is equal bits
    assert _numbers(remote) == _numbers(local)
    assert len(remote) == len(tasks) and any(r["steps"] for r in remote)


def test_a_missing_dask_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.startswith("dask"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(RuntimeError, match=r"sobolev-verify\[cluster\]"):
        execute(len, [[1]], scheduler="tcp://127.0.0.1:1")


class _InterruptAtFirst:
    """A progress bar whose first update raises ``KeyboardInterrupt``, as Ctrl-C (or SIGTERM, which the reports
    turn into one) would in the middle of a sweep; it first counts the tasks finished (files in ``folder``)."""

    def __init__(self, folder):
        self.folder = folder
        self.finished_before = None

    def update(self, n):
        self.finished_before = len(list(self.folder.iterdir()))
        raise KeyboardInterrupt


def test_an_interrupt_drops_the_tasks_not_started(tmp_path):
    """20 tasks of 0.3 s on 2 processes, interrupted when the first ends: the sweep raises once the running
    tasks end, having dropped the rest (each task leaves a file when it completes).

    Which tasks can still run after the interrupt is fixed by the standard library's pool, not by timing: the
    ``w`` running ones and the ``w + 1`` waiting in its call queue (futures there cannot be cancelled), plus at
    most one more per process that takes a queued task in the microseconds between the interrupt and the
    shutdown.  So at most ``3 w + 1 = 7`` finish beyond those already finished when the interrupt came, which
    the bar counts.  Without the cancellation all 20 would run."""
    import subprocess

    workers = 2
    tasks = [["sh", "-c", f"sleep 0.3; touch {tmp_path / str(i)}"] for i in range(20)]
    bar = _InterruptAtFirst(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        execute(subprocess.run, tasks, workers=workers, bar=bar)
    done = len(list(tmp_path.iterdir()))
    assert 1 <= bar.finished_before <= done <= bar.finished_before + 3 * workers + 1, (bar.finished_before, done)
    assert done < len(tasks)


def test_processes_run_single_threaded_and_the_parent_keeps_its_settings(monkeypatch):
    """Each process of the pool gets one BLAS/OpenMP thread (one process per core already); the parent's own
    variables are as they were afterwards."""
    import subprocess

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "7")
    out = execute(subprocess.check_output, [["sh", "-c", "echo $OPENBLAS_NUM_THREADS $OMP_NUM_THREADS"]] * 3, workers=2)
    assert out == [b"1 1\n"] * 3
    import os

    assert os.environ["OPENBLAS_NUM_THREADS"] == "7"
