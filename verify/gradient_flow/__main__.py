"""``python -m verify.gradient_flow``."""
from verify import gradient_flow
from verify.report import run

raise SystemExit(run(gradient_flow))
