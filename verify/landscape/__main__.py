"""``python -m verify.landscape``."""
from verify import landscape
from verify.report import run

raise SystemExit(run(landscape))
