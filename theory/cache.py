"""The one place that caches expensive symbolic work.

``cached`` memoises a function of hashable arguments for the process (``lru_cache``) and,
when the environment variable ``SOBOLEV_CACHE_DIR`` names a folder, also on disk (pickled
SymPy objects, keyed by the function, its arguments, the SymPy version and a hash of the
``theory`` sources, so a changed derivation is never served stale).
``SOBOLEV_CACHE=off`` disables both layers (every call derives afresh; for debugging).
``clear()`` empties the process layer.
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tempfile
from pathlib import Path

import sympy

_registry: list = []


@functools.lru_cache(maxsize=1)
def _source_hash() -> str:
    h = hashlib.sha256(sympy.__version__.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _disk_path(name: str, args: tuple) -> Path | None:
    folder = os.environ.get("SOBOLEV_CACHE_DIR")
    if not folder:
        return None
    key = hashlib.sha256(repr((name, args)).encode()).hexdigest()[:24]
    return Path(folder) / f"theory-{_source_hash()}" / f"{key}.pkl"


def cached(fn):
    """Memoise ``fn`` per process and, optionally, on disk."""
    name = f"{fn.__module__}.{fn.__qualname__}"

    @functools.lru_cache(maxsize=None)
    def memo(*args):
        path = _disk_path(name, args)
        if path is not None and path.exists():
            try:
                return pickle.loads(path.read_bytes())
            except Exception:  # a corrupt or foreign file: derive again
                pass
        value = fn(*args)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
                tmp.write(pickle.dumps(value))
            os.replace(tmp.name, path)  # atomic: never a half-written cache file
        return value

    @functools.wraps(fn)
    def wrapper(*args):
        if os.environ.get("SOBOLEV_CACHE", "").lower() == "off":
            return fn(*args)
        return memo(*args)

    wrapper.cache_clear = memo.cache_clear
    _registry.append(memo)
    return wrapper


def clear() -> None:
    """Empty the per-process cache of every cached derivation."""
    for memo in _registry:
        memo.cache_clear()
