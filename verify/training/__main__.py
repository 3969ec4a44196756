"""``python -m verify.training`` (with ``--mnist PATH``: the MNIST autoencoder report, :mod:`verify.training_mnist`)."""
import sys

from verify import training, training_mnist
from verify.report import run

raise SystemExit(run(training_mnist if any(a == "--mnist" or a.startswith("--mnist=") for a in sys.argv[1:])
                     else training))
