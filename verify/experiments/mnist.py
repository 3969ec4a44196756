"""MNIST from the files people already have on disk; nothing is ever downloaded.

:func:`load_mnist` takes one path (or, with none, the environment variable :data:`ENV_VAR`) and
recognises what it points to:

* a folder holding the four IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` -- each possibly gzipped (``.gz``), and each
  possibly named with ``.`` before ``idx`` (``train-images.idx3-ubyte``): source ``"idx"`` or ``"idx.gz"``;
* torchvision's layout ``<root>/MNIST/raw/`` holding those IDX files (the root, the ``MNIST`` folder or
  the ``raw`` folder may be given): source ``"torchvision-raw"``;
* Keras' ``mnist.npz`` (arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``): source ``"keras-npz"``;
* the classic ``mnist.pkl.gz`` (or an uncompressed ``.pkl``): a pickled ``(train, valid, test)`` triple,
  each ``(images, labels)`` with float images of shape ``(n, 784)`` in ``[0, 1]``: source ``"pickle"``.
  Its 50000 training images are ``train_*``, its 10000 test images ``test_*``, and its 10000
  validation images ``valid_*`` (``None`` for every other format).  The float pixels are converted to
  ``uint8``: the copy of this file from deeplearning.net stores ``k / 256`` (its largest value 255/256;
  pylearn2 issue #93), so when every pixel lies on that grid and below 1 they become ``256 x`` (exactly
  the IDX bytes ``k``); otherwise ``round(255 * x)`` (half to even).

Every array is checked and every error names the file and what is wrong: missing file, truncated
file, wrong IDX magic number, images that are not 28x28, labels outside 0..9, image and label counts
that differ, an npz or a pickle that does not hold MNIST, pixels outside 0..255 (or, in the pickle,
outside [0, 1]).  Train and test sizes are not required to be 60000 and 10000 (small files work);
:attr:`MNIST.is_full_size` says whether they are.

Security: unpickling runs code.  A pickle is read only from the exact path the caller named, only
when its name ends in ``.pkl``, ``.pickle``, ``.pkl.gz`` or ``.pickle.gz``, and never searched for in a
folder: load only a pickle you trust.  The npz is read with ``allow_pickle=False``.

``python -m verify.experiments.mnist [--mnist PATH]`` loads the files and prints what was found,
with the SHA-256 of each file.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import pickle
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ENV_VAR = "SOBOLEV_MNIST"
EXPECTED_SIZES = {"train": 60000, "test": 10000}
SIDE = 28  # MNIST images are SIDE x SIDE pixels
IMAGES_MAGIC = 0x00000803  # IDX: unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 0x00000801  # IDX: unsigned bytes, 1 dimension (count)

# role -> (file stem, IDX suffix, magic); the four files of the IDX formats
_IDX_FILES = {
    "train_images": ("train-images", "idx3-ubyte", IMAGES_MAGIC),
    "train_labels": ("train-labels", "idx1-ubyte", LABELS_MAGIC),
    "test_images": ("t10k-images", "idx3-ubyte", IMAGES_MAGIC),
    "test_labels": ("t10k-labels", "idx1-ubyte", LABELS_MAGIC),
}
_NPZ_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
_PICKLE_SPLITS = ("train", "valid", "test")
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pkl.gz", ".pickle.gz")
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK"  # every ZIP archive (so every .npz) starts with "PK"


@dataclass(frozen=True, eq=False, repr=False)  # eq=False: NumPy arrays have no single truth value
class MNIST:
    """MNIST as loaded: images ``uint8`` of shape ``(n, 28, 28)``, labels ``int64`` of shape ``(n,)``.

    ``source`` names the format found (``"idx"``, ``"idx.gz"``, ``"torchvision-raw"``, ``"keras-npz"``,
    ``"pickle"``), ``files`` the files read, in order.  ``valid_images`` / ``valid_labels`` hold the
    classic pickle's validation split and are ``None`` for every other format.  ``digests`` maps each
    file name to the SHA-256 of the bytes that were parsed (see :attr:`sha256`).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    files: tuple
    valid_images: np.ndarray | None = None
    valid_labels: np.ndarray | None = None
    digests: dict = field(default_factory=dict)

    @property
    def sha256(self) -> dict:
        """``{file name: SHA-256 hex digest}`` of the files read, computed from the very bytes that were
        parsed when loading (so it describes the data in hand even if the files change later)."""
        return dict(self.digests)

    @property
    def sizes(self) -> dict:
        """Number of images per split: ``train``, ``test`` and, for the pickle, ``valid``."""
        sizes = {"train": len(self.train_images), "test": len(self.test_images)}
        if self.valid_images is not None:
            sizes["valid"] = len(self.valid_images)
        return sizes

    @property
    def is_full_size(self) -> bool:
        """Whether train and test have MNIST's full sizes :data:`EXPECTED_SIZES` (60000 and 10000).
        False for the classic pickle, whose train split holds 50000 (the other 10000 are ``valid``)."""
        return all(self.sizes[split] == n for split, n in EXPECTED_SIZES.items())

    def __repr__(self) -> str:  # the default would print the arrays
        return f"MNIST(source={self.source!r}, sizes={self.sizes}, files={[str(f) for f in self.files]})"


