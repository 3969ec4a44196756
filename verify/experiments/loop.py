"""The one training loop of the regression experiments; the loss variant is a parameter.

Variants (``VARIANTS``), with ``u`` the model, ``f`` the target, ``n`` training points:

* ``L2``           -- ``mean_i (u(x_i) - f(x_i))^2``: values only, derivatives ignored;
* ``H1-exact``     -- ``L2 + mean_i |grad u(x_i) - grad f(x_i)|^2`` with the exact gradient of ``f``;
* ``H1-FDM``       -- the same with ``grad f`` replaced by second-order finite differences of the sampled
  values on their uniform tensor grid (:func:`numerics.differentiation.fd_derivative`), or, for
  scattered points, by central differences of the black-box target with step ``data.fd_step``
  (:func:`numerics.differentiation.central_difference_gradient`, ``2 n d`` extra target queries);
* ``H1-Chebyshev`` -- the same with Chebyshev spectral derivatives of the values on their
  Chebyshev tensor grid (:func:`numerics.differentiation.chebyshev_derivative`);
* ``H2``           -- ``H1-exact + mean_i sum_k (d^2 u / dx_k^2 - d^2 f / dx_k^2)^2`` (diagonal second
  derivatives; the experiments use it in 1-D only).

``|.|^2`` is the squared Euclidean norm over the ``d`` input coordinates (the ``H^1`` seminorm;
the ``l_J`` of docs/theory.md (section 2) up to the factor 1/2 that it shares with ``l_L``).  The model's input
derivatives come from autograd (``create_graph=True``, so the optimiser differentiates through them).
Full-batch Adam (or plain gradient descent) for ``steps`` steps, then optionally ``lbfgs_steps`` L-BFGS
iterations (the paper's architecture experiment).  Seeded: ``torch.manual_seed(seed)`` before the model is built; nothing
else is random, so the same seed gives the same curves on the same device, dtype and thread count.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from numerics.differentiation import central_difference_gradient, chebyshev_derivative, fd_derivative

from .targets import SobolevData

VARIANTS = ("L2", "H1-exact", "H1-FDM", "H1-Chebyshev", "H2")


def clock(device="cpu") -> float:
    """The clock every timing of the experiments uses, in seconds.

    On CPU the process's CPU time (``time.process_time``): with one compute thread per run it
    measures the work done and is far less sensitive than wall time to other jobs sharing the
    machine.  On CUDA, wall time after ``torch.cuda.synchronize`` (kernels run asynchronously and
    CPU time would miss them).
    """
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


@dataclass
class Targets:
    """What a variant fits: values, and first / diagonal second derivatives (or ``None``)."""

    y: np.ndarray
    dy: np.ndarray | None
    d2y: np.ndarray | None
    seconds: float = 0.0  # time (:func:`clock`, CPU) to build the derivative targets
    queries: int = 0  # extra evaluations of the target they cost (black-box central differences)


@dataclass
class TrainResult:
    """Per-step curves of one run; index ``k`` is the state after ``k`` updates (``k = 0..steps run``).

    ``value_mse[k]``: mean squared value error on the *training* points; ``loss[k]``: the variant's
    loss; ``seconds[k]``: training time spent to reach state ``k`` (evaluation excluded; :func:`clock`:
    CPU seconds on CPU, synchronised wall seconds on CUDA);
    ``eval_steps`` / ``test_mse``: test value MSE every ``eval_every`` steps and at the end.
    """

    variant: str
    seed: int
    loss: np.ndarray
    value_mse: np.ndarray
    seconds: np.ndarray
    eval_steps: np.ndarray
    test_mse: np.ndarray
    target_seconds: float
    target_queries: int
    model: nn.Module | None = field(default=None, repr=False)

    def first_below(self, threshold: float, curve: str = "test_mse") -> tuple:
        """``(step, seconds)`` at which ``curve`` first falls below ``threshold``, or ``(None, None)``."""
        vals = self.test_mse if curve == "test_mse" else self.value_mse
        steps = self.eval_steps if curve == "test_mse" else np.arange(len(vals))
        hit = np.flatnonzero(vals < threshold)
        if hit.size == 0:
            return None, None
        step = int(steps[hit[0]])
        return step, float(self.seconds[step])


def derivative_targets(data: SobolevData, variant: str) -> Targets:
    """The targets ``variant`` fits on ``data`` (module docstring); ``ValueError`` if ``data`` cannot supply them."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    t0 = clock()
    dy = d2y = None
    queries = 0
    if variant in ("H1-exact", "H2"):
        if data.dy is None:
            raise ValueError(f"{variant} needs the exact gradient, which {data.name} does not have")
        dy = data.dy
        if variant == "H2":
            if data.d2y is None:
                raise ValueError(f"H2 needs exact second derivatives, which {data.name} does not have")
            d2y = data.d2y
    elif variant == "H1-FDM":
        if data.grid is not None:
            if data.grid.kind != "uniform":
                raise ValueError(f"H1-FDM needs a uniform grid; {data.name} is on a {data.grid.kind} grid")
            F = data.y.reshape(data.grid.shape)
            dy = np.stack([fd_derivative(F, ax, axis=k).ravel() for k, ax in enumerate(data.grid.axes)], axis=1)
        elif data.target_fn is not None:
            dy, queries = central_difference_gradient(data.target_fn, data.x, data.fd_step)
        else:
            raise ValueError(f"H1-FDM needs a uniform grid or a black-box target; {data.name} has neither")
    elif variant == "H1-Chebyshev":
        if data.grid is None or data.grid.kind != "chebyshev":
            raise ValueError(f"H1-Chebyshev needs a Chebyshev grid; {data.name} has none")
        F = data.y.reshape(data.grid.shape)
        dy = np.stack([chebyshev_derivative(F, *data.grid.bounds[k], axis=k).ravel()
                       for k in range(len(data.grid.axes))], axis=1)
    return Targets(data.y, dy, d2y, clock() - t0, queries)


