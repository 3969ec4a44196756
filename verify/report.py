"""The report framework every ``verify.<name>`` module uses.

A report module defines ``NAME``, ``TITLE`` and ``build(ctx) -> Report``.  ``run(module)``
parses the common command line (``--out``, ``--profile``, ``--seed``, ``--device``), checks
before anything is computed that the seed is in ``[0, SEED_LIMIT)`` and that ``--out`` is a
writable folder (creating it, parents too, if missing), builds the report, and writes
``<out>/<NAME>.md``, ``<out>/<NAME>.json`` and its PNG figures.

On disk (``Staging``): every file of a report is first written into a fresh hidden staging
folder ``<out>/.<NAME>.staging.<pid>.<random>/`` on the same filesystem, then switched into
place with one ``os.replace`` per file, SIGINT and SIGTERM deferred during the switch, the
JSON last.  The JSON carries the manifest ``"files": {file name: sha256 hex}`` of its sibling
files (the figures and the Markdown), so a reader who finds the JSON finds files matching it;
files named in the previous run's manifest that the new run no longer produces are removed in
the same switch.  An exception or a signal before the switch removes the staging folder and
leaves the previous report untouched; a failure inside the switch rolls it back.  So an output
folder holds one complete report per name: never a mix of two runs, never a temporary file.
Staging folders and ``.*.tmp`` files of our own naming left by a killed writer are removed at
the start of the next write, when older than the current process and their pid is not running.

The JSON holds every number plus provenance (versions, seed, profile, device, wall time); for a
given seed and profile it is identical from run to run apart from the timing fields (and, in
``files``, the hash of the Markdown, whose footer states the wall time).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import io
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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
MANIFEST_KEY = "files"  # top-level key of a report's JSON: {sibling file name: sha256 hex}


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


# ----------------------------------------------------------------------------- signals
class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM handler of ``sigterm_raises``: Python's default SIGTERM kills the
    process without running ``finally`` blocks, so a staging folder would be left behind."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signum)
        self.signum = signum


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextmanager
def sigterm_raises():
    """While active (main thread only), SIGTERM raises ``Terminated`` (a ``KeyboardInterrupt``)."""
    if not _in_main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if old is None else old)


@contextmanager
def _signals_deferred():
    """SIGINT and SIGTERM are recorded, not acted on, inside the block; on leaving it the old
    handlers are restored and the recorded signals re-delivered to them.  Used around the few
    ``os.replace``/``unlink`` calls of a switch or a clean-up, which take microseconds.  Outside
    the main thread Python runs no signal handler there anyway, so nothing is done."""
    if not _in_main_thread():
        yield
        return
    pending: list = []

    def record(signum, frame):
        if signum not in pending:
            pending.append(signum)

    old = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, record)
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in pending:
            signal.raise_signal(sig)


# ----------------------------------------------------------------------------- stale files
_STAGING_RE = re.compile(r"^\..+\.staging\.(\d+)\.[a-z0-9_]{8}$")  # tempfile.mkdtemp: 8 random characters
_TMP_RE = re.compile(r"^\..+?\.(?:(\d+)\.)?[a-z0-9_]{8}\.tmp$")  # .<name>.<pid>.<random>.tmp (older: no pid)
_IMPORTED = time.time()


def _process_start() -> float:
    """Wall-clock start of this process (Linux: from /proc), never later than this module's import."""
    try:
        with open("/proc/self/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks since boot
        with open("/proc/stat") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
        return min(_IMPORTED, btime + ticks / os.sysconf("SC_CLK_TCK"))
    except Exception:
        return _IMPORTED


PROCESS_START = _process_start()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we can judge: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def clean_stale(folder) -> list:
    """Remove staging folders and ``.*.tmp`` files that a killed writer left in ``folder``.

    Only names of our own patterns (``.<name>.staging.<pid>.<random>`` folders,
    ``.<name>[.<pid>].<random>.tmp`` files), only entries last modified before this process
    started, and only when the pid in the name is not a running process (or is our own pid,
    i.e. belonged to an earlier process): a concurrent writer's staging folder is never touched.
    Returns the names removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    me = os.getpid()
    for entry in entries:
        name = entry.name
        if not name.startswith("."):
            continue
        try:
            if (m := _STAGING_RE.match(name)) and entry.is_dir(follow_symlinks=False):
                is_dir = True
            elif (m := _TMP_RE.match(name)) and entry.is_file(follow_symlinks=False):
                is_dir = False
            else:
                continue
            pid = int(m.group(1)) if m.group(1) else None
            if entry.stat(follow_symlinks=False).st_mtime >= PROCESS_START:
                continue
            if pid is not None and pid != me and _pid_alive(pid):
                continue
            with _signals_deferred():
                if is_dir:
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            removed.append(name)
        except OSError:
            continue
    return removed


# ----------------------------------------------------------------------------- writing
def _fsync_folder(folder) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _plain_name(name) -> bool:
    return (isinstance(name, str) and name not in ("", ".", "..") and not name.startswith(".")
            and "/" not in name and "\\" not in name and "\0" not in name)


@contextmanager
def _folder_lock(folder):
    """An exclusive ``flock`` on the folder itself (no lock file), so two writers' switches into
    one folder never interleave; a no-op where that is not available."""
    fd = None
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
    except (ImportError, OSError):
        pass
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


class Staging:
    """Files written into a hidden staging folder inside ``out``, then switched into place together.

    ::

        with Staging(out, "witnesses", previous="witnesses.json") as st:
            st.add("witnesses_z.png", png)
            st.add("witnesses.json", payload)   # ``previous`` is always switched last

    Leaving the block normally commits: under a lock on ``out`` and with SIGINT/SIGTERM deferred,
    every file is ``os.replace``d into ``out`` in the order added (``previous`` last), then the
    files listed in the ``"files"`` manifest of the old ``out/<previous>`` that were not added now
    are removed; if a replace fails, the ones done are rolled back (the old files were hard-linked,
    or copied, into the staging folder first).  An exception or signal in the block removes the
    staging folder; ``out`` is left as it was.  The staging folder is
    ``out/.<tag>.staging.<pid>.<random>`` (see ``clean_stale``).
    """

    def __init__(self, out, tag: str, previous: str | None = None):
        self.out = Path(out)
        self.tag = tag
        self.previous = previous
        self.path: Path | None = None
        self.hashes: dict = {}  # name -> sha256 hex, in the order added
        self.committed = False

    def __enter__(self) -> "Staging":
        self.out.mkdir(parents=True, exist_ok=True)
        clean_stale(self.out)
        try:
            with _signals_deferred():
                self.path = Path(tempfile.mkdtemp(prefix=f".{self.tag}.staging.{os.getpid()}.", dir=self.out))
        except BaseException:
            self._discard()
            raise
        return self

    def add(self, name: str, payload: bytes) -> str:
        """Write ``payload`` as ``name`` into the staging folder; returns its sha256 (hex)."""
        if not _plain_name(name):
            raise ValueError(f"not a plain file name for a report file: {name!r}")
        if name in self.hashes:
            raise ValueError(f"{name} was added twice")
        path = self.path / name
        with open(path, "xb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(path, 0o644)
        self.hashes[name] = hashlib.sha256(payload).hexdigest()
        return self.hashes[name]

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self._commit()
        except BaseException as err:
            if self.committed:  # a signal re-delivered after a complete switch
                err.written = True
            raise
        finally:
            self._discard()
        return False

    def _previous_files(self) -> list:
        if self.previous is None:
            return []
        try:
            files = json.loads((self.out / self.previous).read_bytes()).get(MANIFEST_KEY)
        except (OSError, ValueError, AttributeError):
            return []
        if not isinstance(files, dict):
            return []
        return [n for n in files if _plain_name(n) and n != self.previous and n not in self.hashes]

    def _backup(self, names) -> dict:
        backups = {}
        for name in names:
            target = self.out / name
            if not os.path.lexists(target):
                continue
            if target.is_dir() and not target.is_symlink():
                raise IsADirectoryError(f"{target} is a folder; cannot replace it by a report file")
            folder = self.path / ".previous"
            folder.mkdir(exist_ok=True)
            try:
                os.link(target, folder / name, follow_symlinks=False)
            except (OSError, NotImplementedError):
                shutil.copy2(target, folder / name, follow_symlinks=False)
            backups[name] = folder / name
        return backups

    def _commit(self) -> None:
        names = [n for n in self.hashes if n != self.previous]
        if self.previous in self.hashes:
            names.append(self.previous)  # the JSON last: whoever finds it finds its files
        with _folder_lock(self.out):
            obsolete = self._previous_files()
            backups = self._backup(names)
            done = []
            with _signals_deferred():
                try:
                    for name in names:
                        os.replace(self.path / name, self.out / name)
                        done.append(name)
                except BaseException:
                    for name in reversed(done):
                        try:
                            if name in backups:
                                os.replace(backups[name], self.out / name)
                            else:
                                os.unlink(self.out / name)
                        except OSError:
                            pass
                    raise
                self.committed = True
                for name in obsolete:
                    try:
                        os.unlink(self.out / name)
                    except OSError:
                        pass
                shutil.rmtree(self.path, ignore_errors=True)
                self.path = None
        _fsync_folder(self.out)

    def _discard(self) -> None:
        if self.path is None:
            return
        with _signals_deferred():
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None


def write_files(out, files: dict, tag: str = "files") -> None:
    """Write ``{name: bytes}`` into ``out`` through one ``Staging`` folder: all of them or none."""
    with Staging(out, tag) as st:
        for name, payload in files.items():
            st.add(name, payload)


def write_atomic(path: Path, payload: bytes) -> None:
    """Write one file atomically: a temporary ``.<name>.<pid>.<random>.tmp`` beside it, then ``os.replace``.

    The temporary is removed on any exception; its creation, the replace and the removal run with
    SIGINT/SIGTERM deferred, so no signal can leave it behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path.parent)
    fd = tmp = None
    try:
        with _signals_deferred():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fd = None  # closed by the with
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        with _signals_deferred():
            os.replace(tmp, path)
            tmp = None
    except BaseException:
        with _signals_deferred():
            if fd is not None:
                os.close(fd)
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
        raise


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
            if not _plain_name(fname) or fname in (json_name, md_name):
                raise ValueError(f"report {report.name}: bad figure file name {fname!r}")
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
        v = provenance["versions"]
        footer = (
            f"---\n*Provenance:* profile `{ctx.profile}`, seed `{ctx.seed}`, device `{ctx.device}`, "
            f"wall time {wall_time:.1f} s, Python {v['python']}, SymPy {v['sympy']}, NumPy {v['numpy']}, "
            f"mpmath {v['mpmath']}, torch {v['torch']}; commit `{provenance['git_commit']}`. "
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
        with _signals_deferred():
            fd, probe = tempfile.mkstemp(dir=out, prefix=f".write-probe.{os.getpid()}.", suffix=".tmp")
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OSError(f"--out {out}: the folder is not writable ({exc.strerror or exc})") from None
    return out


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="output folder, created if missing (default: reports/)")
    p.add_argument("--profile", choices=PROFILES, default="standard",
                   help="quick (<1 min, CI smoke), standard (default, <15 min on 2 CPU cores), full (GPU-sized)")
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
    return Context(out=out, profile=args.profile, seed=args.seed, device=device, progress=not args.no_progress)


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
    p = parser(module.TITLE)
    args = p.parse_args(argv)
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
def one_thread():
    """Run torch on one thread inside the block: small training runs on a shared 2-core machine are
    slower with torch's default thread count, and their results do not depend on it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def progress(ctx: Context, total: int, desc: str, unit: str = "it"):
    """A tqdm progress bar for ``total`` steps of a long loop (silent with ``--no-progress``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not ctx.progress, leave=False)
