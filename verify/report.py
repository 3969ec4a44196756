"""The report framework every ``verify.<name>`` module uses.

A report module defines ``NAME``, ``TITLE`` and ``build(ctx) -> Report``.  ``run(module)``
parses the common command line (``--out``, ``--profile``, ``--seed``, ``--device``), checks
before anything is computed that the seed is in ``[0, SEED_LIMIT)`` and that ``--out`` is a
writable folder (creating it, parents too, if missing), builds the report, and writes
``<out>/<NAME>.md``, ``<out>/<NAME>.json`` and its PNG figures.

On disk, all files of a report are switched into place together (:mod:`verify.atomic`): an
output folder holds one complete report per name, never a mix of two runs.

The JSON holds every number plus provenance (versions, seed, profile, device, wall time, the commit and
whether tracked files differed from it when the run started); for a
given seed and profile it is identical from run to run apart from the timing fields (and, in
``files``, the hash of the Markdown, whose footer states the wall time).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

PROFILES = ("quick", "standard", "full")
DEFAULT_OUT = Path("reports")
# --seed takes 0 <= seed < SEED_LIMIT: the reports derive their Monte-Carlo and training seeds as
# seed * 1000 + i (i < 1000) at most, and torch's CPU generator keeps only 32 bits of a seed
# (numerics.mc.check_seed), so every derived seed stays in [0, 2**32) and distinct seeds stay distinct
SEED_LIMIT = 2**32 // 1000


@dataclass
class Context:
    out: Path
    profile: str = "standard"
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    scheduler: str | None = None  # a Dask scheduler address for the reports that run sweeps (verify.sweep)
    workers: int = 1  # processes for those sweeps when no scheduler is given
    mnist: str | None = None  # MNIST on disk for the report that trains on it (--mnist PATH)
    source: dict | None = None  # source_state() when the run started; None: taken when a report is written


@dataclass
class Report:
    name: str
    title: str
    markdown: list = field(default_factory=list)  # Markdown blocks, joined by blank lines
    data: dict = field(default_factory=dict)  # every number in the report
    figures: dict = field(default_factory=dict)  # file name -> matplotlib Figure
    verdicts: list = field(default_factory=list)  # rows for the index's verdict table

    def add(self, text: str) -> None:
        self.markdown.append(text.strip("\n"))


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("sympy", "numpy", "scipy", "mpmath", "torch", "matplotlib", "scikit-learn", "sobolev-verify"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def source_state(root: Path | None = None, out: Path | None = None) -> dict:
    """The code a run comes from: ``{"git_commit": HEAD, "git_dirty": bool}`` of the git work tree holding
    ``root`` (default: this package).  ``git_dirty`` is true when a tracked file differs from HEAD (staged
    or not), files under ``out`` (the run's own output folder, whose reports a run rewrites) aside; both
    are ``None`` outside a git work tree or without git.  Taken once, when a run starts
    (:func:`context_from_args`), so that every report of the run names the same code even when commits are
    made while it runs."""
    root = Path(__file__).resolve().parent if root is None else Path(root)
    try:
        top = Path(_git(root, "rev-parse", "--show-toplevel"))
        commit = _git(root, "rev-parse", "HEAD") or None
        changed = _git(top, "status", "--porcelain", "--untracked-files=no", "-z").split("\0")
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": None, "git_dirty": None}
    paths = [(top / entry[3:]).resolve() for entry in changed if entry]
    if out is not None:
        out = Path(out).resolve()
        paths = [q for q in paths if not q.is_relative_to(out)]
    return {"git_commit": commit, "git_dirty": bool(paths)}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=cwd).stdout.strip("\n")


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; ``cuda`` without one is an error."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda; got {requested!r}")
    if requested == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        raise ValueError("--device cuda was requested but no CUDA GPU is available")
    return "cpu"


from .atomic import (MANIFEST_KEY, PROCESS_START, Staging, Terminated, clean_stale,  # noqa: F401 (re-exported)
                     plain_name, sigterm_raises, signals_deferred, write_atomic, write_files)


def _figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    # fixed metadata so the same figure gives the same bytes
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def write(report: Report, ctx: Context, wall_time: float) -> dict:
    """Write the report's figures, Markdown and JSON into ``ctx.out`` in one switch (``Staging``).

    Returns the JSON payload without the ``files`` manifest (``provenance``, ``verdicts``, ``data``)."""
    import matplotlib.pyplot as plt

    json_name, md_name = f"{report.name}.json", f"{report.name}.md"
    try:
        for fname in report.figures:
            if not plain_name(fname) or fname in (json_name, md_name):
                raise ValueError(f"report {report.name}: bad figure file name {fname!r}")
        provenance = {
            "report": report.name,
            "profile": ctx.profile,
            "seed": ctx.seed,
            "device": ctx.device,
            "versions": versions(),
            "platform": platform.platform(),
            **(ctx.source or source_state(out=ctx.out)),
            "generated_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "wall_time_s": round(wall_time, 2),
        }
        payload = {"provenance": provenance, "verdicts": report.verdicts, "data": report.data}
        v = provenance["versions"]
        footer = (
            f"---\n*Provenance:* profile `{ctx.profile}`, seed `{ctx.seed}`, device `{ctx.device}`, "
            f"wall time {wall_time:.1f} s, Python {v['python']}, SymPy {v['sympy']}, NumPy {v['numpy']}, "
            f"mpmath {v['mpmath']}, torch {v['torch']}; commit `{provenance['git_commit']}`"
            f"{' with uncommitted changes' if provenance['git_dirty'] else ''}. "
            f"Every number is in [`{report.name}.json`]({report.name}.json)."
        )
        md = f"# {report.title}\n\n" + "\n\n".join(report.markdown) + "\n\n" + footer + "\n"
        with Staging(ctx.out, report.name, previous=json_name) as st:
            for fname, fig in report.figures.items():
                st.add(fname, _figure_bytes(fig))
            st.add(md_name, md.encode())
            manifest = dict(st.hashes)
            st.add(json_name, (json.dumps({**payload, MANIFEST_KEY: manifest}, indent=1, sort_keys=True)
                               + "\n").encode())
    finally:
        for fig in report.figures.values():
            plt.close(fig)
    return payload


# ----------------------------------------------------------------------------- command line
def seed_arg(text) -> int:
    """argparse ``type`` of ``--seed``: an integer with ``0 <= seed < SEED_LIMIT``."""
    try:
        seed = int(str(text).strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the seed must be an integer in [0, {SEED_LIMIT - 1}]; got {text!r}") from None
    if not 0 <= seed < SEED_LIMIT:
        raise argparse.ArgumentTypeError(
            f"the seed must be an integer in [0, {SEED_LIMIT - 1}]; got {seed}")
    return seed


def positive_int(text) -> int:
    """An ``argparse`` type: an integer ``>= 1``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def prepare_out(out) -> Path:
    """Make ``out`` a writable folder before anything is computed: create it (parents too) if
    missing, then create and remove a temporary file in it.  Raises ``OSError`` naming the problem."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None
    try:
        with signals_deferred():
            fd, probe = tempfile.mkstemp(dir=out, prefix=f".write-probe.{os.getpid()}.", suffix=".tmp")
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OSError(f"--out {out}: the folder is not writable ({exc.strerror or exc})") from None
    return out


def parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    """The common command line; ``prog``: the command as typed (``python -m verify.<name>``)."""
    p = argparse.ArgumentParser(description=description, prog=prog)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="output folder, created if missing (default: reports/)")
    p.add_argument("--profile", choices=PROFILES, default="standard",
                   help="quick (<1 min, CI smoke), standard (default, <15 min on 2 CPU cores), full (the largest runs: the landscape over k = 6..20, about an hour on 2 CPU cores)")
    p.add_argument("--seed", type=seed_arg, default=0,
                   help=f"seed of every random choice, an integer in [0, {SEED_LIMIT - 1}] (default 0)")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def context_from_args(args, p: argparse.ArgumentParser | None = None) -> Context:
    """The ``Context`` of parsed arguments.  ``--out`` is made a writable folder first
    (``prepare_out``); if it cannot be, exit with status 2 and an ``error: ...`` line (through
    ``p.error`` when the parser is given), before anything is computed."""
    try:
        out = prepare_out(args.out)
    except OSError as exc:
        if p is not None:
            p.error(str(exc))
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    return Context(out=out, profile=args.profile, seed=args.seed, device=device, progress=not args.no_progress,
                   scheduler=getattr(args, "scheduler", None), workers=getattr(args, "workers", None) or 1,
                   mnist=getattr(args, "mnist", None), source=source_state(out=out))


def build_and_write(module, ctx: Context) -> dict:
    start = time.perf_counter()
    report = module.build(ctx)
    return write(report, ctx, time.perf_counter() - start)


def interrupted(exc: KeyboardInterrupt, message: str,
                written: str = "the report had been written completely just before") -> int:
    """Print that we stopped and why: ``message``, or ``written`` when the signal came during the
    final switch of a write, which completed first.  Returns the exit status of a process killed
    by that signal (130 for SIGINT, 143 for SIGTERM)."""
    signum = getattr(exc, "signum", signal.SIGINT)
    name = signal.Signals(signum).name
    if getattr(exc, "written", False):
        message = written
    print(f"interrupted ({name}): {message}", file=sys.stderr)
    return 128 + signum


def run(module, argv=None) -> int:
    """Entry point of ``python -m verify.<name>``."""
    p = parser(module.TITLE, prog=f"python -m verify.{module.NAME}")
    if hasattr(module, "add_arguments"):  # a report's own options
        module.add_arguments(p)
    args = p.parse_args(argv)
    if hasattr(module, "check_arguments"):  # a report's own checks, before anything is computed
        try:
            module.check_arguments(args)
        except (FileNotFoundError, ValueError) as exc:
            p.error(str(exc))
    with sigterm_raises():
        try:
            ctx = context_from_args(args, p)
            build_and_write(module, ctx)
        except KeyboardInterrupt as exc:
            return interrupted(exc, f"no report written; {args.out} holds the previous report of {module.NAME}, "
                                    "if any, unchanged")
    print(f"wrote {ctx.out / (module.NAME + '.md')}")
    return 0


# ----------------------------------------------------------------------------- shared report utilities
def fmt(x, spec: str = ".3g") -> str:
    """A number for a table cell: ``format(x, spec)``, and an em dash for ``None`` (not applicable)."""
    return "—" if x is None else format(x, spec)


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (reports only write PNG files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def torch_threads(n: int = 1):
    """Run torch on ``n`` threads inside the block, then restore the count: small training runs on a shared machine
    are slower with torch's default thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def one_thread():
    """:func:`torch_threads` with one thread."""
    return torch_threads(1)


def progress(ctx: Context, total: int, desc: str, unit: str = "it"):
    """A tqdm progress bar for ``total`` steps of a long loop (silent with ``--no-progress``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not ctx.progress, leave=False)
