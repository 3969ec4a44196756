"""``python -m verify.conditioning``."""
from verify import conditioning
from verify.report import run

raise SystemExit(run(conditioning))