def input_derivatives(model: nn.Module, x: torch.Tensor, order: int) -> tuple:
    """``(u, grad u, diag Hessian u)`` at ``x`` by autograd; entries above ``order`` are ``None``.

    ``x`` must require grad.  The graph is kept (``create_graph=True``) so the loss can be
    differentiated with respect to the parameters.
    """
    u = model(x)
    if order == 0:
        return u, None, None
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    if order == 1:
        return u, g, None
    diag = [torch.autograd.grad(g[:, k].sum(), x, create_graph=True)[0][:, k] for k in range(x.shape[1])]
    return u, g, torch.stack(diag, dim=1)


def variant_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, dy: torch.Tensor | None,
                 d2y: torch.Tensor | None) -> tuple:
    """``(loss, value MSE)``: value MSE plus the derivative terms whose targets are given (module docstring)."""
    order = 2 if d2y is not None else 1 if dy is not None else 0
    u, g, h = input_derivatives(model, x, order)
    value_mse = torch.mean((u - y) ** 2)
    loss = value_mse
    if g is not None:
        loss = loss + torch.mean(torch.sum((g - dy) ** 2, dim=1))
    if h is not None:
        loss = loss + torch.mean(torch.sum((h - d2y) ** 2, dim=1))
    return loss, value_mse


def _test_mse(model, x_test, y_test, chunk: int = 8192) -> float:
    with torch.no_grad():
        se = sum(float(torch.sum((model(x_test[i:i + chunk]) - y_test[i:i + chunk]) ** 2))
                 for i in range(0, len(x_test), chunk))
    return se / len(x_test)


def train(model, data: SobolevData, variant: str, steps: int, lr: float, seed: int, *, eval_every: int = 10,
          optimizer: str = "adam", lbfgs_steps: int = 0, device: str = "cpu", dtype=torch.float32,
          stop_below: float | None = None, keep_model: bool = False) -> TrainResult:
    """Train ``model`` on ``data`` with loss ``variant``; return per-step curves and wall times.

    ``model``: a zero-argument callable returning a fresh ``nn.Module`` (built after
    ``torch.manual_seed(seed)``, so the seed fixes the initialisation) or an ``nn.Module``
    (deep-copied; the caller's module is left untouched).  ``optimizer``: ``"adam"`` or ``"gd"``
    (plain full-batch gradient descent, the discretised gradient flow of docs/theory.md, section 9).  ``stop_below``: stop early
    once the test MSE (checked every ``eval_every`` steps) is below it.  ``lbfgs_steps`` L-BFGS iterations
    (strong-Wolfe line search, ``lr=1``) follow the Adam steps; each counts as one step in the curves.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    if optimizer not in ("adam", "gd"):
        raise ValueError(f"optimizer must be 'adam' or 'gd'; got {optimizer!r}")
    if steps < 0 or lbfgs_steps < 0 or eval_every < 1:
        raise ValueError("steps and lbfgs_steps must be >= 0 and eval_every >= 1")
    targets = derivative_targets(data, variant)
    torch.manual_seed(seed)
    net = copy.deepcopy(model) if isinstance(model, nn.Module) else model()
    net = net.to(device=device, dtype=dtype)

    def tensor(a):
        return None if a is None else torch.as_tensor(np.asarray(a), dtype=dtype, device=device)

    x = tensor(data.x).requires_grad_(True)
    y, dy, d2y = tensor(targets.y), tensor(targets.dy), tensor(targets.d2y)
    x_test, y_test = tensor(data.x_test), tensor(data.y_test)

    losses, values, seconds, eval_steps, test_mse = [], [], [], [], []
    elapsed = 0.0

    def evaluate(step):
        eval_steps.append(step)
        test_mse.append(_test_mse(net, x_test, y_test))
        return stop_below is not None and test_mse[-1] < stop_below

    total = steps + lbfgs_steps
    first = torch.optim.Adam(net.parameters(), lr=lr) if optimizer == "adam" else \
        torch.optim.SGD(net.parameters(), lr=lr)
    lbfgs = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=1, line_search_fn="strong_wolfe") \
        if lbfgs_steps else None
    done = total
    for step in range(total):
        if step % eval_every == 0 and evaluate(step):
            done = step
            break
        seconds.append(elapsed)
        t0 = clock(device)
        opt = first if step < steps else lbfgs
        record = {}

        def closure():
            opt.zero_grad(set_to_none=True)
            loss, value_mse = variant_loss(net, x, y, dy, d2y)
            loss.backward()
            if not record:  # L-BFGS calls the closure again in its line search: keep the first (state ``step``)
                record["loss"], record["value"] = float(loss.detach()), float(value_mse.detach())
            return loss

        opt.step(closure)
        elapsed += clock(device) - t0
        losses.append(record["loss"])
        values.append(record["value"])
    # the final state (after ``done`` updates)
    loss, value_mse = variant_loss(net, x, y, dy, d2y)
    losses.append(float(loss.detach()))
    values.append(float(value_mse.detach()))
    seconds.append(elapsed)
    if eval_steps[-1:] != [done]:
        evaluate(done)
    return TrainResult(variant, seed, np.array(losses), np.array(values), np.array(seconds),
                       np.array(eval_steps), np.array(test_mse), targets.seconds, targets.queries,
                       net if keep_model else None)
