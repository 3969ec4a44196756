"""Fast, stable evaluation of the population quantities derived in :mod:`theory`.

Public API (stable)::

    numerics.loss(W, W_star, part)               # part in {"L", "J", "H"} -> float
    numerics.gradient(W, W_star, part, field)    # field in {"mean", "true"} -> (K, d)
    numerics.hessian(W, W_star, part, field)     # field in {"true", "mean", "autograd"}
                                                 #   -> (K*d, K*d), index i*d + k

and the aliases ``mean_field``, ``true_gradient``, ``hessian_of_loss``,
``jacobian_of_mean_field``, ``expected_autograd_hessian``.  ``W`` is ``(K, d)``,
``W_star`` is ``(K*, d)``, or with leading batch dimensions ``(..., K, d)``, ``(..., K*, d)``
(:mod:`numerics.batched`).  NumPy arrays and nested lists give NumPy float64 results
(:mod:`numerics.population`, the reference); a torch tensor (or a CuPy, JAX or array-api-strict
array) gives results of its own type, dtype and device, and the loss is differentiable
(:mod:`numerics.backend`).  See :mod:`numerics.population` for the conventions.

Beyond the paper's model, every public function takes the keyword-only arguments ``a``, ``a_star``,
``activation``, ``cov``, ``sobolev``, ``train_output`` (:mod:`numerics.family`; their defaults are the paper's
model and its code path) and the part ``"J2"``.

Independent witnesses: ``numerics.monte_carlo`` (:mod:`numerics.mc`, PyTorch, GPU when
present) and :mod:`numerics.quadrature` (mpmath); :mod:`numerics.tian` is Tian (2017)'s
gradient typed in from the paper.

``import numerics`` and the closed forms on NumPy import neither SymPy nor PyTorch (nor
array-api-compat): the pair functions are
generated code (:mod:`numerics._pair_code`, ``python -m theory.codegen``), and ``monte_carlo``,
``MCEstimate`` (and ``numerics.mc``) import :mod:`numerics.mc` on first use.
"""
from .population import (
    expected_autograd_hessian,
    gradient,
    hessian,
    hessian_of_loss,
    jacobian_of_mean_field,
    loss,
    mean_field,
    true_gradient,
)
from .validation import GRADIENT_FIELDS, HESSIAN_FIELDS, PARTS

__all__ = [
    "loss", "gradient", "hessian", "mean_field", "true_gradient", "hessian_of_loss",
    "jacobian_of_mean_field", "expected_autograd_hessian", "PARTS", "GRADIENT_FIELDS", "HESSIAN_FIELDS",
    "monte_carlo", "MCEstimate",
]

_LAZY = {"monte_carlo": "mc", "MCEstimate": "mc", "mc": None}


def __getattr__(name: str):
    """``monte_carlo``, ``MCEstimate`` and ``numerics.mc``: imported (with PyTorch) on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    mc = importlib.import_module(".mc", __name__)
    value = mc if _LAZY[name] is None else getattr(mc, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
