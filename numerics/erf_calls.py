"""The public API's erf calls: ``numerics.loss / gradient / hessian(..., activation="erf")`` for every input kind.

* one NumPy instance ``W (K, d)``: :mod:`numerics.erf` (closed forms from the generated partials);
* a batch (leading dimensions on ``W``, ``W_star``, ``a`` or ``a_star``; they broadcast; ``cov`` is one matrix):
  the instances one by one through the same functions, so a batched call equals the single calls bit for bit;
* PyTorch tensors (any device, float64 or float32): results as tensors of ``W``'s dtype and device, from the
  differentiable loss :func:`numerics.erf.loss_torch`: the gradient is its ``torch.autograd`` gradient and the
  Hessian its ``torch.func.hessian`` (for erf the true gradient and the mean field are one object, and the three
  Hessians one matrix: :mod:`theory.erf`); the tests check both against the NumPy closed forms.
* arrays of any other array-API namespace (CuPy, JAX, array-api-strict, ...): the NumPy closed forms on host copies,
  returned as arrays of the caller's namespace and device.
"""
from __future__ import annotations

import numpy as np

from . import erf
from .validation import is_backend_array, is_batched, wants_backend


def call(name: str, W, W_star, part: str, keywords: dict):
    """``name`` in ``("loss", "gradient", "hessian")`` of the erf network, for the input kinds of the module
    docstring; ``keywords``: ``a``, ``a_star``, ``cov``, ``sobolev`` and, for gradients and Hessians, ``train_output``."""
    if wants_backend(W, W_star) and not _is_torch(W) and not _is_torch(W_star):
        return _other_namespace(name, W, W_star, part, keywords)
    if is_batched(W, W_star) or _batched_weights(keywords):
        return _batched(name, W, W_star, part, keywords)
    if wants_backend(W, W_star):
        return _torch(name, W, W_star, part, keywords)
    return getattr(erf, name)(W, W_star, part, **keywords)


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _batched_weights(keywords: dict) -> bool:
    """Whether ``a`` or ``a_star`` carries batch dimensions (2 or more dimensions)."""
    return any(len(getattr(v, "shape", np.shape(v))) >= 2 for k, v in keywords.items()
               if k in ("a", "a_star") and v is not None)


# ----------------------------------------------------------------------------- batches: one instance at a time
def _batch_shape(W, W_star, keywords: dict) -> tuple:
    shapes = [tuple(W.shape[:-2]), tuple(W_star.shape[:-2])]
    shapes += [tuple(keywords[k].shape[:-1]) for k in ("a", "a_star") if keywords.get(k) is not None]
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"the batch dimensions do not broadcast: W {tuple(W.shape)}, W_star {tuple(W_star.shape)}"
                         + "".join(f", {k} {tuple(keywords[k].shape)}" for k in ("a", "a_star")
                                   if keywords.get(k) is not None)) from None


def _as_array(x):
    return x if hasattr(x, "shape") else np.asarray(x, dtype=np.float64)


def _instance(x, index: tuple, trailing: int):
    """``x``'s instance at ``index`` of the batch (broadcast: size-1 and missing leading dimensions repeat)."""
    lead = x.shape[:len(x.shape) - trailing]
    idx = tuple(0 if n == 1 else i for i, n in zip(index[len(index) - len(lead):], lead))
    return x[idx] if idx else x


def _batched(name: str, W, W_star, part: str, keywords: dict):
    W, W_star = _as_array(W), _as_array(W_star)
    keywords = {k: (_as_array(v) if k in ("a", "a_star") and v is not None else v) for k, v in keywords.items()}
    if len(W.shape) < 2 or len(W_star.shape) < 2:
        raise ValueError(f"a batched erf call needs W (..., K, d) and W_star (..., K*, d); got {tuple(W.shape)}, "
                         f"{tuple(W_star.shape)}")
    shape = _batch_shape(W, W_star, keywords)
    results = []
    for index in np.ndindex(*shape):
        kw = {k: (_instance(v, index, 1) if k in ("a", "a_star") and v is not None else v) for k, v in keywords.items()}
        results.append(call(name, _instance(W, index, 2), _instance(W_star, index, 2), part, kw))
    return _stack(results, shape)


def _stack(results: list, shape: tuple):
    if isinstance(results[0], tuple):  # (grad_W, grad_a)
        return tuple(_stack([r[i] for r in results], shape) for i in range(len(results[0])))
    if hasattr(results[0], "detach"):
        import torch

        out = torch.stack([torch.as_tensor(r) for r in results])
        return out.reshape(*shape, *out.shape[1:])
    out = np.stack([np.asarray(r, dtype=np.float64) for r in results])
    return out.reshape(*shape, *out.shape[1:])


# ----------------------------------------------------------------------------- PyTorch: autograd of the loss
def _torch(name: str, W, W_star, part: str, keywords: dict):
    import torch

    if not isinstance(W, torch.Tensor):  # NumPy W with a tensor W_star: the result follows the tensor
        W = torch.as_tensor(np.asarray(W, dtype=np.float64), dtype=W_star.dtype, device=W_star.device)
    train = bool(keywords.pop("train_output", False))
    if name == "loss":
        return erf.loss_torch(W, W_star, part, **keywords)
    a = keywords.pop("a", None)
    a = torch.ones(W.shape[0], dtype=W.dtype, device=W.device) if a is None else torch.as_tensor(a, dtype=W.dtype,
                                                                                                   device=W.device)
    K, d = W.shape

    def value(x):
        return erf.loss_torch(x[:K * d].reshape(K, d), W_star, part, a=x[K * d:] if train else a, **keywords)

    x = torch.cat([W.detach().reshape(-1), a.detach()]) if train else W.detach().reshape(-1)
    if name == "gradient":
        x.requires_grad_(True)
        (g,) = torch.autograd.grad(value(x), x)
        return (g[:K * d].reshape(K, d), g[K * d:]) if train else g.reshape(K, d)
    return torch.func.hessian(value)(x)


# ----------------------------------------------------------------------------- other array namespaces
def _host(x):
    """A NumPy copy of a backend array (DLPack), anything else as given."""
    return np.from_dlpack(x) if is_backend_array(x) else x


def _other_namespace(name: str, W, W_star, part: str, keywords: dict):
    """The NumPy closed forms on host copies, returned in the namespace and on the device of the caller's array."""
    from array_api_compat import array_namespace, device

    mine = W if is_backend_array(W) else W_star
    xp, where = array_namespace(mine), device(mine)
    out = call(name, _host(W), _host(W_star), part, {k: _host(v) for k, v in keywords.items()})  # batches too

    def back(r):
        return xp.asarray(np.asarray(r, dtype=np.float64), device=where)
    return tuple(map(back, out)) if isinstance(out, tuple) else back(out)
