"""The project's words for its objects, spelled once: every layer (theory, numerics, verify, benchmarks) imports
them from here.  Plain Python, no SymPy: importing it costs nothing (``theory/__init__`` loads its SymPy modules
only when one of them is asked for).

* ``PARTS`` -- the paper's objectives: ``L`` (values), ``J`` (input gradients), ``H = L + J``.
* ``GRADIENT_FIELDS`` -- ``"mean"``: the **mean field** ``E_x[grad_W l]`` (what per-sample autograd and SGD
  follow); ``"true"``: the gradient of the population loss ``grad_W E_x[l]``.  For ``J`` and ``H`` of a ReLU
  network they differ (docs/theory.md, sections 4-5).
* ``HESSIAN_FIELDS`` -- ``"true"``: the Hessian of the population loss; ``"mean"``: the Jacobian of the mean
  field; ``"autograd"``: the expected per-sample autograd Hessian.
* ``FLOWS`` -- the population gradient flows of the landscape and gradient-flow reports: on ``L``, on ``H``
  along its mean field (``H-mean``), on ``H`` along its true gradient (``H-true``, sliding on teacher rays).
"""
from __future__ import annotations

PARTS = ("L", "J", "H")
GRADIENT_FIELDS = ("mean", "true")
HESSIAN_FIELDS = ("true", "mean", "autograd")
FLOWS = ("L", "H-mean", "H-true")

DISPLAY = {
    "mean": "mean field (E_x of the per-sample autograd gradient)",
    "true": "true gradient (of the population loss)",
    "hessian true": "Hessian of the population loss",
    "hessian mean": "Jacobian of the mean field",
    "hessian autograd": "expected per-sample autograd Hessian",
    "L": "flow on L", "H-mean": "flow on H along its mean field", "H-true": "flow on H along its true gradient",
}
