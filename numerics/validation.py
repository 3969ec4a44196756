"""Input checks for the public API: every problem is a ``ValueError`` that names it."""
from __future__ import annotations

import math

import numpy as np

from theory.vocabulary import GRADIENT_FIELDS, HESSIAN_FIELDS, PARTS  # noqa: F401 (re-exported: the API's words)


def _nested_any(x, found) -> bool:
    """Whether ``found(v)`` holds for ``x`` or, through nested lists/tuples, any entry of it (cheap scan)."""
    if found(x):
        return True
    if isinstance(x, (list, tuple)):
        return any(_nested_any(v, found) for v in x)
    return False


def _has_complex(x) -> bool:
    """Whether a nested list/tuple holds a Python or NumPy complex number."""
    return _nested_any(x, lambda v: isinstance(v, (complex, np.complexfloating)))


def as_rows(x, name: str) -> np.ndarray:
    """A ``(K, d)`` float64 copy of ``x`` (NumPy array, nested list or torch tensor).

    A 1-D input is one row (``K = 1``).
    """
    return _checked_rows(x, name).copy()


def _checked_rows(x, name: str) -> np.ndarray:
    """``x`` as a validated ``(K, d)`` float64 array, without copying when it already is one (read only)."""
    x = _from_tensor(x, name)
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ValueError(f"{name} must be a real array of shape (rows, d); got {type(x).__name__}: {exc}") from None
    if raw.dtype.kind == "c" or _has_complex(x):
        raise ValueError(f"{name} must be a real array; got complex entries (the weights of a real network are real)")
    if raw.dtype.kind == "O":  # e.g. Fractions or mpmath numbers: real numbers, but not strings or booleans
        if any(isinstance(v, (str, bytes, bool, np.bool_)) for v in raw.ravel()):
            raise ValueError(f"{name} must hold real numbers; got strings or booleans among its entries")
        try:
            raw = raw.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must hold real numbers; got an entry that is not one: {exc}") from None
    if raw.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold real numbers (float or int); got entries of dtype {raw.dtype} "
                         f"({'booleans' if raw.dtype.kind == 'b' else 'not numbers'}); convert them explicitly")
    arr = raw.astype(np.float64, copy=False)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (rows, d); got shape {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} has no rows")
    if arr.shape[1] < 2:
        raise ValueError(f"{name} has d = {arr.shape[1]}; the input dimension d must be at least 2")
    if not np.isfinite(np.max(arr)) or not np.isfinite(np.min(arr)):  # NaN and +-inf reach max or min
        bad = np.argwhere(~np.isfinite(arr))
        i, k = bad[0]
        raise ValueError(f"{name}[{i}, {k}] = {arr[i, k]} is not finite ({len(bad)} non-finite entries in {name})")
    zero = np.flatnonzero(~arr.any(axis=1))
    if len(zero):
        raise ValueError(
            f"row {zero[0]} of {name} is zero: a zero row has no angle to the others, and the "
            "population quantities are not differentiable there"
        )
    return arr


def _from_tensor(x, name: str):
    """A torch tensor as a NumPy array (any float dtype, on any device; without importing torch)."""
    if not (hasattr(x, "detach") and hasattr(x, "cpu")):
        return x
    x = x.detach().cpu()
    if getattr(x, "is_complex", lambda: False)():
        raise ValueError(f"{name} must be a real array; got a complex tensor (the weights of a real network are real)")
    if x.is_floating_point() and str(x.dtype) not in ("torch.float64", "torch.float32", "torch.float16"):
        x = x.double()  # bfloat16 and the float8 types have no NumPy counterpart; every value is exact in float64
    return x.numpy()


def has_bool(x) -> bool:
    """Whether a nested list/tuple holds a Python/NumPy boolean or a boolean array (NumPy would turn
    ``[True, 2.0]`` into ``[1.0, 2.0]`` silently)."""
    return _nested_any(x, lambda v: isinstance(v, (bool, np.bool_))
                       or (isinstance(v, np.ndarray) and v.dtype.kind == "b"))


