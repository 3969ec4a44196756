"""``python -m verify.training_mnist``."""
from verify.training_mnist import main

raise SystemExit(main())