# ----------------------------------------------------------------------------- entry point
def load_mnist(path: str | os.PathLike | None = None) -> MNIST:
    """Load MNIST from ``path`` (or, when ``path`` is None, from the path in ``$SOBOLEV_MNIST``).

    ``path`` is a folder of the four IDX files (plain or ``.gz``), a torchvision root / ``MNIST`` /
    ``MNIST/raw`` folder, Keras' ``mnist.npz`` or the classic ``mnist.pkl.gz`` (see the module
    docstring: its float pixels become ``uint8`` by ``round(255 * x)``, and unpickling runs code).
    Raises ``FileNotFoundError`` when no path is given or a file is missing, ``ValueError`` when a
    file is not valid MNIST; both name the file.  Nothing is downloaded.
    """
    target = _given_path(path)
    digests: dict = {}  # file name -> SHA-256, filled as the files are read
    if target.is_dir():
        folder = _idx_folder(target)
        paths = _idx_paths(folder)
        splits = _idx_splits(paths, digests)
        return _assemble(splits, _idx_source(folder, paths), tuple(paths.values()), digests)
    raw = _read_bytes(target, digests)
    source = _file_format(target, raw)
    splits = _npz_splits(target, raw) if source == "keras-npz" else _pickle_splits(target, raw)
    return _assemble(splits, source, (target,), digests)


def _given_path(path) -> Path:
    """The path to load: ``path``, else ``$SOBOLEV_MNIST``; it must exist."""
    origin = ""
    if path is None or str(path) == "":  # "" too: Path("") would silently mean the current folder
        path, origin = os.environ.get(ENV_VAR) or None, f" (from ${ENV_VAR})"
    if path is None:
        raise FileNotFoundError(
            f"no MNIST files given: pass --mnist PATH or set the environment variable {ENV_VAR} to a folder "
            "of IDX files, a torchvision MNIST folder, Keras' mnist.npz or mnist.pkl.gz. Nothing is downloaded.")
    target = Path(path).expanduser()
    if not target.exists():
        raise FileNotFoundError(f"{target}: no such file or folder{origin}")
    return target


def _read_bytes(path: Path, digests: dict) -> bytes:
    """The file's bytes, with their SHA-256 recorded in ``digests`` (hashing what is parsed, read once)."""
    raw = path.read_bytes()
    digests[path.name] = hashlib.sha256(raw).hexdigest()
    return raw


def _gunzip(raw: bytes, path: Path) -> bytes:
    """``raw`` decompressed when it is gzip data (recognised by its magic bytes, not its name)."""
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # bad header, cut short, corrupt stream
        raise ValueError(f"{path}: not a readable gzip file ({exc})") from exc


def _assemble(splits: dict, source: str, files: tuple, digests: dict) -> MNIST:
    """The :class:`MNIST` record; ``splits`` maps a split name to its checked ``(images, labels)``."""
    valid = splits.get("valid", (None, None))
    return MNIST(*splits["train"], *splits["test"], source=source, files=files, valid_images=valid[0],
                 valid_labels=valid[1], digests=digests)


