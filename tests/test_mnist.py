"""verify.experiments.mnist: every recognised format loads back exactly what was written, and every
damaged file is refused with an error that names it.  The files are tiny (5 train, 3 test images)."""
from __future__ import annotations

import ast
import gzip
import hashlib
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from verify.experiments import mnist
from verify.experiments.mnist import ENV_VAR, EXPECTED_SIZES, MNIST, load_mnist

IDX_NAMES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


@pytest.fixture
def digits():
    """Known images and labels; pixel 0 and 255 both occur."""
    rng = np.random.default_rng(7)
    train = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    train[0, 0, :2] = (0, 255)
    return {"train_images": train, "train_labels": np.array([3, 1, 4, 1, 5], np.uint8),
            "test_images": test, "test_labels": np.array([9, 0, 6], np.uint8)}


def idx_bytes(array: np.ndarray, magic: int | None = None, shape: tuple | None = None) -> bytes:
    """An IDX file: big-endian magic, one 32-bit size per dimension, then the bytes."""
    magic = (0x0800 | array.ndim) if magic is None else magic
    shape = array.shape if shape is None else shape
    return struct.pack(f">I{len(shape)}I", magic, *shape) + array.astype(np.uint8).tobytes()


def write_idx(folder: Path, digits: dict, gz: bool = False, dotted: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for role, name in IDX_NAMES.items():
        name = name.replace("-idx", ".idx") if dotted else name
        data = idx_bytes(digits[role])
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    return folder


def write_npz(path: Path, digits: dict, **override) -> Path:
    arrays = {"x_train": digits["train_images"], "y_train": digits["train_labels"],
              "x_test": digits["test_images"], "y_test": digits["test_labels"], **override}
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def write_pickle(path: Path, obj) -> Path:
    # protocol 2: what the Python 2 original used
    path.write_bytes(gzip.compress(pickle.dumps(obj, protocol=2)))
    return path


def classic_triple(digits: dict, valid_images: np.ndarray, valid_labels: np.ndarray) -> tuple:
    """The layout of mnist.pkl.gz: float32 (n, 784) in [0, 1] and int64 labels."""
    def flat(images):
        return (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32)
    return ((flat(digits["train_images"]), digits["train_labels"].astype(np.int64)),
            (flat(valid_images), valid_labels.astype(np.int64)),
            (flat(digits["test_images"]), digits["test_labels"].astype(np.int64)))


def assert_loaded(data: MNIST, digits: dict, source: str) -> None:
    assert data.source == source
    for role in IDX_NAMES:
        got, want = getattr(data, role), digits[role]
        assert got.dtype == (np.uint8 if role.endswith("images") else np.int64), role
        assert got.shape == want.shape, role
        np.testing.assert_array_equal(got, want, err_msg=role)
    assert not data.is_full_size


def assert_names(excinfo, path: Path) -> None:
    assert str(path) in str(excinfo.value), str(excinfo.value)


# ----------------------------------------------------------------------------- formats that load
def test_idx_folder_loads_exactly_with_digests(tmp_path, digits):
    folder = write_idx(tmp_path / "idx", digits)
    data = load_mnist(folder)
    assert_loaded(data, digits, "idx")
    assert [p.name for p in data.files] == list(IDX_NAMES.values())
    assert data.valid_images is None and data.valid_labels is None
    assert data.sha256 == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data.files}
    assert data.sizes == {"train": 5, "test": 3}


@pytest.mark.parametrize("gz, dotted, source", [(True, False, "idx.gz"), (False, True, "idx"), (True, True, "idx.gz")])
def test_idx_gzipped_and_dotted_names(tmp_path, digits, gz, dotted, source):
    data = load_mnist(str(write_idx(tmp_path / "idx", digits, gz=gz, dotted=dotted)))
    assert_loaded(data, digits, source)
    assert all(p.name.endswith(".gz") == gz and (".idx" in p.name) == dotted for p in data.files)
    # the digest is of the file as stored (compressed), the bytes that were read
    assert data.sha256 == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data.files}


@pytest.mark.parametrize("given", ["", "MNIST", "MNIST/raw"])
def test_torchvision_folder_from_root_mnist_or_raw(tmp_path, digits, given):
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw, digits, gz=True)  # torchvision keeps the downloaded .gz beside the extracted files
    write_idx(raw, digits)
    data = load_mnist(tmp_path / given)
    assert_loaded(data, digits, "torchvision-raw")
    assert [p.name for p in data.files] == list(IDX_NAMES.values())  # the extracted files preferred


