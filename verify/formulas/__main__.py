from verify import formulas
from verify.report import run

raise SystemExit(run(formulas))