# ----------------------------------------------------------------------------- checks shared by all formats
def _checked_images(images: np.ndarray, where: str) -> np.ndarray:
    """Integer pixels of shape ``(n, 28, 28)`` within 0..255, as ``uint8`` (npz; IDX headers fix these)."""
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"{where}: images of shape {images.shape}; MNIST's are (n, {SIDE}, {SIDE})")
    if not np.issubdtype(images.dtype, np.integer):
        raise ValueError(f"{where}: images of dtype {images.dtype}; expected integer pixels (uint8)")
    if images.size and (images.min() < 0 or images.max() > 255):
        raise ValueError(f"{where}: pixel values from {images.min()} to {images.max()}; expected 0..255")
    return images.astype(np.uint8)  # a copy: the record owns writable arrays


def _checked_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """Integer labels of shape ``(n,)`` within 0..9, as ``int64``."""
    if labels.ndim != 1:
        raise ValueError(f"{where}: labels of shape {labels.shape}; expected (n,)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: labels of dtype {labels.dtype}; expected integers")
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if bad.size:
        raise ValueError(f"{where}: {bad.size} label(s) outside 0..9, the first {labels[bad[0]]} at index {bad[0]}")
    return labels.astype(np.int64)


def _checked_counts(images: np.ndarray, labels: np.ndarray, images_where: str, labels_where: str) -> None:
    """One label per image; the error names where each came from."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images in {images_where} but {len(labels)} labels in {labels_where}")


# ----------------------------------------------------------------------------- IDX folders (plain, gzip, torchvision)
def _idx_folder(path: Path) -> Path:
    """The folder holding the IDX files: ``path`` itself, its ``raw`` or its ``MNIST/raw`` (torchvision)."""
    for folder in (path, path / "raw", path / "MNIST" / "raw"):
        if _holds_idx(folder):
            return folder
    others = sorted(p.name for p in path.iterdir() if p.suffix in (".npz", ".pkl", ".gz", ".pickle"))
    hint = f"; pass one of these files itself instead: {others}" if others else ""
    raise FileNotFoundError(
        f"{path}: no MNIST IDX files here, nor in raw/ or MNIST/raw/ (expected train-images-idx3-ubyte, "
        f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, possibly .gz){hint}")


def _holds_idx(folder: Path) -> bool:
    """Whether ``folder`` holds at least one of the four IDX files (then the others must be there too)."""
    return folder.is_dir() and any(p.is_file() for role in _IDX_FILES for p in _idx_candidates(folder, role))


def _idx_candidates(folder: Path, role: str) -> list:
    """The names a file may have, in order of preference: dashed before dotted, plain before ``.gz``
    (torchvision's raw folder keeps both the ``.gz`` and the extracted file)."""
    stem, suffix, _ = _IDX_FILES[role]
    names = (f"{stem}-{suffix}", f"{stem}.{suffix}")
    return [folder / f"{name}{gz}" for name in names for gz in ("", ".gz")]


def _idx_paths(folder: Path) -> dict:
    """``{role: path}`` of the four IDX files in ``folder``; every missing one named in one error."""
    found = {role: next((p for p in _idx_candidates(folder, role) if p.is_file()), None) for role in _IDX_FILES}
    missing = [_idx_candidates(folder, role)[0] for role, p in found.items() if p is None]
    if missing:
        names = ", ".join(str(p) for p in missing)
        raise FileNotFoundError(f"missing MNIST IDX file(s): {names} (also looked for .gz and the dotted "
                                "name such as train-images.idx3-ubyte)")
    return found


def _idx_source(folder: Path, files: dict) -> str:
    if folder.name == "raw" and folder.parent.name == "MNIST":
        return "torchvision-raw"
    gz = [p.name.endswith(".gz") for p in files.values()]
    return "idx.gz" if all(gz) else "idx" if not any(gz) else "idx+idx.gz"


def _idx_splits(files: dict, digests: dict) -> dict:
    """``{"train": (images, labels), "test": (...)}`` read from the four IDX files and checked."""
    arrays = {role: _read_idx(path, _IDX_FILES[role][2], digests) for role, path in files.items()}
    splits = {}
    for split in ("train", "test"):
        images_path, labels_path = files[f"{split}_images"], files[f"{split}_labels"]
        labels = _checked_labels(arrays[f"{split}_labels"], str(labels_path))
        _checked_counts(arrays[f"{split}_images"], labels, str(images_path), str(labels_path))
        splits[split] = (arrays[f"{split}_images"], labels)
    return splits


def _read_idx(path: Path, magic: int, digests: dict) -> np.ndarray:
    """The IDX file's array (``uint8``) after checking its header against ``magic`` and its length."""
    data = _gunzip(_read_bytes(path, digests), path)
    shape, header = _idx_header(data, path, magic)
    count = int(np.prod(shape))
    if len(data) < header + count:
        raise ValueError(f"{path}: truncated: the header announces {shape[0]} items ({header + count} bytes "
                         f"with the header) but the file holds {len(data)} bytes")
    if len(data) > header + count:
        raise ValueError(f"{path}: {len(data) - header - count} bytes beyond the {shape[0]} items its header "
                         "announces; not an MNIST IDX file")
    # .copy(): frombuffer's array is read-only and would keep the whole file's bytes alive
    return np.frombuffer(data, np.uint8, count=count, offset=header).reshape(shape).copy()


def _idx_header(data: bytes, path: Path, magic: int) -> tuple:
    """``(shape, header length)`` from the IDX header, which must carry ``magic`` (and 28x28 for images)."""
    kind = "an image file" if magic == IMAGES_MAGIC else "a label file"
    ndim = magic & 0xFF  # the magic's last byte is the number of dimensions
    header = 4 * (1 + ndim)
    if len(data) < 4:
        raise ValueError(f"{path}: truncated: {len(data)} bytes, too short for an IDX header")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise ValueError(f"{path}: IDX magic number 0x{found:08X}, expected 0x{magic:08X} for {kind}")
    if len(data) < header:
        raise ValueError(f"{path}: truncated: {len(data)} bytes, shorter than the {header}-byte IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if ndim == 3 and shape[1:] != (SIDE, SIDE):
        raise ValueError(f"{path}: images of {shape[1]}x{shape[2]} pixels; MNIST's are {SIDE}x{SIDE}")
    return shape, header


# ----------------------------------------------------------------------------- single files: npz and pickle
def _file_format(path: Path, raw: bytes) -> str:
    """``"keras-npz"`` (a ZIP archive) or ``"pickle"`` (by name only: a pickle is unpickled only when its
    name says it is one); anything else is refused."""
    if raw.startswith(_ZIP_MAGIC):
        return "keras-npz"
    if path.name.lower().endswith(_PICKLE_SUFFIXES):
        return "pickle"
    if any(path == c for role in _IDX_FILES for c in _idx_candidates(path.parent, role)):
        raise ValueError(f"{path}: a single IDX file; pass the folder that holds all four ({path.parent})")
    raise ValueError(f"{path}: not a recognised MNIST file: neither a ZIP archive (Keras' mnist.npz) nor a pickle "
                     f"named *{', *'.join(_PICKLE_SUFFIXES)} (mnist.pkl.gz); for IDX files pass their folder")


def _npz_splits(path: Path, raw: bytes) -> dict:
    """``{"train": (images, labels), "test": (...)}`` from Keras' mnist.npz, checked."""
    arrays = _npz_arrays(path, raw)
    splits = {}
    for split, (x_key, y_key) in _NPZ_KEYS.items():
        images = _checked_images(arrays[x_key], f"{path}['{x_key}']")
        labels = _checked_labels(arrays[y_key], f"{path}['{y_key}']")
        _checked_counts(images, labels, f"{path}['{x_key}']", f"{path}['{y_key}']")
        splits[split] = (images, labels)
    return splits


def _npz_arrays(path: Path, raw: bytes) -> dict:
    """The four arrays of the npz by key; allow_pickle=False, so that no object array can run code."""
    keys = [key for pair in _NPZ_KEYS.values() for key in pair]
    try:
        npz = np.load(io.BytesIO(raw), allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz (ZIP) file ({exc})") from exc
    with npz:
        missing = [key for key in keys if key not in npz.files]
        if missing:
            raise ValueError(f"{path}: not Keras' mnist.npz: no {', '.join(missing)} (it holds {sorted(npz.files)})")
        return {key: _npz_member(npz, key, path) for key in keys}


def _npz_member(npz, key: str, path: Path) -> np.ndarray:
    try:
        return npz[key]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:  # not .npy data, or an object array
        raise ValueError(f"{path}['{key}']: not a readable NumPy array ({exc})") from exc


def _pickle_splits(path: Path, raw: bytes) -> dict:
    """``{"train", "valid", "test"}`` splits from the classic pickle, checked and converted to uint8."""
    triple = _unpickle(path, _gunzip(raw, path))
    if not (isinstance(triple, (tuple, list)) and len(triple) == 3):
        raise ValueError(f"{path}: a pickled {type(triple).__name__}; expected the (train, valid, test) triple "
                         "of (images, labels) pairs of mnist.pkl.gz")
    return {split: _pickle_pair(pair, f"{path} ({split} split)") for split, pair in zip(_PICKLE_SPLITS, triple)}


def _unpickle(path: Path, data: bytes):
    """The unpickled object.  encoding="latin1": the classic file was written by Python 2, whose NumPy
    arrays hold byte strings that must be read as bytes, not decoded as text."""
    try:
        return pickle.load(io.BytesIO(data), encoding="latin1")
    except Exception as exc:  # unpickling can fail in any way (missing class, bad opcode, cut short)
        raise ValueError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from exc


def _pickle_pair(pair, where: str) -> tuple:
    """One split of the pickle, ``(float images (n, 784) in [0, 1], int labels)``, as ``(uint8, int64)``."""
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise ValueError(f"{where}: a {type(pair).__name__}; expected an (images, labels) pair")
    images = _pickle_images(_as_array(pair[0], where), where)
    labels = _checked_labels(_as_array(pair[1], where), where)
    _checked_counts(images, labels, where, where)
    return images, labels


def _as_array(obj, where: str) -> np.ndarray:
    try:
        return np.asarray(obj)
    except (ValueError, TypeError) as exc:  # ragged nested lists, objects NumPy cannot convert
        raise ValueError(f"{where}: not an array ({exc})") from exc


def _pickle_images(images: np.ndarray, where: str) -> np.ndarray:
    """Float images ``(n, 784)`` in ``[0, 1]`` as ``uint8`` ``(n, 28, 28)``: ``256 x`` on the ``k / 256``
    grid, else ``round(255 x)`` (:func:`_pickle_scale`)."""
    if images.ndim != 2 or images.shape[1] != SIDE * SIDE:
        raise ValueError(f"{where}: images of shape {images.shape}; expected (n, {SIDE * SIDE})")
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"{where}: images of dtype {images.dtype}; expected floats in [0, 1]")
    bad = np.flatnonzero(~((images >= 0) & (images <= 1)))  # NaN fails both comparisons
    if bad.size:
        first = images.flat[bad[0]]
        raise ValueError(f"{where}: {bad.size} pixel value(s) outside [0, 1], the first {first} at flat index {bad[0]}")
    # float64 before scaling: float32 products could round a k + 0.5 boundary the other way
    x = images.astype(np.float64)
    return np.rint(x * _pickle_scale(x)).astype(np.uint8).reshape(-1, SIDE, SIDE)


def _pickle_scale(x: np.ndarray) -> int:
    """256 when every pixel is ``k / 256`` with ``k <= 255`` (the copy from deeplearning.net, made from
    the IDX bytes by dividing by 256: multiplying back recovers them exactly, where ``round(255 x)``
    would merge neighbours, e.g. 127/256 and 128/256 -> 127 and 128/256, 129/256 -> 128), else 255."""
    on_grid = x.size > 0 and x.max() < 1 and np.array_equal(x * 256, np.rint(x * 256))
    return 256 if on_grid else 255


# ----------------------------------------------------------------------------- command line
def main(argv: list | None = None) -> int:
    """``python -m verify.experiments.mnist [--mnist PATH]``: load, check and describe the files."""
    parser = argparse.ArgumentParser(prog="python -m verify.experiments.mnist",
                                     description="Check MNIST files on disk (nothing is downloaded).")
    parser.add_argument("--mnist", metavar="PATH", help=f"IDX folder, torchvision folder, mnist.npz or "
                        f"mnist.pkl.gz (default: ${ENV_VAR})")
    args = parser.parse_args(argv)
    try:
        data = load_mnist(args.mnist)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"source {data.source}; sizes {data.sizes}; full MNIST sizes: {'yes' if data.is_full_size else 'no'}")
    for name, digest in data.sha256.items():
        print(f"sha256 {digest}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
