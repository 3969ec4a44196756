"""Writing a report's files all at once: a staging folder switched into place, signals held for the switch.

Every file of a report is first written into a fresh hidden staging folder
``<out>/.<NAME>.staging.<pid>.<random>/`` on the same filesystem, then switched into place with
one ``os.replace`` per file, SIGINT and SIGTERM deferred during the switch, the JSON last.  The
JSON carries the manifest ``"files": {file name: sha256 hex}`` of its sibling files, so a reader
who finds the JSON finds files matching it; files named in the previous run's manifest that the
new run no longer produces are removed in the same switch.  An exception or a signal before the
switch removes the staging folder and leaves the previous report untouched; a failure inside
the switch rolls it back.  Staging folders and ``.*.tmp`` files of our own naming left by a
killed writer are removed at the start of the next write, when older than the current process
and their pid is not running.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

MANIFEST_KEY = "files"  # top-level key of a report's JSON: {sibling file name: sha256 hex}


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
def signals_deferred():
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
            with signals_deferred():
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


def plain_name(name) -> bool:
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
            with signals_deferred():
                self.path = Path(tempfile.mkdtemp(prefix=f".{self.tag}.staging.{os.getpid()}.", dir=self.out))
        except BaseException:
            self._discard()
            raise
        return self

    def add(self, name: str, payload: bytes) -> str:
        """Write ``payload`` as ``name`` into the staging folder; returns its sha256 (hex)."""
        if not plain_name(name):
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
        return [n for n in files if plain_name(n) and n != self.previous and n not in self.hashes]

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
            with signals_deferred():
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
        with signals_deferred():
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
        with signals_deferred():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fd = None  # closed by the with
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        with signals_deferred():
            os.replace(tmp, path)
            tmp = None
    except BaseException:
        with signals_deferred():
            if fd is not None:
                os.close(fd)
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
        raise