def real_array(x, name: str) -> np.ndarray:
    """``x`` (array, nested list, scalar or torch tensor) as a float64 array of any shape, or a
    ``ValueError`` naming ``name``: complex (any complex dtype, even with every imaginary part zero),
    boolean, non-numeric (strings, objects) and ragged input are refused rather than converted
    (NumPy drops imaginary parts with only a warning).  The check of every array argument of
    :mod:`numerics.conditioning` and :mod:`numerics.differentiation`."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise ValueError(f"{name} must be a real numeric array; could not convert the "
                         f"{type(x).__name__} ({exc})") from None
    kind = arr.dtype.kind
    if kind == "c":
        raise ValueError(f"{name} must be real; got complex dtype {arr.dtype} (refused even where every "
                         "imaginary part is zero: converting would drop the imaginary parts)")
    if kind == "b" or (kind in "iuf" and has_bool(x)):
        raise ValueError(f"{name} must be a real numeric array; got booleans")
    if kind not in "iuf":
        raise ValueError(f"{name} must be a real numeric array; got dtype {arr.dtype} "
                         f"({type(x).__name__}: strings, objects and other non-numbers are refused)")
    return arr.astype(np.float64, copy=False)


def is_backend_array(x) -> bool:
    """True for an array of a namespace other than NumPy's (a torch tensor; CuPy, JAX, array-api-strict
    arrays), without importing any of them: such arguments go to :mod:`numerics.backend`."""
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)) or x is None:
        return False
    return hasattr(x, "__array_namespace__") or type(x).__module__.split(".")[0] in ("torch", "jax", "jaxlib", "cupy")


def wants_backend(W, W_star) -> bool:
    """Whether either argument is a :func:`is_backend_array` (the results then come back in its namespace)."""
    return is_backend_array(W) or is_backend_array(W_star)


def check_part(part: str) -> str:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}; got {part!r}")
    return part


def check_field(field: str, allowed: tuple, what: str) -> str:
    if field not in allowed:
        raise ValueError(f"field for the {what} must be one of {allowed}; got {field!r}")
    return field


def prepare(W, W_star) -> tuple:
    """Validated ``(W, W_star, k)`` with both scaled by ``2**k`` (exact) so the largest entry is in [0.5, 1).

    Every population quantity is positively homogeneous (loss of degree 2, gradient 1,
    Hessian 0), so callers undo the scaling exactly with powers of two.  The two returned
    arrays are fresh (never the caller's memory): the rows of one ``(K + K*, d)`` array
    ``Z = [W; W_star]``, which :func:`stacked` recovers without a copy.
    """
    return _scaled_copy(W, W_star)[:3]


def _scaled_copy(W, W_star) -> tuple:
    """:func:`prepare`'s ``(W, W_star, k)`` and the squared row norms of ``Z = [W; W_star]``."""
    W = _checked_rows(W, "W")
    W_star = _checked_rows(W_star, "W_star")
    if W.shape[1] != W_star.shape[1]:
        raise ValueError(f"W has d = {W.shape[1]} but W_star has d = {W_star.shape[1]}")
    k = _scale_exponent(W, W_star)
    K = len(W)
    Z = np.empty((K + len(W_star), W.shape[1]))
    np.ldexp(W, k, out=Z[:K])
    np.ldexp(W_star, k, out=Z[K:])
    n2 = np.einsum("ij,ij->i", Z, Z)
    return Z[:K], Z[K:], k, n2


def _scale_exponent(W: np.ndarray, W_star: np.ndarray) -> int:
    """The ``k`` of :func:`prepare`.

    ``2**k`` puts the largest entry in ``[0.5, 1)``.  Where a row is then so small that its squared
    norm falls below ``2**-900`` (near the end of the normal float64 range, where it would start
    to lose digits), ``k`` is raised until every squared norm lies in ``[2**-900, 2**900]``, the
    range in which nothing downstream overflows or underflows.  When no ``k`` does that (the rows'
    sizes span more than about ``2**900 / d``), ``ValueError`` names the smallest row.
    """
    row_max = [np.max(np.abs(A), axis=1) for A in (W, W_star)]  # exact: never under- or overflows
    big = max(float(r.max()) for r in row_max)
    k = -math.frexp(big)[1]
    # a row whose largest entry (scaled) is in [2**(e-1), 2**e) has |row|^2 >= 2**(2e - 2)
    expo = [np.frexp(r)[1] + k for r in row_max]
    lowest = min(int(e.min()) for e in expo)
    low_limit, high_limit = (int(math.log2(x)) for x in _SAFE_SQUARED_NORMS)
    raise_by = max(0, (low_limit + 1) // 2 - (lowest - 1))
    if raise_by == 0:
        return _keep_small_entries(W, W_star, k, big)  # commonly: the largest entry in [0.5, 1)
    # after the raise the largest entry is below 2**raise_by: |row|^2 < d * 4**raise_by <= 2**high_limit
    if 2 * raise_by + math.ceil(math.log2(W.shape[1])) > high_limit:
        which = 0 if int(expo[0].min()) == lowest else 1
        row = int(np.argmin(expo[which]))
        raise ValueError(
            f"row {row} of {('W', 'W_star')[which]} (largest entry {float(row_max[which][row]):.3g}) is too small "
            f"next to the largest entry ({big:.3g}): rows whose sizes differ by more than about 2**"
            f"{(high_limit - low_limit) // 2} / sqrt(d) cannot be held in one float64 computation "
            "without losing that row's digits; drop or rescale it"
        )
    return k + raise_by


def _keep_small_entries(W: np.ndarray, W_star: np.ndarray, k: int, big: float) -> int:
    """``k``, raised where scaling down by ``2**k`` would push a non-zero entry below the normal range
    and round it (a subnormal entry would even become zero: a row at an angle of 5e-324 to another
    would turn exactly parallel).  The raise stops when the largest entry reaches ``2**400`` (squared
    norms then stay below ``2**900``); entries more than ``2**1400`` below the largest are rounded."""
    if k >= 0:
        return k
    nonzero = [np.abs(A[A != 0]) for A in (W, W_star)]
    low = min(float(a.min()) for a in nonzero if a.size)
    exact_from = -1021 - math.frexp(low)[1]  # low * 2**k is a normal number, so exact, for k >= exact_from
    if k >= exact_from:
        return k
    return max(k, min(exact_from, 400 - math.frexp(big)[1]))


# squared row norms in [2**-900, 2**900]: no product of two norms, Gram entry or result of degree
# <= 2 can overflow or leave the normal range, so the scaling by 2**k is not needed (it is exact,
# and every population quantity is positively homogeneous: results agree to rounding)
_SAFE_SQUARED_NORMS = (2.0**-900, 2.0**900)


def prepare_unscaled(W, W_star) -> tuple:
    """``(W, W_star, k, |w_j|^2, |w*_j|^2)``: like :func:`prepare`, without a copy where it is safe.

    When both inputs are real NumPy arrays of shape ``(rows, d)`` and every squared row norm
    lies in a range where nothing downstream can overflow or underflow (the common case),
    ``k = 0`` and the arrays are the caller's own (as float64 views): callers must only read
    them.  Otherwise this is :func:`prepare`'s scaled copy.  The squared norms come from one
    pass over each array, which also finds non-finite entries and zero rows (they make the norm
    non-finite or zero; :func:`prepare` then names them).
    """
    Wv, Wsv = _plain_rows(W), _plain_rows(W_star)
    if Wv is not None and Wsv is not None and Wv.shape[1] == Wsv.shape[1]:
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            n2w = np.einsum("ij,ij->i", Wv, Wv)
            n2s = np.einsum("ij,ij->i", Wsv, Wsv)
        lo, hi = _SAFE_SQUARED_NORMS
        if all(lo <= n.min() and n.max() <= hi for n in (n2w, n2s)):  # False where a norm is NaN
            return Wv, Wsv, 0, n2w, n2s
    W, W_star, k, n2 = _scaled_copy(W, W_star)
    return W, W_star, k, n2[:len(W)], n2[len(W):]


def _plain_rows(x):
    """``x`` as float64 when it is a real NumPy array of shape ``(K >= 1, d >= 2)``; else ``None``
    (anything else goes through :func:`prepare`, whose checks name the problem)."""
    if isinstance(x, np.ndarray) and x.dtype.kind in "fiu" and x.ndim == 2 and x.shape[0] >= 1 and x.shape[1] >= 2:
        return np.asarray(x, dtype=np.float64)
    return None


def stacked(W: np.ndarray, W_star: np.ndarray) -> np.ndarray:
    """``[W; W_star]`` as one array: the common base, without a copy, when ``W``, ``W_star`` come from
    :func:`prepare`; a fresh ``vstack`` otherwise."""
    base = W.base
    if (base is not None and base is W_star.base and base.ndim == 2 and base.flags.c_contiguous
            and base.shape == (len(W) + len(W_star), W.shape[1]) and W.strides == W_star.strides == base.strides):
        start = base.__array_interface__["data"][0]
        if (W.__array_interface__["data"][0] == start
                and W_star.__array_interface__["data"][0] == start + W.nbytes):
            return base
    return np.vstack([W, W_star])


# ----------------------------------------------------------------------------- leading batch dimensions
def input_ndim(x) -> int:
    """The number of dimensions of ``x`` without converting it: ``ndim`` where it has one (NumPy
    arrays, torch tensors), else the depth of nested lists/tuples along their first entries; ``0``
    for anything else (which then goes through the single-instance checks unchanged)."""
    nd = getattr(x, "ndim", None)
    if isinstance(nd, int):
        return nd
    if isinstance(x, (list, tuple)):
        return 1 + (input_ndim(x[0]) if len(x) else 0)
    return 0


def is_batched(W, W_star) -> bool:
    """Whether a call carries leading batch dimensions: ``W`` or ``W_star`` has 3 or more dimensions.

    A 2-D input is one instance ``(rows, d)`` and a 1-D input one row, as without batching; a batch
    of single rows therefore needs shape ``(..., 1, d)``."""
    return input_ndim(W) >= 3 or input_ndim(W_star) >= 3


def _batch_operand(x, name: str) -> tuple:
    """``(x, shape)``: ``x`` ready to be indexed instance by instance (a torch tensor brought to the CPU
    once; NumPy arrays and nested lists as given), and its full shape; ``ValueError`` for ragged lists."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu()
        return x, tuple(int(n) for n in x.shape)
    if isinstance(x, np.ndarray):
        return x, x.shape
    try:
        shape = np.asarray(x).shape
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ValueError(f"{name} must be a real array of shape (..., rows, d); got {type(x).__name__}: {exc}") from None
    return x, shape


def _split_shape(shape: tuple, name: str) -> tuple:
    """``(batch shape, (rows, d))`` of an operand of a batched call (1-D: one row, no batch dimension)."""
    if len(shape) == 0:
        raise ValueError(f"{name} must have shape (..., rows, d); got shape {shape}")
    if len(shape) == 1:
        return (), (1, shape[0])
    batch, (rows, d) = tuple(shape[:-2]), tuple(shape[-2:])
    if rows < 1:
        raise ValueError(f"{name} has no rows (shape {tuple(shape)})")
    if d < 2:
        raise ValueError(f"{name} has d = {d}; the input dimension d must be at least 2")
    return batch, (rows, d)


class BatchPlan:
    """The instances of a batched call: ``W`` of shape ``(..., K, d)`` against ``W_star`` of shape
    ``(..., K*, d)``, batch shapes broadcast by NumPy's rules.

    ``shape`` is the broadcast batch shape, ``K``, ``K_star``, ``d`` the sizes of every instance;
    :meth:`instances` yields ``(index, W_i, W_star_i)`` in C order, ``W_i``/``W_star_i`` being the
    caller's own instance (a NumPy view, a torch tensor's slice or a nested list's entry), exactly
    what a single-instance call with ``W[i]``, ``W_star[i]`` would receive."""

    def __init__(self, W, W_star):
        self.W, w_shape = _batch_operand(W, "W")
        self.W_star, s_shape = _batch_operand(W_star, "W_star")
        self.w_batch, (self.K, d) = _split_shape(w_shape, "W")
        self.s_batch, (self.K_star, d_star) = _split_shape(s_shape, "W_star")
        if d != d_star:
            raise ValueError(f"W has d = {d} but W_star has d = {d_star} (shapes {tuple(w_shape)} and "
                             f"{tuple(s_shape)})")
        self.d = d
        try:
            self.shape = tuple(np.broadcast_shapes(self.w_batch, self.s_batch))
        except ValueError:
            raise ValueError(
                f"the batch shapes do not broadcast: W has shape {tuple(w_shape)} (batch {self.w_batch}) and "
                f"W_star has shape {tuple(s_shape)} (batch {self.s_batch}); the leading dimensions must "
                "broadcast by NumPy's rules (a 2-D array is one instance; a batch of single rows is (..., 1, d))"
            ) from None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @staticmethod
    def _own(index: tuple, batch: tuple) -> tuple:
        own = index[len(index) - len(batch):] if batch else ()
        return tuple(0 if n == 1 else i for i, n in zip(own, batch))

    @staticmethod
    def _pick(x, own: tuple):
        if isinstance(x, (list, tuple)):
            for i in own:
                x = x[i]
            return x
        return x[own] if own else x

    def instance(self, index: tuple) -> tuple:
        """``(W_i, W_star_i)`` of the batch index ``index`` (broadcast dimensions of size 1 repeat)."""
        return (self._pick(self.W, self._own(index, self.w_batch)),
                self._pick(self.W_star, self._own(index, self.s_batch)))

    def instances(self):
        for index in np.ndindex(*self.shape):
            index = tuple(int(i) for i in index)
            yield (index, *self.instance(index))