def test_keras_npz(tmp_path, digits):
    path = write_npz(tmp_path / "mnist.npz", digits)
    data = load_mnist(path)
    assert_loaded(data, digits, "keras-npz")
    assert data.files == (path,)
    assert data.sha256 == {"mnist.npz": hashlib.sha256(path.read_bytes()).hexdigest()}


def test_classic_pickle_train_valid_test(tmp_path, digits):
    valid_images = np.full((2, 28, 28), 128, np.uint8)
    path = write_pickle(tmp_path / "mnist.pkl.gz", classic_triple(digits, valid_images, np.array([7, 8])))
    data = load_mnist(path)
    assert_loaded(data, digits, "pickle")  # k / 255 round-trips exactly through round(255 x)
    np.testing.assert_array_equal(data.valid_images, valid_images)
    assert data.valid_images.dtype == np.uint8
    np.testing.assert_array_equal(data.valid_labels, [7, 8])
    assert data.valid_labels.dtype == np.int64
    assert data.sizes == {"train": 5, "test": 3, "valid": 2}


def test_pickle_on_the_256_grid_gives_the_bytes_back(tmp_path, digits):
    """The deeplearning.net copy stores k / 256: every byte 0..255 comes back exactly, including the
    neighbours 127, 128, 129 that round(255 x) would merge (128/256 * 255 = 127.5, 129/256 * 255 = 128.5)."""
    images = np.zeros((256, 28, 28), np.uint8)
    images[:, 0, 0] = np.arange(256)
    triple = ((images.reshape(256, -1) / np.float32(256), np.zeros(256, np.int64)),) * 3
    path = write_pickle(tmp_path / "mnist.pkl.gz", triple)
    np.testing.assert_array_equal(load_mnist(path).train_images, images)


def test_pickle_floats_become_round_255x(tmp_path, digits):
    """Off the k / 256 grid (here 1.0 and 0.002 are on no such grid below 1) the rule is round(255 x):
    255/256 -> 254, 100/256 -> 100, 1 -> 255, 0.002 -> 1 (0.51 rounds up)."""
    triple = classic_triple(digits, digits["test_images"], digits["test_labels"])
    images = triple[0][0].copy()
    images[0, :4] = np.array([255, 100, 256, 0], np.float32) / 256
    images[0, 4] = np.float32(0.002)
    path = write_pickle(tmp_path / "mnist.pkl.gz", ((images, triple[0][1]), triple[1], triple[2]))
    assert load_mnist(path).train_images[0, 0, :5].tolist() == [254, 100, 255, 0, 1]


def test_uncompressed_pickle(tmp_path, digits):
    path = tmp_path / "mnist.pkl"
    path.write_bytes(pickle.dumps(classic_triple(digits, digits["test_images"], digits["test_labels"])))
    assert_loaded(load_mnist(path), digits, "pickle")


def test_environment_variable_and_explicit_path(tmp_path, digits, monkeypatch):
    assert ENV_VAR == "SOBOLEV_MNIST"
    npz = write_npz(tmp_path / "mnist.npz", digits)
    monkeypatch.setenv(ENV_VAR, str(npz))
    assert_loaded(load_mnist(), digits, "keras-npz")
    # an explicit path wins over the variable
    assert_loaded(load_mnist(write_idx(tmp_path / "idx", digits)), digits, "idx")


def test_no_path_and_no_variable_says_what_to_do(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError) as excinfo:
        load_mnist()
    message = str(excinfo.value)
    assert "--mnist PATH" in message and ENV_VAR in message and "Nothing is downloaded" in message


def test_variable_naming_a_missing_path_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError) as excinfo:
        load_mnist()
    assert_names(excinfo, tmp_path / "gone")
    assert ENV_VAR in str(excinfo.value)


def test_full_size_flag():
    assert EXPECTED_SIZES == {"train": 60000, "test": 10000}

    def record(n_train, n_test):
        return MNIST(np.zeros((n_train, 28, 28), np.uint8), np.zeros(n_train, np.int64),
                     np.zeros((n_test, 28, 28), np.uint8), np.zeros(n_test, np.int64), "idx", ())
    assert record(60000, 10000).is_full_size
    assert not record(60000, 9999).is_full_size
    assert not record(50000, 10000).is_full_size


# ----------------------------------------------------------------------------- damaged IDX files
def corrupt(folder: Path, role: str, data: bytes) -> Path:
    path = folder / IDX_NAMES[role]
    path.write_bytes(data)
    return path


