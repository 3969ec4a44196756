"""The model family beyond the paper: output weights, activations, input covariance, Sobolev weights.

``g(x; a, W) = sum_j a_j sigma(w_j . x)``, teacher ``g(x; a*, W*)``, ``x ~ N(0, cov)``, and
``H = L + lambda_1 J_1 + lambda_2 J_2`` with ``J_1 = E|grad_x g - grad_x g*|^2 / 2`` and
``J_2 = E||hess_x g - hess_x g*||_F^2 / 2``.  This module only checks and normalises the keyword
arguments every public function takes (:func:`family`); the defaults are the paper's model
(``a = a* = 1``, ``relu``, ``cov = I``, ``sobolev = (1, 0)``), recognised by :attr:`Family.is_default`
so that the default path stays the one code path it always was.

Every activation is positively homogeneous of a degree ``p``: ``sigma(t) = c_plus t_+^p + c_minus t_-^p``
with ``t_- = max(-t, 0)``:

* ``"relu"``: ``p = 1``, ``(c_plus, c_minus) = (1, 0)``;
* ``("leaky_relu", beta)``: ``max(t, beta t)``, ``p = 1``, ``(1, -beta)``, ``0 <= beta < 1``;
* ``("relu_power", p)``: ``max(t, 0)^p``, ``p in {2, 3}``, ``(1, 0)``.

Its derivatives are of the same form (:meth:`Activation.derivative`), which is what the kernels of
:mod:`theory.activations` are written in.  ``J_2`` needs ``sigma''`` to be a function: ``p >= 2``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIVATIONS = ("relu", "leaky_relu", "relu_power")
RELU_POWERS = (2, 3)


@dataclass(frozen=True)
class Activation:
    """``sigma(t) = c_plus t_+^p + c_minus t_-^p`` (``t_- = max(-t, 0)``); ``name`` and ``param`` as given."""

    name: str
    param: float | int | None
    p: int
    c_plus: float
    c_minus: float

    def derivative(self, order: int) -> tuple:
        """``(p - order, c_plus', c_minus')`` of ``sigma^(order)`` in the same form.

        ``d/dt c t_+^p = p c t_+^(p-1)`` and ``d/dt c t_-^p = -p c t_-^(p-1)``: the coefficient on the
        negative side changes sign with every derivative.
        """
        p, cp, cm = self.p, self.c_plus, self.c_minus
        for _ in range(order):
            p, cp, cm = p - 1, p * cp, -p * cm
        return p, cp, cm

    @property
    def key(self) -> tuple:
        """A hashable key for caches: ``(p, c_plus, c_minus)``."""
        return (self.p, self.c_plus, self.c_minus)


def activation(spec) -> Activation:
    """``"relu"``, ``("leaky_relu", beta)`` or ``("relu_power", p)`` as an :class:`Activation`; ``ValueError``
    for anything else (names the accepted forms)."""
    if spec == "relu" or spec == ("relu",):
        return Activation("relu", None, 1, 1.0, 0.0)
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[0] in ("leaky_relu", "relu_power"):
        name, param = spec
        if name == "leaky_relu":
            beta = _real(param, "the leaky_relu slope beta")
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"the leaky_relu slope beta must satisfy 0 <= beta < 1; got {beta!r}")
            return Activation(name, beta, 1, 1.0, -beta)
        if isinstance(param, (bool, np.bool_)) or not isinstance(param, (int, np.integer)) or int(param) not in RELU_POWERS:
            raise ValueError(f"the relu_power degree p must be one of {RELU_POWERS}; got {param!r}")
        return Activation(name, int(param), int(param), 1.0, 0.0)
    raise ValueError(f"activation must be 'relu', ('leaky_relu', beta) with 0 <= beta < 1, or ('relu_power', p) "
                     f"with p in {RELU_POWERS}; got {spec!r}")


def _real(x, what: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a real number; got {x!r}")
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"{what} must be finite; got {x!r}")
    return x


@dataclass(frozen=True)
class Family:
    """Checked keyword arguments of one call (arrays are float64 NumPy, or ``None`` for the default)."""

    a: np.ndarray | None
    a_star: np.ndarray | None
    activation: Activation
    cov: np.ndarray | None
    sobolev: tuple
    train_output: bool

    @property
    def is_default(self) -> bool:
        """The paper's model: unit output weights, ReLU, identity covariance, ``H = L + J``, W only."""
        return (self.a is None and self.a_star is None and self.activation.name == "relu" and self.cov is None
                and self.sobolev == (1.0, 0.0) and not self.train_output)


