"""The report framework every ``verify.<name>`` module uses.

A report module defines ``NAME``, ``TITLE`` and ``build(ctx) -> Report``.  ``run(module)``
parses the common command line (``--out``, ``--profile``, ``--seed``, ``--device``), builds
the report, and writes ``<out>/<NAME>.md``, ``<out>/<NAME>.json`` and its PNG figures, each
atomically (written to a temporary file in the same folder, then renamed), figures first
and the Markdown last, so an interrupted run never leaves a half-written report.  The JSON
holds every number plus provenance (versions, seed, profile, device, wall time); for a
given seed and profile it is identical from run to run apart from the timing fields.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

PROFILES = ("quick", "standard", "full")
DEFAULT_OUT = Path("reports")


@dataclass
class Context:
    out: Path
    profile: str = "standard"
    seed: int = 0
    device: str = "cpu"
    progress: bool = True


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


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except Exception:
        return None


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


def write_atomic(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _figure_bytes(fig) -> bytes:
    buf = io.BytesIO()
    # fixed metadata so the same figure gives the same bytes
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def write(report: Report, ctx: Context, wall_time: float) -> dict:
    import matplotlib.pyplot as plt

    for fname, fig in report.figures.items():
        write_atomic(ctx.out / fname, _figure_bytes(fig))
        plt.close(fig)
    provenance = {
        "report": report.name,
        "profile": ctx.profile,
        "seed": ctx.seed,
        "device": ctx.device,
        "versions": versions(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "generated_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_time_s": round(wall_time, 2),
    }
    payload = {"provenance": provenance, "verdicts": report.verdicts, "data": report.data}
    write_atomic(ctx.out / f"{report.name}.json", (json.dumps(payload, indent=1, sort_keys=True) + "\n").encode())
    v = provenance["versions"]
    footer = (
        f"---\n*Provenance:* profile `{ctx.profile}`, seed `{ctx.seed}`, device `{ctx.device}`, "
        f"wall time {wall_time:.1f} s, Python {v['python']}, SymPy {v['sympy']}, NumPy {v['numpy']}, "
        f"mpmath {v['mpmath']}, torch {v['torch']}; commit `{provenance['git_commit']}`. "
        f"Every number is in [`{report.name}.json`]({report.name}.json)."
    )
    md = f"# {report.title}\n\n" + "\n\n".join(report.markdown) + "\n\n" + footer + "\n"
    write_atomic(ctx.out / f"{report.name}.md", md.encode())
    return payload


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: reports/)")
    p.add_argument("--profile", choices=PROFILES, default="standard",
                   help="quick (<1 min, CI smoke), standard (default, <15 min on 2 CPU cores), full (GPU-sized)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def context_from_args(args) -> Context:
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    return Context(out=args.out, profile=args.profile, seed=args.seed, device=device, progress=not args.no_progress)


def build_and_write(module, ctx: Context) -> dict:
    start = time.perf_counter()
    report = module.build(ctx)
    return write(report, ctx, time.perf_counter() - start)


def run(module, argv=None) -> int:
    """Entry point of ``python -m verify.<name>``."""
    args = parser(module.TITLE).parse_args(argv)
    ctx = context_from_args(args)
    try:
        build_and_write(module, ctx)
    except KeyboardInterrupt:
        print("interrupted: no report written", file=sys.stderr)
        return 130
    print(f"wrote {ctx.out / (module.NAME + '.md')}")
    return 0