IDX_DAMAGE = {
    # case: (role, bytes from the digits, words the message must hold)
    "truncated": ("train_images", lambda d: idx_bytes(d["train_images"])[:-10], "truncated"),
    "header cut": ("test_labels", lambda d: idx_bytes(d["test_labels"])[:6], "truncated"),
    "trailing bytes": ("test_labels", lambda d: idx_bytes(d["test_labels"]) + b"\0", "beyond"),
    "labels magic for images": ("train_images", lambda d: idx_bytes(d["train_images"], magic=0x801),
                                "0x00000801, expected 0x00000803"),
    "images magic for labels": ("test_labels", lambda d: idx_bytes(d["test_labels"], magic=0x803),
                                "0x00000803, expected 0x00000801"),
    "27x28 images": ("train_images", lambda d: idx_bytes(d["train_images"][:, :27]), "27x28"),
    "label 10": ("train_labels", lambda d: idx_bytes(np.array([3, 1, 10, 1, 5])), "outside 0..9, the first 10"),
    "gzip cut short": ("train_images", lambda d: gzip.compress(idx_bytes(d["train_images"]))[:-20], "gzip"),
}


@pytest.mark.parametrize("case", IDX_DAMAGE)
def test_damaged_idx_file_is_named(tmp_path, digits, case):
    role, make, words = IDX_DAMAGE[case]
    folder = write_idx(tmp_path / "idx", digits)
    path = corrupt(folder, role, make(digits))
    with pytest.raises(ValueError) as excinfo:
        load_mnist(folder)
    assert_names(excinfo, path)
    assert words in str(excinfo.value)


def test_count_mismatch_names_both_files(tmp_path, digits):
    folder = write_idx(tmp_path / "idx", digits)
    corrupt(folder, "test_labels", idx_bytes(digits["test_labels"][:2]))
    with pytest.raises(ValueError) as excinfo:
        load_mnist(folder)
    assert_names(excinfo, folder / IDX_NAMES["test_images"])
    assert_names(excinfo, folder / IDX_NAMES["test_labels"])
    assert "3 images" in str(excinfo.value) and "2 labels" in str(excinfo.value)


def test_missing_idx_file_is_named(tmp_path, digits):
    folder = write_idx(tmp_path / "idx", digits)
    (folder / IDX_NAMES["test_labels"]).unlink()
    with pytest.raises(FileNotFoundError) as excinfo:
        load_mnist(folder)
    assert_names(excinfo, folder / IDX_NAMES["test_labels"])
    assert IDX_NAMES["train_images"] not in str(excinfo.value)


@pytest.mark.parametrize("what", ["missing path", "empty folder"])
def test_missing_path_or_empty_folder_is_named(tmp_path, what):
    path = tmp_path / "nothing"
    if what == "empty folder":
        path.mkdir()
    with pytest.raises(FileNotFoundError) as excinfo:
        load_mnist(path)
    assert_names(excinfo, path)


def test_single_idx_file_points_to_its_folder(tmp_path, digits):
    folder = write_idx(tmp_path / "idx", digits)
    with pytest.raises(ValueError, match="pass the folder") as excinfo:
        load_mnist(folder / IDX_NAMES["train_images"])
    assert_names(excinfo, folder / IDX_NAMES["train_images"])


def test_unknown_file_is_refused_and_named(tmp_path):
    path = tmp_path / "mnist.txt"
    path.write_text("not mnist")
    with pytest.raises(ValueError, match="not a recognised MNIST file") as excinfo:
        load_mnist(path)
    assert_names(excinfo, path)


# ----------------------------------------------------------------------------- damaged npz and pickles
NPZ_DAMAGE = {
    # case: (override of the arrays, words the message must hold)
    "missing key": ({"y_test": None}, "no y_test"),
    "flat images": ({"x_train": np.zeros((5, 784), np.uint8)}, "(n, 28, 28)"),
    "float images": ({"x_test": np.zeros((3, 28, 28))}, "dtype float64"),
    "pixel 256": ({"x_train": np.full((5, 28, 28), 256, np.int16)}, "expected 0..255"),
    "label 10": ({"y_train": np.array([3, 1, 10, 1, 5])}, "outside 0..9"),
    "count mismatch": ({"y_test": np.array([1, 2])}, "3 images"),
    "object array": ({"y_test": np.array([1, "a", None], dtype=object)}, "not a readable NumPy array"),
}


@pytest.mark.parametrize("case", NPZ_DAMAGE)
def test_npz_that_is_not_mnist_is_named(tmp_path, digits, case):
    override, words = NPZ_DAMAGE[case]
    path = write_npz(tmp_path / "mnist.npz", digits, **override)
    with pytest.raises(ValueError) as excinfo:
        load_mnist(path)
    assert_names(excinfo, path)
    assert words in str(excinfo.value)


