"""``python -m verify.training``."""
from verify import training
from verify.report import run

raise SystemExit(run(training))