def family(K: int, K_star: int, d: int, *, a=None, a_star=None, activation="relu", cov=None,
           sobolev=(1.0, 0.0), train_output=False) -> Family:
    """Check the family keywords for ``W`` of shape ``(K, d)`` and ``W_star`` ``(K*, d)``.

    ``ValueError`` names the argument: ``a`` of the wrong shape or not finite; an unknown activation,
    ``beta`` outside ``[0, 1)``, ``p`` not 2 or 3; ``cov`` not ``(d, d)``, not finite, not symmetric or not
    positive definite; ``sobolev`` not two finite numbers ``>= 0``, or ``lambda_2 != 0`` for an activation
    whose second derivative is not a function (``relu``, ``leaky_relu``: it is a measure on the
    hyperplanes ``w . x = 0``, and ``J_2`` is infinite).
    """
    act = globals()["activation"](activation)
    a = _weights(a, K, "a")
    a_star = _weights(a_star, K_star, "a_star")
    cov = _covariance(cov, d)
    lam = _sobolev(sobolev)
    if lam[1] != 0.0 and act.p < 2:
        raise ValueError(f"sobolev = {tuple(sobolev)!r} asks for J2 with lambda_2 != 0, but the second input derivative "
                         f"of {act.name} is not a function (sigma'' is a measure on the hyperplanes w . x = 0, so J2 "
                         "is infinite); J2 exists for ('relu_power', 2) and ('relu_power', 3)")
    if not isinstance(train_output, (bool, np.bool_)):
        raise ValueError(f"train_output must be True or False; got {train_output!r}")
    return Family(a, a_star, act, cov, lam, bool(train_output))


def _host_array(x) -> np.ndarray:
    """``x`` as a NumPy array; a tensor read with ``tolist`` (which also works under ``torch.func`` transforms,
    where ``.numpy()`` fails), keeping its kind (integer, boolean, floating)."""
    if hasattr(x, "detach"):
        return np.asarray(x.detach().tolist(), dtype=np.float64 if x.is_floating_point() else None)
    return np.asarray(x)


def _real_host(x, name: str, shape: tuple, what: str, shape_text: str) -> np.ndarray:
    """``x`` as a finite float64 NumPy array of ``shape``, else a ``ValueError`` naming ``name``."""
    arr = _host_array(x)
    if arr.dtype.kind not in "iuf" or arr.dtype == bool:
        raise ValueError(f"{name} must be {what}; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape_text}; got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} has a non-finite entry")
    return arr


def _weights(x, n: int, name: str):
    if x is None:
        return None
    return _real_host(x, name, (n,), "a real array of output weights", f"({n},), one output weight per row")


def _covariance(cov, d: int):
    if cov is None:
        return None
    S = _real_host(cov, "cov", (d, d), "a real (d, d) matrix", f"({d}, {d}) (the input covariance)")
    if not np.array_equal(S, S.T):
        raise ValueError("cov must be symmetric (cov == cov.T entry for entry)")
    try:
        np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        raise ValueError("cov must be positive definite (its Cholesky factorisation failed)") from None
    return S


def _sobolev(sobolev) -> tuple:
    if not isinstance(sobolev, (tuple, list)) or len(sobolev) != 2:
        raise ValueError(f"sobolev must be a pair (lambda_1, lambda_2); got {sobolev!r}")
    lam = tuple(_real(x, "a Sobolev weight") for x in sobolev)
    if min(lam) < 0:
        raise ValueError(f"the Sobolev weights must be >= 0; got {tuple(sobolev)!r}")
    return lam


def cov_sqrt(cov: np.ndarray) -> np.ndarray:
    """The symmetric square root ``cov^(1/2)`` (eigendecomposition; ``cov`` checked SPD)."""
    vals, vecs = np.linalg.eigh(cov)
    return (vecs * np.sqrt(vals)) @ vecs.T
