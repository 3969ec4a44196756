"""The paper's training experiments (docs/claims.md, claims 5--7), used by ``verify.training``.

* :mod:`.targets` -- Ackley 2-D with its gradient, the 1-D targets ``f1, f2, f3`` with two derivatives,
  the student--teacher ReLU network as a black box; :class:`~.targets.SobolevData` (points, values,
  exact derivatives, the grid or black box the numerical variants need).
* :mod:`.models` -- tanh MLP, Fourier-feature network, SIREN, the ReLU student ``sum_j relu(w_j . x)``.
* :mod:`.loop` -- the one training loop :func:`~.loop.train` with the loss variant as a parameter:
  ``L2``, ``H1-exact``, ``H1-FDM``, ``H1-Chebyshev``, ``H2`` (:data:`~.loop.VARIANTS`).
* :mod:`.autoencoder` -- the denoising autoencoder on scikit-learn's 8x8 digits and the
  Fourier-multiplier Sobolev loss.
* :mod:`.summary` -- statistics over seeds (median and min--max) and JSON-safe numbers.
* :mod:`.mnist` -- MNIST from the files a user has (IDX, Keras npz, the classic pickle, torchvision's
  folder), checked; never downloaded (docs/mnist.md).
"""
from .loop import VARIANTS, TrainResult, derivative_targets, train, variant_loss

__all__ = ["VARIANTS", "TrainResult", "derivative_targets", "train", "variant_loss"]