@pytest.mark.parametrize("broken", [False, True])
def test_zip_that_is_not_an_npz_is_named(tmp_path, broken):
    path = tmp_path / "mnist.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    if broken:  # the ZIP signature, then garbage
        path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(ValueError) as excinfo:
        load_mnist(path)
    assert_names(excinfo, path)
    assert ("readable .npz" if broken else "not Keras' mnist.npz") in str(excinfo.value)


def replace_split(triple: tuple, index: int, pair) -> tuple:
    return tuple(pair if i == index else p for i, p in enumerate(triple))


PICKLE_DAMAGE = {
    # case: (what to pickle, from the classic triple, words the message must hold)
    "dict": (lambda t: {"train": t[0], "valid": t[1], "test": t[2]}, "a pickled dict"),
    "pair not triple": (lambda t: (t[0], t[2]), "a pickled tuple"),
    "split not a pair": (lambda t: replace_split(t, 1, (t[1][0], t[1][1], t[1][1])), "(valid split)"),
    "pixel above 1": (lambda t: replace_split(t, 0, (t[0][0] * 2, t[0][1])), "outside [0, 1]"),
    "negative pixel": (lambda t: replace_split(t, 2, (t[2][0] - 0.5, t[2][1])), "outside [0, 1]"),
    "NaN pixel": (lambda t: replace_split(t, 2, (np.where(t[2][0] > 0.5, np.nan, t[2][0]), t[2][1])),
                  "outside [0, 1]"),
    "uint8 pixels": (lambda t: replace_split(t, 0, ((t[0][0] * 255).astype(np.uint8), t[0][1])), "expected floats"),
    "28x28 images": (lambda t: replace_split(t, 0, (t[0][0].reshape(-1, 28, 28), t[0][1])), "(n, 784)"),
    "label 10": (lambda t: replace_split(t, 0, (t[0][0], t[0][1] + 6)), "outside 0..9"),
    "count mismatch": (lambda t: replace_split(t, 2, (t[2][0], t[2][1][:2])), "2 labels"),
}


@pytest.mark.parametrize("case", PICKLE_DAMAGE)
def test_pickle_that_is_not_the_classic_triple_is_named(tmp_path, digits, case):
    make, words = PICKLE_DAMAGE[case]
    path = write_pickle(tmp_path / "mnist.pkl.gz", make(classic_triple(digits, digits["test_images"],
                                                                        digits["test_labels"])))
    with pytest.raises(ValueError) as excinfo:
        load_mnist(path)
    assert_names(excinfo, path)
    assert words in str(excinfo.value)


@pytest.mark.parametrize("data", [b"not a pickle at all", gzip.compress(b"\x80\x02garbage")])
def test_unreadable_pickle_is_named(tmp_path, data):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="not a readable pickle") as excinfo:
        load_mnist(path)
    assert_names(excinfo, path)


def test_pickle_is_unpickled_only_when_named_as_one(tmp_path, digits):
    """A gzipped pickle under another name is refused, not unpickled (unpickling runs code)."""
    path = write_pickle(tmp_path / "mnist.gz", classic_triple(digits, digits["test_images"], digits["test_labels"]))
    with pytest.raises(ValueError, match="not a recognised MNIST file"):
        load_mnist(path)
    # and a folder is never searched for one
    with pytest.raises(FileNotFoundError, match="no MNIST IDX files"):
        load_mnist(tmp_path)


# ----------------------------------------------------------------------------- no network, command line
def test_module_imports_nothing_that_could_download():
    tree = ast.parse(Path(mnist.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    allowed = {"__future__", "argparse", "dataclasses", "gzip", "hashlib", "io", "numpy", "os", "pathlib",
               "pickle", "struct", "sys", "zipfile", "zlib"}
    assert imported <= allowed, imported - allowed


def test_command_line_reports_source_and_digests(tmp_path, digits, capsys):
    folder = write_idx(tmp_path / "idx", digits, gz=True)
    assert mnist.main(["--mnist", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "source idx.gz" in out and "'train': 5" in out and "full MNIST sizes: no" in out
    digest = hashlib.sha256((folder / "train-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    assert f"sha256 {digest}  train-images-idx3-ubyte.gz" in out
    assert mnist.main(["--mnist", str(tmp_path / "gone")]) == 1
    assert str(tmp_path / "gone") in capsys.readouterr().err
